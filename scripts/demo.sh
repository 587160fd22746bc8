#!/usr/bin/env bash
# make demo: shows pybox on real examples.
set -euo pipefail
PYBOX=${1:-bin/pybox}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
step pybox doctor
"$PYBOX" doctor || true
step pybox run examples/numpy_demo.py
"$PYBOX" run examples/numpy_demo.py
step pybox run --json -c '"hello from " + __import__("platform").node()'
"$PYBOX" run --json -c '"hello from " + __import__("platform").node()'
echo
step pybox run examples/escape.py
"$PYBOX" run examples/escape.py
step "pybox run --backend wasm -c 'import sys; print(sys.platform, sys.version.split()[0])'"
"$PYBOX" run --backend wasm -c 'import sys; print(sys.platform, sys.version.split()[0])' || echo "(wasm backend unavailable: run make python-wasm)"
step "pybox run --memory 64MiB -c 'x = bytearray(1 << 30)'"
"$PYBOX" run --memory 64MiB -c 'x = bytearray(1 << 30)' || echo "(exit code $?: memory limit)"
step "pybox run --timeout 1s -c 'while True: pass'"
"$PYBOX" run --timeout 1s -c 'while True: pass' || echo "(exit code $?: timeout)"
