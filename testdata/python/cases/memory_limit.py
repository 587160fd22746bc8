# Allocating past the memory limit ends with status memory-limit.
# memory: 64MiB
# status: memory-limit
chunks = []
while True:
    chunks.append(b"x" * (4 << 20))
