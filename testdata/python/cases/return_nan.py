# NaN and infinities are not JSON: they become null.
# status: success
# return: [null, null, 1.5]
[float("nan"), float("inf"), 1.5]
