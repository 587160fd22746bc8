# stdin is empty: reading gives "" and input() raises EOFError.
# status: success
# return: ["", "EOFError"]
import sys
data = sys.stdin.read()
try:
    input()
    err = None
except EOFError:
    err = "EOFError"
[data, err]
