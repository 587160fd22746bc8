# A thread that calls os._exit() after the code has finished decides the
# exit code.
# backends: native,gvisor
# status: run-error
# exit_code: 5
# stdout: main done
# stdout: thread exiting
import os, threading, time
def late():
    time.sleep(0.2)
    print("thread exiting", flush=True)
    os._exit(5)
threading.Thread(target=late).start()
print("main done")
