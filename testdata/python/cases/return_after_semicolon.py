# The last statement counts, even after a semicolon on the same line.
# status: success
# return: 2
x = 1; x + 1
