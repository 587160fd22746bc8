# os._exit() ends the process at once: no result, no atexit handlers, and
# what is still buffered in sys.stdout is lost.
# status: run-error
# exit_code: 4
# stdout: flushed
import atexit, os
atexit.register(print, "atexit must not run")
print("flushed", flush=True)
print("still buffered")
os._exit(4)
