# A non-daemon thread that never ends keeps the interpreter from exiting:
# the run ends with the timeout.
# backends: native,gvisor
# timeout: 1s
# status: timeout
# stdout: main done
import threading, time
def forever():
    while True:
        time.sleep(0.05)
threading.Thread(target=forever).start()
print("main done")
