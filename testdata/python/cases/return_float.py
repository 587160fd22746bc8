# Floats round-trip exactly.
# status: success
# return: 0.30000000000000004
0.1 + 0.2
