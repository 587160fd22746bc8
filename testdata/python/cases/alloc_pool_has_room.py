# The code starts with room for several small ints in the first pool of
# CPython's allocator (pymalloc, 16 KiB pools on 64-bit builds): with one
# or two free blocks there, a loop that makes and drops an int per turn
# (sum(range(n)), `for i in range(n)`) moved the pool off and back onto the
# free list on every turn and ran up to 40% slower than under python -c.
# The runner arranges it (_settle_pools); bench/forkserver's Loop
# benchmarks time it.
# backends: native,gvisor
# status: success
# return: true
k = 1000000
a = k + 1
b = k + 2
c = k + 3
d = k + 4
e = k + 5
id(a) >> 14 == id(e) >> 14
