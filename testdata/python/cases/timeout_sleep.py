# Sleeping past the timeout ends with status timeout.
# timeout: 1s
# status: timeout
import time
time.sleep(100)
