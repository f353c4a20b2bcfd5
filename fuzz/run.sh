#!/bin/sh
# Run each libFuzzer harness for FUZZ_SECONDS (default 30) seconds, one after the other.
# usage: fuzz/run.sh FUZZ_BUILD NAME...   (make fuzz passes build-fuzz and every harness)
# Each harness starts from its seeds (fuzz/seeds/NAME/), its regression inputs
# (tests/corpus/NAME/) and what earlier runs found (FUZZ_BUILD/corpus/NAME/, where new
# inputs go). A crash, sanitizer report, leak or timeout leaves the input in
# FUZZ_BUILD/crashes/NAME/; fix the reader, then copy the input to tests/corpus/NAME/ so
# `make test` replays it. Prints one line per harness (runs, runs/s, coverage) and fails
# if any harness found something.
# FUZZ_ARGS: extra libFuzzer flags (e.g. -jobs=2, -max_len=65536).
BUILD=${1:?usage: fuzz/run.sh FUZZ_BUILD NAME...}
shift
SECONDS_EACH=${FUZZ_SECONDS:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=""
summary=""
for name in "$@"; do
  bin="$BUILD/fuzz_$name"
  corpus="$BUILD/corpus/$name"
  crashes="$BUILD/crashes/$name"
  log="$BUILD/fuzz_$name.log"
  mkdir -p "$corpus" "$crashes"
  dirs="$corpus"
  for d in "$ROOT/fuzz/seeds/$name" "$ROOT/tests/corpus/$name"; do
    [ -d "$d" ] && dirs="$dirs $d"
  done
  dict=""
  [ -f "$ROOT/fuzz/$name.dict" ] && dict="-dict=$ROOT/fuzz/$name.dict"
  echo "fuzz $name: $SECONDS_EACH s ($log)"
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$crashes/" $dict $FUZZ_ARGS $dirs > "$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  line="$name: ${runs:-?} runs, ${secs:-?} runs/s, coverage ${cov:-?}"
  if [ $rc -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|runtime error|fuzz assertion|artifact_prefix|Test unit written' "$log" | head -n 8
    line="$line: FAILED (exit $rc, input in $crashes/)"
    failed="$failed $name"
  fi
  echo "$line"
  summary="$summary$line
"
done
printf '\n%s' "$summary"
if [ -n "$failed" ]; then
  echo "fuzz: found problems in:$failed (logs: $BUILD/fuzz_*.log)"
  exit 1
fi
echo "fuzz: no problem found"
