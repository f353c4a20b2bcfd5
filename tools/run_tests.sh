#!/bin/sh
# Run the whole suite: every test the sources define, tests/test_*.c (the binary
# BUILD/tests/test_X) and tests/test_*.sh (run as `sh tests/test_X.sh BUILD`). Each prints
# lines "ok ..." / "FAIL ..." and a last line "N passed, M failed". Sum them and end with
# the total line. A test whose binary is missing, that exits without its result line, or
# that reports no test at all is a failure, so an incomplete build cannot pass, except one
# that says "SKIP <why>" (e.g. test_cuda_build where no nvcc is): counted as skipped.
# usage: tools/run_tests.sh [BUILD]   (make test passes MAKE, CC and SAN in the environment)
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
pass=0; fail=0; ran=0; skip=0
expected=$(cd "$ROOT/tests" && ls test_*.c test_*.sh 2> /dev/null | sort)
if [ -z "$expected" ]; then
  echo "FAIL run_tests: no tests/test_*.c or tests/test_*.sh under $ROOT"
  echo "0 passed, 1 failed"
  exit 1
fi
for src in $expected; do
  case "$src" in
    *.c) name=${src%.c}; t="$BUILD/tests/$name"
         if [ ! -x "$t" ]; then
           echo "FAIL $name: $t is missing (not built?)"
           fail=$((fail + 1)); continue
         fi
         out=$("$t" 2>&1); rc=$? ;;
    *.sh) name=${src%.sh}
          out=$(sh "$ROOT/tests/$src" "$BUILD" 2>&1); rc=$? ;;
  esac
  ran=$((ran + 1))
  last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  f=$(echo "$last" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
  if [ -z "$last" ] || [ $rc -ne 0 -a "${f:-0}" -eq 0 ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "FAIL $name: exited $rc without a result line"
    f=$(( ${f:-0} + 1 )); p=${p:-0}
  elif [ $((p + f)) -eq 0 ] && [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q '^SKIP '; then
    echo "$name: $(printf '%s\n' "$out" | grep '^SKIP ' | head -n 1)"
    skip=$((skip + 1))
  elif [ $((p + f)) -eq 0 ]; then
    echo "FAIL $name: ran no test (0 passed, 0 failed)"
    f=1
  else
    printf '%s\n' "$out" | grep -E '^(FAIL|not ok)' || true
    echo "$name: $last"
  fi
  pass=$((pass + p)); fail=$((fail + f))
done
echo "$ran of $(echo "$expected" | wc -l) tests ran"
[ "$skip" -gt 0 ] && echo "$skip skipped (see SKIP above)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
