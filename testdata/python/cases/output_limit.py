# Printing past the output limit ends with status output-limit; stdout is cut
# at the limit.
# output-limit: 64KiB
# status: output-limit
# stdout-truncated: true
# stdout-max-bytes: 65536
while True:
    print("A" * 1000)
