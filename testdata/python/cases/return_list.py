# Lists map to JSON arrays.
# status: success
# return: [1, "two", 3.0, null, false]
[1, "two", 3.0, None, False]
