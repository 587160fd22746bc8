# An exception raised inside the standard library starts at main.py too.
# status: run-error
# error-first-frame: main.py
# error-contains: File "main.py", line 7, in <module>
# error-contains: json.decoder.JSONDecodeError
import json
json.loads("{not json")
