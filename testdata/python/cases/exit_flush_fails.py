# When flushing sys.stdout fails at exit, CPython reports it and exits with
# status 120.
# status: run-error
# exit_code: 120
# stderr-contains: Exception ignored in: <__main__.Broken object
# stderr-contains: RuntimeError: cannot flush
import sys
class Broken:
    def write(self, s):
        return len(s)
    def flush(self):
        raise RuntimeError("cannot flush")
sys.stdout = Broken()
