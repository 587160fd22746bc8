#!/usr/bin/env python3
"""The floor under any fork server on this machine: a bare fork of a warm
Python that runs pybox's runner on print(1) and exits, with no sandbox at
all, against plain `python3 -c 'print(1)'` in the same run.

    bench/forkfloor.py [-n RUNS] [--gap SECONDS]

pybox's fork server (bench/forkserver) adds namespaces, mounts, Landlock,
seccomp, a cgroup and a supervisor on top of exactly this. Back to back,
each execution pays for a fork (the parent's page tables copied) and the
child's copy-on-write faults on whatever it touches; where faults are dear
(bench/faultcost.py) that alone can exceed a ratio target, whatever the
sandbox does. This script measures that floor, so that a fork-server
ratio can be read against what the machine allows.

Prints p50s of: the bare fork (fork to the child's exit, reaped), the
child's run of the runner, and plain python3 -c; and the ratio of the
first to the last.
"""
import argparse
import gc
import json
import os
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "..", "internal", "runner", "runner.py")
PY = "/usr/bin/python3"


def frame(obj):
    b = json.dumps(obj).encode()
    return struct.pack(">I", len(b)) + b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=60, help="runs of each (default 60)")
    ap.add_argument("--gap", type=float, default=0.0, help="seconds between forks (default 0: back to back)")
    args = ap.parse_args()

    # A template like pybox's lean one: the runner loaded and run once,
    # every object frozen out of the collector's reach.
    R = {"__name__": "pybox_runner"}
    with open(RUNNER) as f:
        exec(compile(f.read(), "<runner>", "exec"), R)
    devnull = os.open(os.devnull, os.O_WRONLY)

    def run_once():
        r, w = os.pipe()
        os.write(w, frame({"type": "exec", "code": "print(1)"}))
        os.close(w)
        saved = (sys.modules.get("__main__"), sys.argv[:], sys.path[:], sys.meta_path[:])
        out = os.dup(devnull)
        sys.argv[:] = ["-c", str(r), str(out)]
        stdout = os.dup(1)
        os.dup2(devnull, 1)
        try:
            R["main"]()
        finally:
            os.dup2(stdout, 1)
            os.close(stdout)
            sys.modules["__main__"] = saved[0]
            sys.argv[:], sys.path[:], sys.meta_path[:] = saved[1], saved[2], saved[3]
            for fd in (r, out):
                try:
                    os.close(fd)
                except OSError:
                    pass

    for _ in range(3):
        run_once()
    gc.collect()
    gc.freeze()

    forks, runs, plain = [], [], []
    for i in range(args.n):
        # Interleaved, so that the VM's drift hits both alike.
        t = time.perf_counter()
        subprocess.run([PY, "-c", "print(1)"], stdout=subprocess.DEVNULL, check=True)
        plain.append(time.perf_counter() - t)
        time.sleep(args.gap)
        r, w = os.pipe()
        t = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            t0 = time.perf_counter()
            run_once()
            os.write(w, struct.pack("d", time.perf_counter() - t0))
            os._exit(0)
        os.close(w)
        d = os.read(r, 8)
        os.waitpid(pid, 0)
        forks.append(time.perf_counter() - t)
        os.close(r)
        runs.append(struct.unpack("d", d)[0])
        time.sleep(args.gap)

    f, c, p = (statistics.median(x) * 1e3 for x in (forks, runs, plain))
    print("| what (p50, %d runs%s) | ms |" % (args.n, ", %.0f ms apart" % (args.gap * 1e3) if args.gap else ", back to back"))
    print("|---|---:|")
    print("| bare fork of a warm Python, runner on print(1), exit, reaped | %.2f |" % f)
    print("| of which the child's runner call | %.2f |" % c)
    print("| plain `python3 -c 'print(1)'` | %.2f |" % p)
    print("| ratio: bare fork / plain | %.3fx |" % (f / p))


if __name__ == "__main__":
    main()
