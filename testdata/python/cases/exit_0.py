# sys.exit() ends the run successfully; later code does not run.
# status: success
# exit_code: 0
# stdout: bye
# return: absent
import sys
print("bye")
sys.exit()
print("not reached")
