# Request globals are injected as global variables.
# globals: {"x": 41, "name": "pybox", "items": [1, 2, 3], "cfg": {"deep": {"k": true}}}
# status: success
# stdout: hello pybox
# return: [42, 6, true]
print("hello", name)
[x + 1, sum(items), cfg["deep"]["k"]]
