#!/bin/sh
# Replay the fuzz corpora with the normal build (also under SAN=1): for each harness
# fuzz/fuzz_NAME.c, BUILD/fuzz/replay_NAME (the harness + fuzz/driver.c, no libFuzzer) runs
# every seed (fuzz/seeds/NAME/) and every regression input (tests/corpus/NAME/: inputs
# `make fuzz` once found crashing). Each harness is one test: it passes when no input
# crashes, trips a sanitizer, leaks or breaks a harness assertion.
# usage: sh tests/test_corpus.sh [BUILD]
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
pass=0; fail=0
for src in "$ROOT"/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c); name=${name#fuzz_}
  bin="$BUILD/fuzz/replay_$name"
  if [ ! -x "$bin" ]; then
    echo "FAIL corpus_$name: $bin is missing (not built?)"
    fail=$((fail + 1)); continue
  fi
  dirs=""
  for d in "$ROOT/fuzz/seeds/$name" "$ROOT/tests/corpus/$name"; do
    [ -d "$d" ] && dirs="$dirs $d"
  done
  if [ -z "$dirs" ]; then
    echo "FAIL corpus_$name: no fuzz/seeds/$name or tests/corpus/$name"
    fail=$((fail + 1)); continue
  fi
  # shellcheck disable=SC2086
  out=$("$bin" $dirs 2>&1); rc=$?
  if [ $rc -eq 0 ]; then
    echo "ok corpus_$name ($(printf '%s\n' "$out" | tail -n 1))"
    pass=$((pass + 1))
  else
    printf '%s\n' "$out" | tail -n 20
    echo "FAIL corpus_$name: exit $rc"
    fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
