# Booleans are JSON booleans.
# status: success
# return: true
3 > 2
