# Large output within the limit is returned whole.
# status: success
# stdout-bytes: 600000
# stdout-contains: line 09999 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
# stdout-truncated: false
for i in range(10000):
    print(f"line {i:05d} " + "x" * 48)
