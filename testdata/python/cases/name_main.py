# The code runs as __main__ from main.py.
# status: success
# stdout: main
# return: ["__main__", "main.py"]
if __name__ == "__main__":
    print("main")
[__name__, __file__]
