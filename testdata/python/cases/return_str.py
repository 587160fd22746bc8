# Strings are returned as JSON strings, escapes included.
# status: success
# return: "line1\nline2\t\"quoted\""
"line1\nline2\t\"quoted\""
