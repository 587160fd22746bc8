# A daemon thread is not waited for: the run ends with the code (it would
# time out otherwise), and the thread dies with the process.
# backends: native,gvisor
# timeout: 10s
# status: success
# stdout: main done
import threading, time
def late():
    time.sleep(60)
    print("daemon done")
threading.Thread(target=late, daemon=True).start()
print("main done")
