#!/bin/sh
# `make CUDA=1 all` builds (into build-cuda/: tfswa, libtfswa.a/.so with the cuda backend,
# the GPU test programs of tests/gpu/) wherever nvcc is found, so that CUDA code can never
# rot on machines without a GPU; nothing of it runs here (tools/gpu_check.sh runs it on a
# GPU machine). Where nvcc is not found it says so and reports SKIP (not a pass).
# usage: tests/test_cuda_build.sh [BUILD]   (BUILD is ignored: the CUDA build has its own folder)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
NVCC=${NVCC:-$CUDA_HOME/bin/nvcc}
[ -x "$NVCC" ] || NVCC=$(command -v nvcc 2> /dev/null)
if [ -z "$NVCC" ] || [ ! -x "$NVCC" ]; then
  echo "SKIP nvcc not found: CUDA build not checked (CUDA_HOME=$CUDA_HOME)"
  echo "0 passed, 0 failed"
  exit 0
fi
pass=0; fail=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
log=$(mktemp) || exit 1
trap 'rm -f "$log"' EXIT
# SAN= on the command line: the sub-make must not inherit the suite's SAN=1 (and no BUILD=:
# a command-line BUILD would override the -cuda suffix)
start=$(date +%s)
if ${MAKE:-make} -C "$ROOT" --no-print-directory -j2 CUDA=1 SAN= NVCC="$NVCC" \
     CUDA_HOME="$CUDA_HOME" all > "$log" 2>&1; then
  ok "make CUDA=1 all builds ($(($(date +%s) - start)) s, $NVCC)"
else
  tail -n 40 "$log"
  bad "make CUDA=1 all failed (see above)"
fi
B="$ROOT/build-cuda"
# no warnings from our sources (nvcc's own notes about deprecated targets aside)
w=$(grep -E '^(src|tests|include)/([^:]*:[0-9]+(:[0-9]+)?: |[^(]*\([0-9]+\): )warning' "$log" |
  head -n 5)
[ -z "$w" ] && ok "no compiler warnings" || bad "warnings: $w"
for f in tfswa libtfswa.a libtfswa.so tests/gpu/test_cuda_conv tests/gpu/test_cuda_blasfft \
  tests/gpu/test_cuda_tblock; do
  [ -s "$B/$f" ] && ok "built $f" || bad "build-cuda/$f is missing"
done
# the CUDA code is in: device code for sm_80 and sm_90 plus compute_90 PTX, cuDNN linked
if command -v "$(dirname "$NVCC")/cuobjdump" > /dev/null 2>&1 && [ -s "$B/tfswa" ]; then
  list=$("$(dirname "$NVCC")/cuobjdump" --list-elf --list-ptx "$B/tfswa" 2> /dev/null)
  for a in sm_80 sm_90; do
    echo "$list" | grep -q "$a" && ok "tfswa holds $a code" || bad "tfswa has no $a code"
  done
  echo "$list" | grep -q 'compute_90.*ptx\|ptx.*compute_90\|sm_90.*\.ptx' &&
    ok "tfswa holds compute_90 PTX" || bad "tfswa has no compute_90 PTX: $list"
else
  echo "note: no cuobjdump next to $NVCC: the architectures in tfswa are not checked"
fi
readelf -S "$B/tfswa" 2> /dev/null | grep -q '\.nv_fatbin' && ok "tfswa holds device code (.nv_fatbin)" ||
  bad "tfswa has no .nv_fatbin section (no device code linked)"
nm "$B/libtfswa.a" 2> /dev/null | grep -q ' T tf_cuda_conv_forward$' &&
  ok "libtfswa.a has the cuda backend" || bad "libtfswa.a lacks tf_cuda_conv_forward"
for s in tf_cuda_linear_forward tf_cuda_attention_backward tf_cuda_stft_forward \
  tf_cuda_istft_backward tf_cuda_tblock_forward tf_cuda_tblock_backward; do
  nm "$B/libtfswa.a" 2> /dev/null | grep -q " T $s\$" && ok "libtfswa.a has $s" ||
    bad "libtfswa.a lacks $s"
done
for l in libcublas libcufft; do
  objdump -p "$B/tests/gpu/test_cuda_blasfft" 2> /dev/null | grep -q "NEEDED.*$l" &&
    ok "test_cuda_blasfft needs $l" || bad "test_cuda_blasfft does not link $l"
done
objdump -p "$B/libtfswa.so" 2> /dev/null | grep -q 'NEEDED.*libcudnn' &&
  ok "libtfswa.so needs libcudnn" || bad "libtfswa.so does not link cuDNN"
# where no GPU is, the CUDA build says so in one line, exit 2 (training); the device memory
# plan still prints, with the cuDNN workspace's upper bound and the reason, exit 0
if [ -x "$B/tfswa" ] && ! command -v nvidia-smi > /dev/null 2>&1; then
  out=$("$B/tfswa" train --preset tiny --device cuda:0 2>&1); rc=$?
  case "$out" in
    "tfswa: --device cuda:0: no CUDA device: "*) [ $rc -eq 2 ] && n=$(printf '%s\n' "$out" | wc -l) &&
      [ "$n" -eq 1 ] && ok "no GPU: one line, exit 2" || bad "no GPU: exit $rc, $out" ;;
    *) bad "no GPU: exit $rc, output: $out" ;;
  esac
  # separation, evaluation and bench separate (whose child processes open the device, the
  # first one only to probe it) run on the device in this build: without a GPU, the same line
  for cmd in "separate in.wav -o out --checkpoint ck" "evaluate --checkpoint ck --data_root d -o out" \
    "bench separate --short_seconds 1 --long_seconds 2"; do
    # shellcheck disable=SC2086
    out=$("$B/tfswa" $cmd --device cuda:0 2>&1); rc=$?
    case "$out" in
      "tfswa: --device cuda:0: no CUDA device: "*) [ $rc -eq 2 ] && n=$(printf '%s\n' "$out" | wc -l) &&
        [ "$n" -eq 1 ] && ok "no GPU: ${cmd%% -*} --device cuda:0: one line, exit 2" ||
        bad "no GPU: ${cmd%% -*}: exit $rc, $out" ;;
      *) bad "no GPU: ${cmd%% -*}: exit $rc, output: $out" ;;
    esac
  done
  out=$("$B/tfswa" plan --preset tiny --memory 1GiB --device cuda:0 2>&1); rc=$?
  if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^cuda:0 not opened: --device cuda:0: no CUDA device: ' &&
     printf '%s\n' "$out" | grep -q 'cuDNN workspace: upper bound (no GPU: 256 MiB per shape limit)'; then
    ok "no GPU: plan --device cuda:0 prints the device plan with the upper bound"
  else
    bad "no GPU: plan --device cuda:0: exit $rc, $(printf '%s\n' "$out" | head -n 3)"
  fi
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
