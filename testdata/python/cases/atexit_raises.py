# An exception in an atexit handler is reported on stderr as CPython does;
# the other handlers still run and the exit code is unchanged.
# status: success
# exit_code: 0
# stdout: main
# stdout: other handler
# stderr-contains: Exception ignored in atexit callback: <function boom
# stderr-contains: File "main.py", line 12, in boom
# stderr-contains: ValueError: boom in atexit
import atexit
def boom():
    raise ValueError("boom in atexit")
atexit.register(print, "other handler")
atexit.register(boom)
print("main")
