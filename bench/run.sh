#!/usr/bin/env bash
# Benchmarks pybox against plain python3 (and bubblewrap, as a reference
# sandbox) in ONE run, and prints a markdown table of ratios. Usage:
#   bench/run.sh [RUNS]        (from the repo root, after `make build`)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-40}
PYBOX=${PYBOX:-bin/pybox}
PY=/usr/bin/python3
NUMPY='import numpy as np; a = np.arange(1000000, dtype=np.float64); print(float((a * a).sum()))'
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

bench() { # name, then the commands; writes $tmp/name.json
  local name=$1; shift
  hyperfine -N -w 5 -r "$RUNS" --export-json "$tmp/$name.json" "$@" >/dev/null 2>&1
}
# Two floors beside bubblewrap: the namespaces pybox makes, made by a C
# program (util-linux unshare, nothing else of a sandbox), and the
# interpreter started as pybox starts it (-I -S -B, no site).
bench print "$PY -c 'print(1)'" "$PYBOX run -c 'print(1)'" \
  "bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/bin /bin --proc /proc --dev /dev --tmpfs /tmp $PY -c 'print(1)'" \
  "unshare --user --map-root-user --mount --pid --fork --net --ipc --uts --cgroup $PY -c 'print(1)'" \
  "$PY -I -S -B -c 'print(1)'"
bench numpy "$PY -c '$NUMPY'" "$PYBOX run -c '$NUMPY'"

python3 - "$tmp" <<'PY'
import json, sys, statistics
tmp = sys.argv[1]
def load(n):
    return json.load(open(f"{tmp}/{n}.json"))["results"]
print("| workload | command | median ms | ratio vs plain python3 |")
print("|---|---|---:|---:|")
for n, label in (("print", "print(1)"), ("numpy", "numpy snippet")):
    rs = load(n)
    base = statistics.median(rs[0]["times"])
    names = ["python3 -c", "pybox run -c", "bwrap --unshare-all python3 -c",
             "unshare (pybox's 7 namespaces) python3 -c", "python3 -I -S -B -c"]
    for name, r in zip(names, rs):
        m = statistics.median(r["times"])
        print(f"| {label} | `{name}` | {m*1000:.1f} | {m/base:.2f}x |")
PY

# pybox's own peak memory (supervisor process; the sandbox is in its cgroup).
if [ -x /usr/bin/time ]; then
  rss=$(/usr/bin/time -f %M "$PYBOX" run -c 'print(1)' 2>&1 >/dev/null | tail -1)
  echo
  echo "pybox supervisor peak RSS for \`pybox run -c 'print(1)'\`: ${rss} KiB"
  peak=$("$PYBOX" run --json -c 'print(1)' | python3 -c 'import json,sys; print(json.load(sys.stdin)["usage"]["peak_memory_bytes"]//1024)')
  echo "sandbox cgroup peak (init + interpreter): ${peak} KiB"
fi

# What a page fault costs here: the ratios above depend on it (see
# bench/faultcost.py).
echo
bench/faultcost.py

# The floor under any fork server here: a bare fork of a warm Python
# running the runner, no sandbox (see bench/forkfloor.py).
echo
"$PY" bench/forkfloor.py

# When the user's code starts, and how long the end takes (see
# bench/codestart.py).
echo
"$PY" bench/codestart.py --pybox "$PYBOX"
