# multiprocessing (fork) works.
# backends: native,gvisor
# status: success
# return: [1, 4, 9]
import multiprocessing as mp


def sq(x):
    return x * x


with mp.get_context("fork").Pool(2) as p:
    r = p.map(sq, [1, 2, 3])
r
