# An uncaught exception: run-error, traceback from main.py with the right
# line, output printed before it is kept.
# status: run-error
# exit_code: 1
# stdout: before
# return: absent
# error-first-frame: main.py
# error-contains: File "main.py", line 11, in <module>
# error-contains: ZeroDivisionError: division by zero
print("before")
1 / 0
print("after")
