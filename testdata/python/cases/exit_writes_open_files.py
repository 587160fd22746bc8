# At exit, as at any interpreter exit, files the code left open are closed
# and what they buffered is written, wherever they are held (a global, a
# reference cycle, another module), and __del__ methods of objects the
# code still holds run.
# backends: native,gvisor,wasm
# collect-files: true
# status: success
# stdout: main
# stdout: deleted
# out-file: global.txt "buffered"
# out-file: cycle.bin "in a cycle"
# out-file: module.txt "held by a module"
import json


class D:
    def __del__(self):
        print("deleted")


class Node:
    pass


d = D()
f = open("global.txt", "w")
f.write("buffered")
n = Node()
n.self = n
n.f = open("cycle.bin", "wb")
n.f.write(b"in a cycle")
json.kept = open("module.txt", "w")
json.kept.write("held by a module")
print("main")
