# print() with sep, end and several calls keeps order and newlines.
# status: success
# stdout: a-b-c
# stdout: one two
# stdout: 1 2.5 None True
print("a", "b", "c", sep="-")
print("one", end=" ")
print("two")
print(1, 2.5, None, True)
