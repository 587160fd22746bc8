# Threads work.
# backends: native,gvisor
# status: success
# return: [0, 1, 4, 9, 16, 25, 36, 49]
import threading
out = [None] * 8


def work(i):
    out[i] = i * i


ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for t in ts:
    t.start()
for t in ts:
    t.join()
out
