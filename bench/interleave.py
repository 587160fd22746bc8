#!/usr/bin/env python3
"""Times commands in alternation and prints each one's median and its ratio
to the first command's. On a noisy machine (a shared VM whose speed drifts
over minutes) alternating runs compares like with like where hyperfine's
one-command-after-the-other blocks do not.

    bench/interleave.py [-n ROUNDS] [--gap SECONDS] [--shuffle] [--block K] [--any-exit] CMD [CMD ...]

Each CMD is one shell-quoted string, split with shlex (no shell runs it).
A run right after another command's pays for what that one left the kernel
to do (a pybox run's network namespace is torn down by kernel threads
after it exits) and finds colder caches: plain python3 measures 1-2 ms
slower right after a pybox run. --block K runs each command K times in a
row per round and keeps the last K-1, so that every kept run follows one
of its own, as back-to-back runs of one command do.
--gap sleeps between runs, as a user's occasional runs are spaced: some
kernel paths are only slow after a pause (on cgroup v1 the first cgroup
migration after ~50 ms without one waits for an RCU grace period), and
back-to-back runs never see them.
Example (from the repo root, after `make build`):

    bench/interleave.py -n 150 "/usr/bin/python3 -c 'print(1)'" \\
        "bin/pybox run -c 'print(1)'"
"""
import argparse
import os
import random
import shlex
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="runs of each command (default 100)")
    ap.add_argument("-w", type=int, default=3, help="warm-up runs of each command (default 3)")
    ap.add_argument("--gap", type=float, default=0, help="seconds to sleep before each run (default 0)")
    ap.add_argument("--shuffle", action="store_true",
                    help="run the commands in a new random order each round (a command that "
                    "follows another pays for what that one left the kernel to do)")
    ap.add_argument("--block", type=int, default=1,
                    help="run each command this many times in a row per round and keep all but the "
                    "first of them: each kept run then follows a run of the same command, as in "
                    "a user's back-to-back runs, while rounds still alternate against the VM's drift")
    ap.add_argument("--any-exit", action="store_true",
                    help="accept non-zero exit statuses (commands whose code raises)")
    ap.add_argument("cmds", nargs="+", help="commands; the first is the baseline")
    a = ap.parse_args()
    cmds = [shlex.split(c) for c in a.cmds]
    times = [[] for _ in cmds]
    with open(os.devnull, "w") as null:
        def run(c):
            if a.gap:
                time.sleep(a.gap)
            t = time.perf_counter()
            r = subprocess.run(c, stdout=null, stderr=null)
            if r.returncode != 0 and not a.any_exit:
                sys.exit("interleave: %s exited with %d" % (shlex.join(c), r.returncode))
            return time.perf_counter() - t
        for c in cmds:
            for _ in range(a.w):
                run(c)
        order = list(range(len(cmds)))
        for _ in range(a.n):
            if a.shuffle:
                random.shuffle(order)
            for i in order:
                for k in range(a.block):
                    t = run(cmds[i])
                    if k > 0 or a.block == 1:
                        times[i].append(t)
    base = statistics.median(times[0])
    print("| command | median ms | ratio |")
    print("|---|---:|---:|")
    for c, t in zip(a.cmds, times):
        m = statistics.median(t)
        print("| `%s` | %.2f | %.2fx |" % (c, m * 1000, m / base))


if __name__ == "__main__":
    main()
