#!/bin/sh
# tools/torch_gpu_bench.py (the PyTorch side of tools/gpu_check.sh) on the CPU, with the
# machine's PyTorch (1.13 here), tiny preset, batch 1 x 0.5 s: the JSON has both modes with
# positive step times and memory, the settings and the machine recorded; the max-batch search
# (doubling then bisection) finds the limit of the test hook --fake-oom-above; a tiny
# --budget-s gives "truncated": true with a reason; SIGTERM leaves a JSON marked truncated;
# tools/gpu_check.sh runs it (on the CPU here, through its TORCH_BENCH_* variables).
# usage: tests/test_torch_gpu_bench.sh [BUILD]   (BUILD is ignored)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
pass=0; fail=0
ok() { echo "ok $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
if ! $PY -c 'import torch' > /dev/null 2>&1; then
  echo "SKIP $PY has no torch: tools/torch_gpu_bench.py not checked"
  echo "0 passed, 0 failed"
  exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
B="$PY $ROOT/tools/torch_gpu_bench.py"
SMALL="--device cpu --preset tiny --seconds 0.5 --batch 1 --threads 1 --warmup 1 --iters 2"

# check NAME JSON PYTHON-EXPRESSION: ok when the expression (over r, the parsed JSON) is true
check() {
  if out=$($PY - "$2" "$3" 2>&1 << 'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
pos = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0
ok = eval(sys.argv[2])
if not ok:
    print("false:", sys.argv[2])
sys.exit(0 if ok else 1)
EOF
  ); then ok "$1"; else bad "$1: $out"; fi
}

# 1. both modes measured
J=$tmp/a.json
start=$(date +%s)
if $B --out "$J" $SMALL --budget-s 60 > "$tmp/a.log" 2>&1; then
  ok "fp32 + amp run ($(($(date +%s) - start)) s)"
else
  tail -n 20 "$tmp/a.log"; bad "torch_gpu_bench.py failed"
fi
check "both modes ok, positive step times and peak RSS" "$J" \
  'all(r["modes"][m]["status"] == "ok" and r["modes"][m]["iters"] == 2 and pos(r["modes"][m]["step_ms_median"]) and pos(r["modes"][m]["step_ms_min"]) and pos(r["modes"][m]["wall_ms_per_step"]) and pos(r["modes"][m]["peak_rss_bytes"]) and len(r["modes"][m]["step_ms"]) == 2 and all(pos(x) for x in r["modes"][m]["step_ms"]) and r["modes"][m]["loss_finite"] and pos(r["modes"][m]["loss_last"]) for m in ("fp32", "amp")) and sorted(r["modes"]) == ["amp", "fp32"]'
check "settings recorded (TF32, cudnn.benchmark, optimizer, autocast bf16, attention)" "$J" \
  'all(k in r["settings"] for k in ("matmul_allow_tf32", "cudnn_allow_tf32", "float32_matmul_precision")) and r["settings"]["cudnn_benchmark"] is True and r["settings"]["optimizer"].startswith("Adam(lr=0.001") and "bfloat16" in r["settings"]["amp"] and r["settings"]["attention"]'
check "config, machine, date and command recorded" "$J" \
  'r["config"]["preset"] == "tiny" and r["config"]["batch"] == 1 and r["config"]["samples"] == 22050 and r["config"]["n_fft"] == 2048 and r["config"]["hop"] == 441 and pos(r["config"]["params"]) and r["device"]["type"] == "cpu" and r["device"]["name"] and r["torch"] and r["date"].endswith("Z") and "--preset tiny" in r["command"] and r["truncated"] is False and r["truncated_reason"] is None and r["max_batch"] is None and pos(r["elapsed_s"])'

# 2. the max-batch search: measured batch 1 fits; doubling: 2, 4 fit, 8 "runs out of memory";
# bisection: 6 does not fit, 5 does
J=$tmp/b.json
if $B --out "$J" $SMALL --seconds 0.1 --modes fp32 --budget-s 60 --max-batch-search --fake-oom-above 5 \
     > "$tmp/b.log" 2>&1; then
  ok "max-batch search runs"
else
  tail -n 20 "$tmp/b.log"; bad "torch_gpu_bench.py --max-batch-search failed"
fi
check "max batch 5, first fail 6, trials 2 4 8 6 5, complete" "$J" \
  'r["max_batch"]["fp32"]["max_fits"] == 5 and r["max_batch"]["fp32"]["first_fail"] == 6 and [t["batch"] for t in r["max_batch"]["fp32"]["trials"]] == [2, 4, 8, 6, 5] and [t["fits"] for t in r["max_batch"]["fp32"]["trials"]] == [True, True, False, False, True] and all(t.get("oom") for t in r["max_batch"]["fp32"]["trials"][2:4]) and r["max_batch"]["fp32"]["complete"] and not r["truncated"]'

# 3. a budget too short for the asked steps: what was measured, marked truncated (the budget
# counts from the start, torch's import included: 12 s leave time for some steps even on a
# loaded machine, where 3 s left none)
J=$tmp/c.json
if $B --out "$J" $SMALL --iters 100000 --budget-s 12 > "$tmp/c.log" 2>&1; then
  ok "short budget: exits 0"
else
  tail -n 20 "$tmp/c.log"; bad "torch_gpu_bench.py --budget-s 12 failed"
fi
check "short budget: truncated, with the reason, fewer steps than asked" "$J" \
  'r["truncated"] is True and "budget" in r["truncated_reason"] and 0 < r["modes"]["fp32"]["iters"] < 100000'

# 4. SIGTERM (a timeout from outside) once the first JSON is written: it stays, truncated
J=$tmp/d.json
$B --out "$J" $SMALL --iters 100000 --budget-s 600 > "$tmp/d.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$J" ] && [ $i -lt 600 ] && kill -0 $pid 2> /dev/null; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid 2> /dev/null
wait $pid
rc=$?
[ $rc -eq 0 ] && ok "SIGTERM: exits 0 with its JSON" || { tail -n 20 "$tmp/d.log"; bad "SIGTERM: exit $rc"; }
check "SIGTERM: truncated, reason says so" "$J" \
  'r["truncated"] is True and "SIGTERM" in r["truncated_reason"]'

