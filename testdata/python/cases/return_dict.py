# Dicts map to JSON objects; non-string keys become strings.
# status: success
# return: {"a": 1, "b": [1, 2], "1": "int key", "null": 0}
{"a": 1, "b": [1, 2], 1: "int key", None: 0}
