# Runaway recursion is a RecursionError, not a crash.
# status: run-error
# error-contains: RecursionError
def f(n):
    return f(n + 1)


f(0)
