# A process killed by a signal: status killed, the signal named.
# backends: native,gvisor
# status: killed
# signal: SIGKILL
# stdout: about to die
import os
print("about to die", flush=True)
os.kill(os.getpid(), 9)
