# The traceback shows every frame in main.py with its line.
# status: run-error
# error-first-frame: main.py
# error-contains: File "main.py", line 16, in <module>
# error-contains: File "main.py", line 13, in outer
# error-contains: File "main.py", line 9, in inner
# error-contains: ValueError: bad value 42
def inner(v):
    raise ValueError(f"bad value {v}")


def outer():
    inner(42)


outer()
