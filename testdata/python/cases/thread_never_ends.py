# A non-daemon thread that never ends keeps the interpreter from exiting:
# the run ends with the timeout. (3 s: a cold gVisor sandbox under a
# loaded test run took over 1 s to print.)
# backends: native,gvisor
# timeout: 3s
# status: timeout
# stdout: main done
import threading, time
def forever():
    while True:
        time.sleep(0.05)
threading.Thread(target=forever).start()
print("main done")
