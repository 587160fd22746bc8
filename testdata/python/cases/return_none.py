# A trailing expression that is None gives no return value.
# status: success
# stdout: side effect
# return: absent
print("side effect")
None
