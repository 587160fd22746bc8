# A CPU-bound loop past the timeout ends with status timeout. (3 s: a
# cold gVisor sandbox under a loaded test run took over 1 s to print.)
# timeout: 3s
# status: timeout
# stdout: started
print("started", flush=True)
while True:
    pass
