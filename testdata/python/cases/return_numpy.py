# numpy arrays become nested lists.
# requires: numpy
# status: success
# return: [[0, 2], [4, 6]]
import numpy as np
np.arange(4).reshape(2, 2) * 2
