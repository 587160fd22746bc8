# Python modules and packages given as input files can be imported.
# file: mymod.py "def double(x):\n    return 2 * x\n"
# file: pkg/__init__.py ""
# file: pkg/util.py "X = 7\n"
# status: success
# return: [42, 7]
import mymod
from pkg.util import X
[mymod.double(21), X]
