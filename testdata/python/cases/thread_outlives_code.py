# A non-daemon thread still running after the code's last statement is
# joined before exit, as at any interpreter exit: its output is kept, and
# atexit handlers run after it.
# backends: native,gvisor
# status: success
# exit_code: 0
# stdout: main done
# stdout: thread done
# stdout: atexit
import atexit, threading, time
def late():
    time.sleep(0.2)
    print("thread done")
atexit.register(print, "atexit")
threading.Thread(target=late).start()
print("main done")
