# Sets become sorted lists.
# status: success
# return: [1, 2, 3]
{3, 1, 2}
