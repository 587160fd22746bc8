#!/usr/bin/env python3
"""When does the user's code start? For plain python3, python3 as pybox
starts it (-I -S -B) and `pybox run`, in alternation: the code prints the
wall clock (time.time_ns()) as its first act, so each run splits into
launch-to-code and code-to-exit.

    bench/codestart.py [-n RUNS] [--pybox PATH]

A cold `pybox run` is two chains that meet when the code starts: pybox's
own start up to the config it sends, and the sandbox's (the early clone,
the init's start and steps, then the interpreter's own start). This shows
how late the code starts against an interpreter started the same way
without a sandbox, and how long the end takes (the result, the
sandbox's teardown, pybox's exit). Medians, in ms.
"""
import argparse
import os
import statistics
import subprocess
import time

CODE = "import time; print(time.time_ns())"
PY = "/usr/bin/python3"


def one(cmd):
    t0 = time.time_ns()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    t2 = time.time_ns()
    t1 = int(out.split()[-1])
    return (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t2 - t0) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=40, help="runs of each (default 40)")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--pybox", default=os.path.join(here, "..", "bin", "pybox"), help="pybox binary (default bin/pybox)")
    args = ap.parse_args()
    cmds = {
        "`python3 -c`": [PY, "-c", CODE],
        "`python3 -I -S -B -c` (as the sandbox starts it)": [PY, "-I", "-S", "-B", "-c", CODE],
        "`pybox run -c`": [args.pybox, "run", "-c", CODE],
    }
    for c in cmds.values():  # warm-up
        one(c)
    res = {k: [] for k in cmds}
    for _ in range(args.n):
        for k, c in cmds.items():
            res[k].append(one(c))
    print("| command | launch to code | code to exit | total |")
    print("|---|---:|---:|---:|")
    for k, v in res.items():
        a, b, c = (statistics.median(x[i] for x in v) for i in range(3))
        print("| %s | %.1f | %.1f | %.1f |" % (k, a, b, c))


if __name__ == "__main__":
    main()
