# numpy scalars become plain numbers.
# requires: numpy
# status: success
# return: [1.5, 7, true]
import numpy as np
[np.float64(1.5), np.int32(7), np.bool_(True)]
