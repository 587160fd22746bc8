# After an uncaught exception, non-daemon threads are still joined and
# atexit handlers still run; the exit code is 1.
# backends: native,gvisor
# status: run-error
# exit_code: 1
# stdout: thread done
# stdout: atexit
# error-contains: ZeroDivisionError
import atexit, threading, time
def late():
    time.sleep(0.2)
    print("thread done")
atexit.register(print, "atexit")
threading.Thread(target=late).start()
1 / 0
