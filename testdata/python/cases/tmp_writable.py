# /tmp is writable, and tempfile works.
# status: success
# return: "tmp ok"
import tempfile
with tempfile.NamedTemporaryFile("w+") as f:
    f.write("tmp ok")
    f.flush()
    f.seek(0)
    v = f.read()
v
