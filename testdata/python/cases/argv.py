# sys.argv looks like `python main.py`.
# status: success
# return: ["main.py"]
import sys
sys.argv
