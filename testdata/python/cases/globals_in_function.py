# Injected globals are visible from functions defined in main.py.
# globals: {"factor": 3}
# status: success
# return: 21
def scale(v):
    return v * factor


scale(7)
