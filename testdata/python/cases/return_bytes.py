# bytes are decoded as UTF-8 (invalid bytes become U+FFFD).
# status: success
# return: ["abc", "é", "\ufffd"]
[b"abc", "é".encode(), b"\xff"]
