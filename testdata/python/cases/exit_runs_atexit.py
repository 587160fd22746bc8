# sys.exit() runs the atexit handlers before the process exits with its
# code.
# status: run-error
# exit_code: 3
# stdout: main
# stdout: bye
import atexit, sys
atexit.register(print, "bye")
print("main")
sys.exit(3)
