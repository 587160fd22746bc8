# sys.exit() runs the atexit handlers before the process exits with its
# code. (Not on wasm yet: it stops at the result frame.)
# backends: native,gvisor
# status: run-error
# exit_code: 3
# stdout: main
# stdout: bye
import atexit, sys
atexit.register(print, "bye")
print("main")
sys.exit(3)
