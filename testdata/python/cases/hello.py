# The smallest program: one line of output, no return value.
# status: success
# exit_code: 0
# stdout: hello, world
# return: absent
print("hello, world")
