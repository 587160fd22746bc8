# Tuples become lists.
# status: success
# return: [1, "a", null]
(1, "a", None)
