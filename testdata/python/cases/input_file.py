# Input files are in the working directory before the code runs.
# file: data.csv "a,b\n1,2\n3,4\n"
# file: sub/dir/raw.bin "\u0000\u0001binary"
# status: success
# return: [[["a", "b"], ["1", "2"], ["3", "4"]], 8]
import csv
rows = list(csv.reader(open("data.csv")))
[rows, len(open("sub/dir/raw.bin", "rb").read())]
