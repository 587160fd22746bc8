# Non-ASCII text survives stdout, stderr and the return value.
# status: success
# stdout: héllo wörld ✓ 日本語 🐍
# stderr: ошибка ✗
# return: "ünïcödé 🐍"
import sys
print("héllo wörld ✓ 日本語 🐍")
print("ошибка ✗", file=sys.stderr)
"ünïcödé 🐍"
