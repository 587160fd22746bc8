# A CPU-bound loop past the timeout ends with status timeout.
# timeout: 1s
# status: timeout
# stdout: started
print("started", flush=True)
while True:
    pass
