# The code, and what it starts, see the request's environment and nothing
# the sandbox runs with for itself (the fork server's templates run numpy
# with one BLAS thread: OPENBLAS_NUM_THREADS and friends).
# backends: native,gvisor
# env: {"OMP_NUM_THREADS": "3"}
# status: success
# return: [{"OMP_NUM_THREADS": "3"}, "3 unset unset"]
import os
import subprocess
threads = {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")}
shell = 'echo "$OMP_NUM_THREADS ${OPENBLAS_NUM_THREADS:-unset} ${MKL_NUM_THREADS:-unset}"'
out = subprocess.run(["sh", "-c", shell], capture_output=True, text=True).stdout.strip()
[threads, out]
