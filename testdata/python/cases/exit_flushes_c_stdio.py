# What C code writes with printf (an extension module, ctypes) sits in C
# stdio's buffer, which exit() writes out: so does every backend's end of
# a run, after Python's own buffers, as plain python3 does into a pipe.
# backends: native,gvisor
# status: success
# stdout: from Python
# stdout: from C
import ctypes

ctypes.CDLL(None).printf(b"from C\n")
print("from Python")
