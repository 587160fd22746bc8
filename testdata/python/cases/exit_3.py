# SystemExit with a code: run-error with that exit code.
# status: run-error
# exit_code: 3
# stdout: exiting
print("exiting")
raise SystemExit(3)
