# SystemExit with a message: exit code 1, the message on stderr.
# status: run-error
# exit_code: 1
# stderr-contains: fatal: something broke
import sys
sys.exit("fatal: something broke")
