#!/bin/sh
# `make install` into a temporary prefix, then use it the way a C user does: build
# examples/separate.c with pkg-config against the shared library and (pkg-config --static)
# against the static one, and run both on a checkpoint made by the installed bin/tfswa,
# which must find its configs (share/tfswa/configs) from an unrelated directory.
# usage: tests/test_install.sh BUILD_DIR   (prints ok/FAIL lines, then "N passed, N failed")
# Environment: MAKE, CC, SAN (as make test passes them).
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MAKE=${MAKE:-make}
CC=${CC:-cc}
pass=0; fail=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { # check NAME COMMAND...: ok when the command succeeds (its output is kept in $tmp/log)
  name=$1; shift
  if "$@" > "$tmp/log" 2>&1; then ok "$name"; else bad "$name: $*"; tail -n 20 "$tmp/log"; fi
}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
[ "$(pwd)" = "$ROOT" ] || BUILD=$(cd "$BUILD" && pwd)
san=""
[ "$SAN" = 1 ] && san="-fsanitize=address,undefined"
unset TFSWA_CONFIG_DIR
P="$tmp/prefix"
major=$(sed -n 's/^#define TFSWA_VERSION_MAJOR \([0-9]*\).*/\1/p' "$ROOT/include/tfswa.h")

check "make install PREFIX=$P" \
  "$MAKE" -C "$ROOT" --no-print-directory install BUILD="$BUILD" SAN="$SAN" PREFIX="$P"
missing=""
for f in lib/libtfswa.a lib/libtfswa.so "lib/libtfswa.so.$major" include/tfswa.h \
  lib/pkgconfig/tfswa.pc bin/tfswa share/tfswa/configs/model/tiny.yaml \
  share/tfswa/configs/train/default.yaml share/tfswa/configs/data/musdb.yaml; do
  [ -e "$P/$f" ] || missing="$missing $f"
done
real=$(readlink -f "$P/lib/libtfswa.so")
case "$real" in "$P"/lib/libtfswa.so.$major.[0-9]*.[0-9]*) ;; *) missing="$missing libtfswa.so.$major.x.y" ;; esac
[ -z "$missing" ] && ok "installed files and links" || bad "not installed:$missing"
grep -qx "prefix=$P" "$P/lib/pkgconfig/tfswa.pc" && ok "tfswa.pc has the prefix" ||
  bad "tfswa.pc does not say prefix=$P"

# DESTDIR: staged under DESTDIR, configured for PREFIX
check "make install DESTDIR" \
  "$MAKE" -C "$ROOT" --no-print-directory install BUILD="$BUILD" SAN="$SAN" PREFIX=/opt/tfswa \
  DESTDIR="$tmp/stage"
[ -x "$tmp/stage/opt/tfswa/bin/tfswa" ] && grep -qx "prefix=/opt/tfswa" \
  "$tmp/stage/opt/tfswa/lib/pkgconfig/tfswa.pc" && ok "DESTDIR staging, tfswa.pc for PREFIX" ||
  bad "DESTDIR=$tmp/stage PREFIX=/opt/tfswa: bin/tfswa or tfswa.pc wrong"
check "make uninstall DESTDIR" \
  "$MAKE" -C "$ROOT" --no-print-directory uninstall BUILD="$BUILD" PREFIX=/opt/tfswa \
  DESTDIR="$tmp/stage"
left=$(find "$tmp/stage" -type f -o -type l)
[ -z "$left" ] && ok "uninstall removes every installed file" || bad "uninstall left: $left"

# the installed binary, from an unrelated directory, finds PREFIX/share/tfswa/configs
mkdir -p "$tmp/cwd" && cd "$tmp/cwd" || exit 1
check "installed tfswa plan --preset tiny finds its configs" \
  "$P/bin/tfswa" plan --memory 1GiB --preset tiny
check "installed tfswa synth" "$P/bin/tfswa" synth data --tracks 2 --test_tracks 1 --seconds 1 \
  --threads 1
check "installed tfswa train (1 step, tiny, vocals)" "$P/bin/tfswa" train --data_root data \
  --preset tiny --targets vocals --segment_seconds 0.5 --batch_size 1 --num_workers 0 \
  --max_steps 1 --val_every 0 --num_threads 1 --output_dir run
song="data/test/Synth Test 0000 - Seed 1/mixture.wav"

# a C user: pkg-config --cflags --libs against the shared library
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
flags=$(pkg-config --cflags --libs tfswa) && ok "pkg-config --cflags --libs tfswa: $flags" ||
  bad "pkg-config --cflags --libs tfswa"
check "examples/separate.c builds with pkg-config (shared)" \
  $CC -std=c11 -Wall -Wextra -Werror $san -o sep_shared "$ROOT/examples/separate.c" $flags
objdump -p sep_shared 2> /dev/null | grep -q "NEEDED *libtfswa.so.$major\$" &&
  ok "the example needs libtfswa.so.$major" || bad "sep_shared does not need libtfswa.so.$major"
check "the example runs on the installed libtfswa.so" \
  env LD_LIBRARY_PATH="$P/lib" ./sep_shared "$song" out_shared run
LD_LIBRARY_PATH="$P/lib" ldd sep_shared 2> /dev/null | grep -q "libtfswa.so.$major => $P/lib/" &&
  ok "it loads $P/lib/libtfswa.so.$major" || bad "sep_shared does not load $P/lib's library"
[ -s out_shared/mixture/vocals.wav ] && ok "it wrote vocals.wav" ||
  bad "out_shared/mixture/vocals.wav missing"

# the stream API: examples/stream.c (libsndfile reads the file) on the installed library
check "examples/stream.c builds with pkg-config (shared)" \
  $CC -std=c11 -Wall -Wextra -Werror $san -o stream_shared "$ROOT/examples/stream.c" $flags \
  $(pkg-config --cflags --libs sndfile)
mkdir -p out_stream
check "the stream example runs on the installed libtfswa.so" \
  env LD_LIBRARY_PATH="$P/lib" ./stream_shared "$song" out_stream run 64
[ -s out_stream/vocals.wav ] && ok "it wrote vocals.wav" || bad "out_stream/vocals.wav missing"

# pkg-config --static: libtfswa.a and its Libs.private (-l:libtfswa.a picks the archive)
sflags=$(pkg-config --static --libs tfswa | sed 's/-ltfswa\( \|$\)/-l:libtfswa.a /')
check "examples/separate.c links statically with pkg-config --static" \
  $CC -std=c11 -Wall -Wextra -Werror $san -o sep_static "$ROOT/examples/separate.c" \
  $(pkg-config --cflags tfswa) $sflags
objdump -p sep_static 2> /dev/null | grep -q "NEEDED *libtfswa" &&
  bad "sep_static needs libtfswa.so" || ok "the static example needs no libtfswa.so"
check "the static example runs" ./sep_static "$song" out_static run
[ -s out_static/mixture/vocals.wav ] && ok "it wrote vocals.wav" ||
  bad "out_static/mixture/vocals.wav missing"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
