# The working directory is /work and HOME points at it.
# status: success
# return: "/work"
import os
os.getcwd()
