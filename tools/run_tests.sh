#!/bin/sh
# Run every test binary in BUILD/tests; each prints lines "ok ..." / "FAIL ..." and a last
# line "N passed, M failed". Sum them and end with the total line.
BUILD=${1:-build}
pass=0; fail=0
for t in "$BUILD"/tests/test_*; do
  case "$t" in *.d) continue ;; esac
  [ -x "$t" ] || continue
  name=$(basename "$t")
  out=$("$t" 2>&1); rc=$?
  last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
  p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
  f=$(echo "$last" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
  if [ -z "$last" ] || [ $rc -ne 0 -a "${f:-0}" -eq 0 ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "FAIL $name: exited $rc without a result line"
    f=$(( ${f:-0} + 1 )); p=${p:-0}
  else
    printf '%s\n' "$out" | grep -E '^(FAIL|not ok)' || true
    echo "$name: $last"
  fi
  pass=$((pass + p)); fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
