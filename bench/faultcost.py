#!/usr/bin/env python3
"""Measures what a page fault costs on this machine, to say which phase a
noisy VM is in when benchmark ratios are read.

    bench/faultcost.py [-n PAGES]

pybox's cold path costs about as many page faults again as the
interpreter's own start (a Go runtime in pybox and another in the
sandbox's init), and a fork-server execution is mostly copy-on-write
faults. So where faults are dear (a PVM guest, where they trap to the
hypervisor: 11-16 µs for a first write to an anonymous page, against
~0.5-2 µs on ordinary VMs) every ratio against plain python3 gets worse,
whatever pybox does. Report this next to the ratios.

Prints, per 4 KiB page: the first write to fresh anonymous memory, a
copy-on-write fault in a forked child, and a read fault on a cached file
(the kernel maps up to 16 pages per fault there: fault-around).
"""
import argparse
import mmap
import os
import statistics
import sys
import time

PAGE = mmap.PAGESIZE


def touch(m, n, value):
    t = time.perf_counter()
    for i in range(n):
        m[i * PAGE] = value
    return (time.perf_counter() - t) / n


def first_write(n):
    m = mmap.mmap(-1, n * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        fault = touch(m, n, 1)
        again = touch(m, n, 2)  # no faults: the loop's own cost
        return fault - again
    finally:
        m.close()


def cow(n):
    m = mmap.mmap(-1, n * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    touch(m, n, 1)
    base = touch(m, n, 2)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, repr(touch(m, n, 3) - base).encode())
        os._exit(0)
    os.close(w)
    out = b""
    while True:
        b = os.read(r, 64)
        if not b:
            break
        out += b
    os.close(r)
    os.waitpid(pid, 0)
    m.close()
    return float(out)


def file_read(n):
    # A file of n pages, in the page cache once written.
    path = "/tmp/pybox-faultcost-%d" % os.getpid()
    with open(path, "wb") as f:
        f.write(b"x" * (n * PAGE))
    try:
        with open(path, "rb") as f:
            m = mmap.mmap(f.fileno(), n * PAGE, prot=mmap.PROT_READ, flags=mmap.MAP_PRIVATE)
            try:
                t = time.perf_counter()
                s = 0
                for i in range(n):
                    s += m[i * PAGE]
                fault = (time.perf_counter() - t) / n
                t = time.perf_counter()
                for i in range(n):
                    s += m[i * PAGE]
                return fault - (time.perf_counter() - t) / n
            finally:
                m.close()
    finally:
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=2000, help="pages per measurement (default 2000)")
    ap.add_argument("-r", type=int, default=5, help="repetitions; the median is printed (default 5)")
    a = ap.parse_args()
    if a.n < 1 or a.r < 1:
        ap.error("-n and -r must be positive")
    rows = (("first write to an anonymous page", first_write),
            ("copy-on-write in a forked child", cow),
            ("read of a cached file, per page", file_read))
    print("| fault | µs per page |")
    print("|---|---:|")
    for name, fn in rows:
        v = statistics.median(fn(a.n) for _ in range(a.r))
        print("| %s | %.2f |" % (name, v * 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
