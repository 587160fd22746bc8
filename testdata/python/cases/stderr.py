# stderr is captured separately from stdout.
# status: success
# stdout: to stdout
# stderr: to stderr
# stderr: via write
import sys
print("to stdout")
print("to stderr", file=sys.stderr)
sys.stderr.write("via write\n")
