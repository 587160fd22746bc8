# The program can create, read and list files in its working directory.
# status: success
# return: ["hello file", ["notes.txt", "sub"], "nested"]
import os
with open("notes.txt", "w") as f:
    f.write("hello file")
os.makedirs("sub/dir")
with open("sub/dir/x.txt", "w") as f:
    f.write("nested")
[open("notes.txt").read(), sorted(os.listdir(".")), open("sub/dir/x.txt").read()]
