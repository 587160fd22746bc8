# Output without a trailing newline is returned as written.
# status: success
# stdout-json: "no newline"
print("no newline", end="")
