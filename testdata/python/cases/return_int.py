# A trailing expression's value is the return value.
# status: success
# stdout-json: ""
# return: 3
1 + 2
