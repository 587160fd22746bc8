#!/usr/bin/env bash
# build-python-wasm.sh builds CPython 3.11 for WASI (python.wasm plus a zip of
# the standard library as .pyc) from Debian's own sources, for pybox's wasm
# backend. No prebuilt toolchain or interpreter is downloaded: the compiler
# (clang-19, lld-19, wasm32 compiler-rt, wasi-libc) and the sources
# (python3.11, zlib) come from Debian bookworm through apt.
#
# Usage: scripts/build-python-wasm.sh [OUT_DIR]    (default: build/wasm)
#
# Output (OUT_DIR):
#   python.wasm                         the interpreter (stripped), a WASI command
#   pybox.wasm                          the same interpreter as a WASI reactor
#                                       with pybox's entry points (pybox_init,
#                                       pybox_run: scripts/wasm/pybox_entry.c),
#                                       whose memory pybox snapshots
#   lib/python311.zip                   the stdlib, .pyc only
#   lib/python3.11/os.py                landmark getpath looks for
#   lib/python3.11/lib-dynload/.empty   site.py wants this directory
#   BUILD-INFO                          versions and sha256 sums
#
# The guest sees OUT_DIR/lib as /usr/local/lib (the interpreter's compiled-in
# prefix is /usr/local). With SOURCE_DATE_EPOCH fixed (below) the output is
# byte-identical from run to run.
#
# The script is idempotent: it installs only missing apt packages, reuses
# downloaded sources and rebuilds from a clean tree. It must run as root (for
# apt) unless every package is already installed.
set -euo pipefail

log() { printf '[python-wasm] %s\n' "$*" >&2; }
die() { printf '[python-wasm] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'die "failed at line $LINENO (exit $?): see the output above"' ERR

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/build/wasm}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=${PYBOX_WASM_WORK:-$ROOT/build/wasm-work}
JOBS=${JOBS:-$(nproc)}

# Fixed timestamps make the zip and the .pyc files reproducible.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1672531200} # 2023-01-01
export LC_ALL=C TZ=UTC
# A fixed PATH keeps version managers (pyenv shims...) out of the build.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

PY_VER=3.11
PY_SRC_PKG=python3.11
ZLIB_SRC_PKG=zlib
PACKAGES=(clang-19 lld-19 llvm-19 libclang-rt-19-dev-wasm32 wasi-libc
	dpkg-dev python3.11 zip xz-utils bzip2 make pkg-config)

# --- 1. apt packages and deb-src --------------------------------------------
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root to run: $*"
	fi
}

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

SRC_LIST=/etc/apt/sources.list.d/pybox-deb-src.sources
have_deb_src() {
	grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/
}
need_update=0
# The archive URI the host already uses for bookworm main (deb822 .sources
# files or the one-line format), so that deb-src comes from the same place.
main_uri() {
	awk 'NF==0 {u=""} /^URIs:/ {u=$2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == "bookworm" && u != "") {print u; exit}}' \
		/etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 || true
	# (awk fails on a missing file: a host may have no sources.list and no
	# .list files at all, only deb822 ones.)
	awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1 || true
}
if ! have_deb_src; then
	uri=$(main_uri | head -n 1)
	[ -n "$uri" ] || die "no apt source for bookworm main found to add deb-src from; add a deb-src entry for bookworm main"
	log "adding deb-src for bookworm main ($uri) in $SRC_LIST"
	as_root tee "$SRC_LIST" >/dev/null <<EOF
Types: deb-src
URIs: $uri
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	need_update=1
fi

