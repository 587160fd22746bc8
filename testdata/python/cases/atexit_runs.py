# atexit handlers run after the code, as at any interpreter exit, and their
# output is kept.
# status: success
# exit_code: 0
# stdout: main
# stdout: second handler
# stdout: first handler
import atexit
atexit.register(print, "first handler")
atexit.register(print, "second handler")
print("main")
