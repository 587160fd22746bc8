# Nested containers convert recursively.
# status: success
# return: {"users": [{"name": "ada", "tags": ["x", "y"], "meta": {"age": 36}}], "count": 1}
users = [{"name": "ada", "tags": ("x", "y"), "meta": {"age": 36}}]
{"users": users, "count": len(users)}
