# A program that ends with a statement has no return value.
# status: success
# return: absent
x = 41
x += 1
