# Subprocesses work, and a child's own output reaches stdout.
# backends: native,gvisor
# status: success
# stdout: from child
# return: ["hi\n", 0]
import subprocess
subprocess.run(["/bin/echo", "from child"], check=True)
r = subprocess.run(["/bin/echo", "hi"], capture_output=True, text=True)
[r.stdout, r.returncode]
