# The code can read its own /proc/self files (environ, io, its namespace
# links), as any process of its own uid: a fork-server child, which
# switches uid without an exec, was left non-dumpable, which made them
# root's.
# backends: native
# status: success
# return: [true, true, true]
import os
env = open("/proc/self/environ", "rb").read()
io = open("/proc/self/io").read()
[b"HOME=/work" in env, "rchar" in io, "pid" in os.listdir("/proc/self/ns")]
