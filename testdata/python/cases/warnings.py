# Warnings go to stderr and do not fail the run.
# status: success
# stderr-contains: UserWarning: careful
# return: 1
import warnings
warnings.warn("careful")
1