# 5. user errors: one line, no traceback
for a in "--preset nosuch" "--modes fp32,fp16" "--batch 0"; do
  out=$($B --out "$tmp/e.json" --device cpu $a 2>&1); rc=$?
  if [ $rc -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] &&
     printf '%s' "$out" | grep -q '^torch_gpu_bench: '; then
    ok "refused: $a"
  else
    bad "$a: exit $rc: $out"
  fi
done
# 6. tools/gpu_check.sh's step 5 runs it and puts its one-line summary into summary.json (the
# other steps fail here: no GPU, maybe no gpu_carry/; only the PyTorch step is checked)
G=$tmp/gc
TORCH_BENCH_PYTHON=$PY TORCH_BENCH_BUDGET_S=60 \
  TORCH_BENCH_ARGS="$SMALL --warmup 0 --iters 1 --search-modes fp32 --fake-oom-above 2" \
  sh "$ROOT/tools/gpu_check.sh" "$G" > "$tmp/g.log" 2>&1
check "gpu_check.sh: torch_gpu.json written with its command" "$G/torch_gpu.json" \
  '"--device cuda --budget-s 60 --max-batch-search" in r["command"] and r["modes"]["amp"]["status"] == "ok" and r["max_batch"]["fp32"]["max_fits"] == 2'
check "gpu_check.sh: summary.json has the torch-bench step, ok" "$G/summary.json" \
  '[s for s in r["steps"] if s["step"] == "torch-bench"][0]["status"] == "ok" and "amp" in [s for s in r["steps"] if s["step"] == "torch-bench"][0]["detail"]'
out=$($PY "$ROOT/tools/torch_gpu_bench.py" --summary "$tmp/none.json")
case "$out" in "fail	no JSON"*) ok "--summary of a missing JSON: fail" ;; *) bad "--summary of a missing JSON: $out" ;; esac
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
