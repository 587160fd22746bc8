# With collect-files the files left in /work come back with their content.
# collect-files: true
# status: success
# out-file: out.txt "result data\n"
# out-file: deep/nested.json "{\"ok\": true}"
import os
os.makedirs("deep")
with open("out.txt", "w") as f:
    f.write("result data\n")
with open("deep/nested.json", "w") as f:
    f.write('{"ok": true}')
