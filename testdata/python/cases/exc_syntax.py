# A syntax error is a run-error that names main.py and the line; nothing runs.
# status: run-error
# exit_code: 1
# stdout-json: ""
# error-contains: File "main.py", line 8
# error-contains: SyntaxError
print("never printed")
x = (1, 2