mkdir -p "$WORK/src"
have_sources() {
	ls "$WORK"/src/${PY_SRC_PKG}_*.orig.tar.* >/dev/null 2>&1 &&
		ls "$WORK"/src/${ZLIB_SRC_PKG}_*.orig.tar.* >/dev/null 2>&1
}
if [ ${#missing[@]} -gt 0 ] || ! have_sources; then
	need_update=1
fi
if [ $need_update = 1 ]; then
	log "apt-get update"
	as_root apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# --- 2. sources ----------------------------------------------------------------
if ! have_sources; then
	log "downloading sources: $PY_SRC_PKG $ZLIB_SRC_PKG"
	(cd "$WORK/src" && apt-get source --download-only -qq "$PY_SRC_PKG" "$ZLIB_SRC_PKG" 2>&1 |
		grep -v 'unsandboxed as root' || true)
	have_sources || die "apt-get source did not fetch $PY_SRC_PKG and $ZLIB_SRC_PKG (is deb-src for bookworm main enabled?)"
fi
PY_TAR=$(ls "$WORK"/src/${PY_SRC_PKG}_*.orig.tar.* | sort | tail -1)
ZLIB_TAR=$(ls "$WORK"/src/${ZLIB_SRC_PKG}_*.orig.tar.* | sort | tail -1)
log "python source: $(basename "$PY_TAR")"
log "zlib source:   $(basename "$ZLIB_TAR")"

# --- 3. a WASI-SDK-shaped toolchain directory -----------------------------------
# CPython's Tools/wasm/wasi-env expects $WASI_SDK_PATH/bin/clang and a sysroot
# in $WASI_SDK_PATH/share/wasi-sysroot. The sysroot holds only wasi-libc (and
# our zlib), so the host's /usr/include never leaks into the build.
SDK=$WORK/sdk
SYSROOT=$SDK/share/wasi-sysroot
rm -rf "$SDK"
mkdir -p "$SDK/bin" "$SYSROOT/include" "$SYSROOT/lib/wasm32-wasi" "$SYSROOT/lib/pkgconfig"
[ -d /usr/include/wasm32-wasi ] || die "wasi-libc headers missing in /usr/include/wasm32-wasi"
ln -s /usr/include/wasm32-wasi "$SYSROOT/include/wasm32-wasi"
for f in /usr/lib/wasm32-wasi/*; do ln -s "$f" "$SYSROOT/lib/wasm32-wasi/"; done
[ -f /usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a ] ||
	die "wasm32 compiler-rt missing (package libclang-rt-19-dev-wasm32)"
wrap() { # wrap NAME COMMAND...
	printf '#!/bin/sh\nexec %s "$@"\n' "$2" >"$SDK/bin/$1"
	chmod +x "$SDK/bin/$1"
}
wrap clang "/usr/bin/clang-19 --target=wasm32-wasi"
wrap clang++ "/usr/bin/clang++-19 --target=wasm32-wasi"
wrap clang-cpp "/usr/bin/clang-19 --target=wasm32-wasi -E"
wrap wasm-ld /usr/bin/wasm-ld-19
wrap llvm-ar /usr/bin/llvm-ar-19
wrap ranlib /usr/bin/llvm-ranlib-19
wrap llvm-ranlib /usr/bin/llvm-ranlib-19
wrap llvm-strip /usr/bin/llvm-strip-19
CC="$SDK/bin/clang --sysroot=$SYSROOT"
$CC -o "$WORK/hello.wasm" -x c - <<<'int main(void){return 0;}' ||
	die "the wasm32-wasi toolchain cannot link a trivial program"

# --- 4. zlib, static, into the sysroot ------------------------------------------
log "building zlib for wasm32-wasi"
rm -rf "$WORK/zlib"
mkdir -p "$WORK/zlib"
tar -xf "$ZLIB_TAR" -C "$WORK/zlib" --strip-components=1
(
	cd "$WORK/zlib"
	objs=()
	for f in adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback \
		inffast inflate inftrees trees uncompr zutil; do
		$CC -O2 -w -D_LARGEFILE64_SOURCE=1 -DHAVE_UNISTD_H -c "$f.c" -o "$f.o"
		objs+=("$f.o")
	done
	rm -f libz.a
	"$SDK/bin/llvm-ar" rcsD libz.a "${objs[@]}"
)
cp "$WORK/zlib/libz.a" "$SYSROOT/lib/wasm32-wasi/libz.a"
cp "$WORK/zlib/zlib.h" "$WORK/zlib/zconf.h" "$SYSROOT/include/"
ZLIB_VERSION=$(sed -n 's/^#define ZLIB_VERSION "\(.*\)"/\1/p' "$WORK/zlib/zlib.h")
cat >"$SYSROOT/lib/pkgconfig/zlib.pc" <<EOF
prefix=/
libdir=\${prefix}/lib/wasm32-wasi
includedir=\${prefix}/include
Name: zlib
Description: zlib compression library
Version: $ZLIB_VERSION
Libs: -L\${libdir} -lz
Cflags: -I\${includedir}
EOF

# --- 5. CPython -----------------------------------------------------------------
# Debian's own interpreter, not whatever python3.11 is first on PATH.
BUILD_PY=/usr/bin/python$PY_VER
[ -x "$BUILD_PY" ] || die "$BUILD_PY (the build Python) is missing"
SRC=$WORK/cpython
log "unpacking $(basename "$PY_TAR")"
rm -rf "$SRC"
mkdir -p "$SRC"
tar -xf "$PY_TAR" -C "$SRC" --strip-components=1
SRC_VER=$(sed -n 's/^#define PY_VERSION[[:space:]]*"\(.*\)"/\1/p' "$SRC/Include/patchlevel.h")
BUILD_VER=$("$BUILD_PY" -c 'import platform; print(platform.python_version())')
# Frozen modules and .pyc files are made by the build Python, so the marshal
# format must match: same minor version.
case "$SRC_VER" in "$PY_VER".*) ;; *) die "source is Python $SRC_VER, want $PY_VER.x" ;; esac
log "CPython $SRC_VER, build Python $BUILD_VER ($BUILD_PY)"
touch "$SRC/Modules/Setup.local" # as Tools/wasm/wasm_build.py does for WASI

B=$SRC/builddir/wasi
mkdir -p "$B"
cd "$B"
log "configure (log: $B/configure.log)"
# - clang >= 16 makes these two warnings errors; CPython 3.11.2 predates that.
# - wazero rejects absolute-time clock subscriptions (poll_oneoff), which
#   clock_nanosleep(TIMER_ABSTIME) needs; without it time.sleep uses a
#   relative nanosleep.
if ! CONFIG_SITE=../../Tools/wasm/config.site-wasm32-wasi \
	WASI_SDK_PATH="$SDK" \
	CFLAGS="-Wno-error=int-conversion -Wno-error=incompatible-function-pointer-types -Wno-int-conversion -Wno-incompatible-function-pointer-types" \
	ac_cv_func_clock_nanosleep=no ac_cv_lib_rt_clock_nanosleep=no \
	../../Tools/wasm/wasi-env ../../configure -C \
	--host=wasm32-unknown-wasi \
	--build="$(../../config.guess)" \
	--with-build-python="$BUILD_PY" \
	--prefix=/usr/local \
	--disable-test-modules \
	>configure.log 2>&1; then
	tail -40 configure.log >&2
	die "configure failed (full log: $B/configure.log)"
fi

log "make -j$JOBS (log: $B/make.log)"
if ! WASI_SDK_PATH="$SDK" ../../Tools/wasm/wasi-env make -j"$JOBS" all >make.log 2>&1; then
	grep -E 'error|Error' make.log | tail -30 >&2 || true
	die "make failed (full log: $B/make.log)"
fi
[ -f python.wasm ] || die "make did not produce python.wasm"

log "pybox.wasm (reactor with pybox's entry points)"
if ! WASI_SDK_PATH="$SDK" ../../Tools/wasm/wasi-env make -f Makefile -f "$ROOT/scripts/wasm/pybox.mk" \
	PYBOX_ENTRY="$ROOT/scripts/wasm/pybox_entry.c" pybox.wasm >pybox.log 2>&1; then
	tail -30 pybox.log >&2
	die "linking pybox.wasm failed (full log: $B/pybox.log)"
fi

log "stdlib zip"
if ! WASI_SDK_PATH="$SDK" ../../Tools/wasm/wasi-env make wasm_stdlib >stdlib.log 2>&1; then
	tail -30 stdlib.log >&2
	die "make wasm_stdlib failed (full log: $B/stdlib.log)"
fi
ZIP_IN=$B/usr/local/lib/python${PY_VER/./}.zip
[ -f "$ZIP_IN" ] || die "make wasm_stdlib did not produce $ZIP_IN"

# --- 6. install, reproducibly ------------------------------------------------------
log "installing into $OUT"
rm -rf "$OUT/lib" "$OUT/python.wasm" "$OUT/pybox.wasm" "$OUT/BUILD-INFO"
mkdir -p "$OUT/lib/python$PY_VER/lib-dynload"
/usr/bin/llvm-strip-19 -o "$OUT/python.wasm" python.wasm
/usr/bin/llvm-strip-19 -o "$OUT/pybox.wasm" pybox.wasm
# Re-pack the zip with sorted names and fixed timestamps: make wasm_stdlib
# takes the .pyc timestamps from the build time.
"$BUILD_PY" - "$ZIP_IN" "$OUT/lib/python${PY_VER/./}.zip" <<'EOF'
import sys, time, zipfile
src, dst = sys.argv[1], sys.argv[2]
import os
ts = time.gmtime(int(os.environ["SOURCE_DATE_EPOCH"]))[:6]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
    for name in sorted(zin.namelist()):
        zi = zipfile.ZipInfo(name, ts)
        zi.compress_type = zipfile.ZIP_DEFLATED
        zi.external_attr = 0o644 << 16
        zi.create_system = 3
        zout.writestr(zi, zin.read(name), compresslevel=9)
EOF
cp "$SRC/Lib/os.py" "$OUT/lib/python$PY_VER/os.py"
: >"$OUT/lib/python$PY_VER/lib-dynload/.empty"
touch -d "@$SOURCE_DATE_EPOCH" "$OUT/python.wasm" "$OUT/pybox.wasm" "$OUT/lib/python${PY_VER/./}.zip" \
	"$OUT/lib/python$PY_VER/os.py" "$OUT/lib/python$PY_VER/lib-dynload/.empty"

{
	echo "cpython $SRC_VER ($(basename "$PY_TAR"))"
	echo "zlib $ZLIB_VERSION ($(basename "$ZLIB_TAR"))"
	echo "clang $(/usr/bin/clang-19 --version | head -1)"
	echo "wasi-libc $(dpkg-query -W -f='${Version}' wasi-libc)"
	echo "SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH"
	(cd "$OUT" && sha256sum python.wasm pybox.wasm "lib/python${PY_VER/./}.zip")
} >"$OUT/BUILD-INFO"
cat "$OUT/BUILD-INFO" >&2
log "done: $OUT/python.wasm ($(stat -c %s "$OUT/python.wasm") bytes)"
