#!/bin/sh
# One round of GPU checks, on the GPU machine, in one call (docs: ../shared/GPU.md), from the
# repository root with gpu_carry/ made by tools/gpu_pack.sh on the build machine:
#   1. nvidia-smi (card, driver) into OUTDIR/nvidia-smi.txt;
#   2. the carried libraries unpacked into a private folder; cuDNN: the machine's own
#      (CUDNN_LIB, else PyTorch's wheel nvidia/cudnn/lib, else the CUDA toolkit's); cuBLAS
#      and cuFFT of CUDA 13 likewise (CUBLAS_LIB, CUFFT_LIB, PyTorch's wheels, the toolkit),
#      and NCCL (NCCL_LIB, PyTorch's wheel nvidia/nccl/lib, the toolkit);
#      `ldd` of the binaries into OUTDIR/ldd.txt;
#   3. every GPU test program (gpu_carry/bin/test_*), one after another into
#      OUTDIR/gpu_tests.txt (without mpirun: test_cuda_dist, which needs 2 ranks with a GPU
#      each, says so and passes nothing, "0 passed, 0 failed");
#   4. the CLI on CUDA (tfswa plan --device ...) into OUTDIR/cli.txt: the device memory plan
#      of cuda:0 with the workspace cuDNN chooses there (text and --json, exit 0); a device
#      out of range refused with one line, exit 2; then 50 training steps of the tiny preset
#      on synthetic data on cuda:0 and on the CPU from the same seed: the logged losses
#      within 2 % (fp32), 5 % (--activation_dtype bf16, --use_amp, and --use_amp --amp_dtype
#      fp16 on the card) (the cli.txt tail);
#   4b'. `tfswa bench separate --device cuda:0` (tiny, a 10 s and a 60 s song, each in its own
#      process): device memory in use after each, their ratio (constant memory on the card),
#      seconds per audio second, into OUTDIR/bench_separate_gpu.json;
#   4c. our side of the comparison: `tfswa bench step --device cuda:0` of the paper preset,
#      batch 8 x 3 s, n_fft 2048 hop 441, fp32, into OUTDIR/bench_gpu.json, and as --use_amp
#      (--variant bf16/off --compute_dtype bf16: bf16 storage and convolutions) into
#      OUTDIR/bench_gpu_bf16.json;
#   5. the PyTorch side of the comparison (tools/torch_gpu_bench.py, docs/gpu/README.md): the
#      paper preset, batch 8 x 3 s, n_fft 2048 hop 441, fp32 and AMP (bf16 autocast) step time
#      and peak memory, then the largest batch that fits, into OUTDIR/torch_gpu.json; it runs
#      whether or not our CUDA side works. Its budget: TORCH_BENCH_BUDGET_S (default 240 s),
#      cut to what is left of 7 min 20 s since the start; TORCH_BENCH=0 skips it;
#      TORCH_BENCH_PYTHON (default python3) and TORCH_BENCH_ARGS (appended: they override)
#      are for trying it elsewhere, e.g. TORCH_BENCH_PYTHON=/usr/bin/python3
#      TORCH_BENCH_ARGS="--device cpu --preset tiny --seconds 0.5 --batch 1 --fake-oom-above 2";
#   6. OUTDIR/summary.json: date, host, card, driver, each step's status and counts.
# Every step has a time limit; the whole stays under 8 minutes (about 1 when all goes well,
# plus the PyTorch bench's budget).
# OUTDIR holds: nvidia-smi.txt, ldd.txt, gpu_tests.txt, cli.txt, bench_separate_gpu.json,
# bench_gpu.json, bench_gpu_bf16.json, torch_gpu.json, summary.json (and unpack.err when
# unpacking failed).
# Exit status 0 when every step passed.
# usage: tools/gpu_check.sh OUTDIR
# With the session's device tool: run(command="tools/gpu_check.sh $OUT", carry=["gpu_carry"],
# timeout_s=480) after tools/gpu_pack.sh here; OUTDIR's files (at most 8) come back.
set -u
[ $# -eq 1 ] || { echo "usage: tools/gpu_check.sh OUTDIR" >&2; exit 2; }
OUT=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CARRY="$ROOT/gpu_carry"
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
T0=$(date +%s)
LD0=${LD_LIBRARY_PATH-}  # before step 2: PyTorch runs with the machine's own libraries
steps=""   # "name status detail" lines for the JSON
step() { steps="$steps$1	$2	$3
"; echo "[$(($(date +%s) - T0)) s] $1: $2 $3"; }

# 1. the card
if command -v nvidia-smi > /dev/null 2>&1; then
  { date -u +%Y-%m-%dT%H:%M:%SZ; timeout 60 nvidia-smi
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
  } > "$OUT/nvidia-smi.txt" 2>&1
  card=$(timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
           --format=csv,noheader 2> /dev/null | head -n 1)
  step nvidia-smi ok "$card"
else
  echo "nvidia-smi not found" > "$OUT/nvidia-smi.txt"
  card=""
  step nvidia-smi fail "nvidia-smi not found"
fi

# 2. libraries
LIB=$(mktemp -d "${TMPDIR:-/tmp}/tfswa_gpu_lib.XXXXXX") || exit 2
trap 'rm -rf "$LIB"' EXIT
if [ ! -s "$CARRY/lib.tar.xz" ] || [ ! -x "$CARRY/bin/tfswa" ]; then
  step unpack fail "gpu_carry/ is missing or incomplete: run tools/gpu_pack.sh on the build machine"
elif timeout 120 tar -C "$LIB" -xJf "$CARRY/lib.tar.xz" 2> "$OUT/unpack.err" ||
     timeout 120 python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
       "$CARRY/lib.tar.xz" "$LIB" 2>> "$OUT/unpack.err"; then
  step unpack ok "$(ls "$LIB" | wc -l) libraries"
  rm -f "$OUT/unpack.err"
else
  step unpack fail "$(tail -n 1 "$OUT/unpack.err")"
fi
# PyTorch's NVIDIA wheels: every site-packages/nvidia/*/lib (cuDNN, and NVRTC, which cuDNN
# may load for runtime-compiled engines)
nvlibs=$(timeout 60 python3 -c 'import glob, os, nvidia
print(":".join(sorted(d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "*", "lib")))))' 2> /dev/null)
cudnn=""
for d in ${CUDNN_LIB:-} $(echo "$nvlibs" | tr ':' ' ') /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
  if [ -e "$d/libcudnn.so.9" ]; then cudnn=$d; break; fi
done
if [ -n "$cudnn" ]; then step cudnn ok "$cudnn"; else step cudnn fail "libcudnn.so.9 not found (set CUDNN_LIB)"; fi
# cuBLAS(Lt) and cuFFT of CUDA 13 (not carried: too big), the same way: CUBLAS_LIB/CUFFT_LIB,
# else PyTorch's wheels (nvidia/cublas/lib, nvidia/cufft/lib, or nvidia/cu13/lib), else the
# toolkit's
cublas=""; cufft=""
for d in ${CUBLAS_LIB:-} $(echo "$nvlibs" | tr ':' ' ') /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
  if [ -z "$cublas" ] && [ -e "$d/libcublas.so.13" ] && [ -e "$d/libcublasLt.so.13" ]; then cublas=$d; fi
done
for d in ${CUFFT_LIB:-} $(echo "$nvlibs" | tr ':' ' ') /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
  if [ -z "$cufft" ] && [ -e "$d/libcufft.so.12" ]; then cufft=$d; fi
done
# NCCL (several GPUs: src/train/step_cuda.c; not carried, the machine's own): NCCL_LIB, else
# PyTorch's wheel (nvidia/nccl/lib), else the toolkit's
nccl=""
for d in ${NCCL_LIB:-} $(echo "$nvlibs" | tr ':' ' ') /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu; do
  if [ -z "$nccl" ] && [ -e "$d/libnccl.so.2" ]; then nccl=$d; fi
done
if [ -n "$cublas" ]; then step cublas ok "$cublas"; else step cublas fail "libcublas.so.13/libcublasLt.so.13 not found (set CUBLAS_LIB; a CUDA 12 PyTorch has only libcublas.so.12)"; fi
if [ -n "$cufft" ]; then step cufft ok "$cufft"; else step cufft fail "libcufft.so.12 not found (set CUFFT_LIB; a CUDA 12 PyTorch has only libcufft.so.11)"; fi
if [ -n "$nccl" ]; then step nccl ok "$nccl"; else step nccl fail "libnccl.so.2 not found (set NCCL_LIB; PyTorch's wheel has it in nvidia/nccl/lib)"; fi
export LD_LIBRARY_PATH="$LIB${cudnn:+:$cudnn}${cublas:+:$cublas}${cufft:+:$cufft}${nccl:+:$nccl}${nvlibs:+:$nvlibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" > "$OUT/ldd.txt"
for f in "$CARRY"/bin/*; do echo "== $f"; ldd "$f" 2>&1; done >> "$OUT/ldd.txt"
nf=$(grep -c 'not found' "$OUT/ldd.txt")
[ "$nf" -eq 0 ] && step ldd ok "every library found" ||
  step ldd fail "$(grep 'not found' "$OUT/ldd.txt" | awk '{ print $1 }' | sort -u | tr '\n' ' ')"

# 3. the GPU test programs
tests_pass=0; tests_fail=0
: > "$OUT/gpu_tests.txt"
for t in "$CARRY"/bin/test_*; do
  [ -x "$t" ] || continue
  n=$(basename "$t")
  timeout 300 "$t" > "$LIB/$n.out" 2>&1; rc=$?
  { echo "== $n (exit $rc)"; cat "$LIB/$n.out"; echo; } >> "$OUT/gpu_tests.txt"
  last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LIB/$n.out" | tail -n 1)
  p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$last" | sed -n 's/.* \([0-9]*\) failed$/\1/p')
  if [ -n "$last" ] && [ "$rc" -eq 0 ] && [ "${f:-1}" -eq 0 ]; then
    step "$n" ok "$last"
  else
    step "$n" fail "exit $rc, ${last:-no result line}: $(grep -E '^FAIL' "$LIB/$n.out" | head -n 3 | tr '\n' ' ')"
  fi
  tests_pass=$((tests_pass + ${p:-0})); tests_fail=$((tests_fail + ${f:-1}))
done

# 4. the CLI on CUDA: each case "args | expected exit | expected text"
: > "$OUT/cli.txt"
cli_case() {
  out=$(timeout 60 "$CARRY/bin/tfswa" $1 2>&1); rc=$?
  printf '$ tfswa %s\n%s\n(exit %d)\n\n' "$1" "$out" "$rc" >> "$OUT/cli.txt"
  if [ "$rc" -eq "$2" ] && printf '%s' "$out" | grep -q -- "$3"; then step "cli: $1" ok "exit $rc"
  else step "cli: $1" fail "exit $rc: $(printf '%s' "$out" | tail -n 1)"; fi
}
cli_case "plan --preset tiny --memory 1GiB --device cuda:0" 0 "cuDNN workspace: chosen on cuda:0"
cli_case "plan --preset tiny --memory 1GiB --device cuda:0 --json" 0 '"ws_source":"chosen"'
cli_case "plan --preset tiny --memory 1GiB --device cuda:99" 2 "device 99 out of range"
cli_case "plan --preset tiny --memory 1GiB --device cpu --json" 0 '"fits"'
# 4b. training on the device: the tiny preset on synthetic data, 50 steps on cuda:0 and
# on the CPU from the same seed (the same batches): the logged losses must track
TD="$LIB/train"; mkdir -p "$TD"
targs="--preset tiny --data_root $TD/data --max_steps 50 --log_every 5 --val_every 0 --batch_size 2 --segment_seconds 1.0 --num_threads 8 --seed 7"
# train_pair NAME SUFFIX TOL [ARGS...]: the 50 steps with ARGS on cuda:0 (into $TD/gpuSUFFIX;
# plus $gpu_extra there only) and on the CPU ($TD/cpuSUFFIX); step NAME ok when both ran and
# every logged loss agrees within TOL (relative); sets rg to the CUDA run's exit status
gpu_extra=""
train_pair() {
  name=$1 sfx=$2 tol=$3; shift 3
  t1=$(date +%s)
  # shellcheck disable=SC2086
  timeout 240 "$CARRY/bin/tfswa" train $targs "$@" $gpu_extra --device cuda --output_dir "$TD/gpu$sfx" > "$TD/gpu$sfx.log" 2>&1; rg=$?
  t2=$(date +%s)
  # shellcheck disable=SC2086
  timeout 240 "$CARRY/bin/tfswa" train $targs "$@" --device cpu --output_dir "$TD/cpu$sfx" > "$TD/cpu$sfx.log" 2>&1; rc=$?
  t3=$(date +%s)
  { printf '$ tfswa train %s %s %s --device cuda (exit %d, %d s)\n' "$targs" "$*" "$gpu_extra" "$rg" $((t2 - t1)); tail -n 5 "$TD/gpu$sfx.log"
    printf '$ tfswa train %s %s --device cpu (exit %d, %d s)\n' "$targs" "$*" "$rc" $((t3 - t2)); tail -n 5 "$TD/cpu$sfx.log"
  } >> "$OUT/cli.txt"
  cmp=$(python3 - "$TD/gpu$sfx/metrics.jsonl" "$TD/cpu$sfx/metrics.jsonl" "$tol" <<'PY' 2>&1
import json, sys
def losses(p):
    return {j["step"]: j["loss"] for j in map(json.loads, open(p)) if "loss" in j}
g, c = losses(sys.argv[1]), losses(sys.argv[2])
steps = sorted(set(g) & set(c))
worst = max(abs(g[s] - c[s]) / abs(c[s]) for s in steps)
print(f"{len(steps)} logged steps, max relative loss difference {worst:.2e}, "
      f"loss at {steps[-1]}: cuda {g[steps[-1]]:.6g} cpu {c[steps[-1]]:.6g}")
sys.exit(0 if len(steps) >= 10 and worst <= float(sys.argv[3]) else 1)
PY
)
  ok=$?
  echo "loss comparison ($name): $cmp" >> "$OUT/cli.txt"
  if [ "$rg" -eq 0 ] && [ "$rc" -eq 0 ] && [ "$ok" -eq 0 ]; then step "$name" ok "$cmp"
  else step "$name" fail "exit cuda $rg cpu $rc: $cmp $(tail -n 1 "$TD/gpu$sfx.log")"; fi
}
if timeout 120 "$CARRY/bin/tfswa" synth "$TD/data" --tracks 3 --test_tracks 1 --seconds 8 --seed 3 > "$TD/synth.log" 2>&1; then
  # 4b''. bf16 activation storage first (what --use_amp stores; the arithmetic fp32 on both
  # sides, so --activation_dtype bf16 rather than --use_amp, which on a CPU with native
  # bf16 would also compute in bf16). Roundings at the same points, but a value near a bf16
  # tie can round the other way (the CPU model differs from itself by that much with other
  # kernels: tests/gpu/test_cuda_model.c), so the losses must track within 5 %, not 2 %
  train_pair train-cuda-vs-cpu-bf16 _bf16 0.05 --activation_dtype bf16
  # --use_amp: bf16 storage and, on the card, bf16 convolutions (cuDNN, fp32 sums); the CPU
  # computes in bf16 only where it has native bf16, so the arithmetic may differ: 5 % too
  train_pair train-cuda-vs-cpu-amp _amp 0.05 --use_amp
  # --amp_dtype fp16 (the card only): fp16 convolutions and GEMMs with dynamic loss scaling
  # (metrics.jsonl's loss_scale), against the CPU's --use_amp
  gpu_extra="--amp_dtype fp16"
  train_pair train-cuda-vs-cpu-fp16 _fp16 0.05 --use_amp
  gpu_extra=""
  # fp32 (its rg and checkpoint are used below)
  train_pair train-cuda-vs-cpu "" 0.02
  # 4b'. separation and evaluation on the device: the CUDA run's checkpoint scored on the
  # test split with the model on cuda:0 and on the CPU: every number of summary.json agrees
  if [ "$rg" -eq 0 ]; then
    eargs="--checkpoint $TD/gpu --data_root $TD/data --split test --batch_size 2 --num_threads 8"
    # shellcheck disable=SC2086
    timeout 120 "$CARRY/bin/tfswa" evaluate $eargs --device cuda -o "$TD/eval_gpu" > "$TD/eval_gpu.log" 2>&1; eg=$?
    # shellcheck disable=SC2086
    timeout 120 "$CARRY/bin/tfswa" evaluate $eargs --device cpu -o "$TD/eval_cpu" > "$TD/eval_cpu.log" 2>&1; ec=$?
    trk=$(ls "$TD/data/test" | head -n 1)
    timeout 60 "$CARRY/bin/tfswa" separate --checkpoint "$TD/gpu" --device cuda -o "$TD/sep_gpu" \
      "$TD/data/test/$trk/mixture.wav" > "$TD/sep_gpu.log" 2>&1; sg=$?
    { printf '$ tfswa evaluate %s --device cuda (exit %d)\n' "$eargs" "$eg"; tail -n 8 "$TD/eval_gpu.log"
      printf '$ tfswa evaluate %s --device cpu (exit %d)\n' "$eargs" "$ec"; tail -n 8 "$TD/eval_cpu.log"
      printf '$ tfswa separate --device cuda (exit %d)\n' "$sg"; tail -n 4 "$TD/sep_gpu.log"
    } >> "$OUT/cli.txt"
    ecmp=$(python3 - "$TD/eval_gpu/summary.json" "$TD/eval_cpu/summary.json" <<'PY' 2>&1
import json, sys
def nums(x, path=""):
    if isinstance(x, bool): return
    if isinstance(x, (int, float)): yield path, float(x)
    elif isinstance(x, dict):
        for k, v in x.items(): yield from nums(v, path + "/" + k)
    elif isinstance(x, list):
        for i, v in enumerate(x): yield from nums(v, path + "/" + str(i))
g = dict(nums(json.load(open(sys.argv[1])))); c = dict(nums(json.load(open(sys.argv[2]))))
keys = [k for k in c if k in g and "sdr" in k.lower() and "time" not in k.lower()]
worst = max((abs(g[k] - c[k]), k) for k in keys)
print(f"{len(keys)} SDR numbers, max |cuda - cpu| {worst[0]:.2e} dB ({worst[1]})")
sys.exit(0 if len(keys) >= 4 and worst[0] <= 0.01 else 1)
PY
)
    eok=$?
    echo "evaluate comparison: $ecmp" >> "$OUT/cli.txt"
    if [ "$eg" -eq 0 ] && [ "$ec" -eq 0 ] && [ "$eok" -eq 0 ] && [ "$sg" -eq 0 ]; then
      step "evaluate-cuda-vs-cpu" ok "$ecmp"
    else
      step "evaluate-cuda-vs-cpu" fail "exit evaluate cuda $eg cpu $ec, separate cuda $sg: $ecmp $(tail -n 1 "$TD/eval_gpu.log")"
    fi
  fi
else
  step "train-cuda-vs-cpu" fail "synth: $(tail -n 1 "$TD/synth.log")"
fi

# 4b'. separation on the device in constant memory: tfswa bench separate --device cuda:0 (tiny
# preset, 10 s and 60 s songs, each in its own process) into OUTDIR/bench_separate_gpu.json
timeout 120 "$CARRY/bin/tfswa" bench separate --device cuda:0 --short_seconds 10 --long_seconds 60 \
  --num_threads 8 --json > "$OUT/bench_separate_gpu.json" 2> "$LIB/bench_sep_gpu.err"; rc=$?
if [ "$rc" -eq 0 ]; then
  step bench-separate-cuda ok "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; print("device_ratio_long_over_short %.4f, %.1f and %.1f MiB over the context, %.4f s per audio second" % (r["device_ratio_long_over_short"], r["short"]["device_bytes_over_context"]/2**20, r["long"]["device_bytes_over_context"]/2**20, r["seconds_per_audio_second"]))' "$OUT/bench_separate_gpu.json" 2>&1)"
else
  step bench-separate-cuda fail "exit $rc: $(tail -n 1 "$LIB/bench_sep_gpu.err")"
fi

# 4c. our side of the comparison: the paper preset, batch 8 x 3 s, n_fft 2048 hop 441, fp32,
# the device trainer's step (tfswa bench step --device cuda) into OUTDIR/bench_gpu.json
timeout 240 "$CARRY/bin/tfswa" bench step --device cuda:0 --presets paper --batch 8 --seconds 3 \
  --n_fft 2048 --hop_length 441 --variant fp32/off --rounds 1 --iters 5 --json \
  > "$OUT/bench_gpu.json" 2> "$LIB/bench_gpu.err"; rc=$?
if [ "$rc" -eq 0 ]; then
  step bench-step-cuda ok "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]["paper/fp32/off"]; print("%.1f ms/step, device peak %.0f MiB, allocated %.0f MiB" % (r["ms_per_step"], r["device_peak_bytes"]/2**20, r["device_plan_bytes"]/2**20))' "$OUT/bench_gpu.json" 2>&1)"
else
  step bench-step-cuda fail "exit $rc: $(tail -n 1 "$LIB/bench_gpu.err")"
fi
# the same with --use_amp (bf16 activation storage, bf16 convolutions on cuDNN), beside
# PyTorch's AMP into OUTDIR/bench_gpu_bf16.json
timeout 240 "$CARRY/bin/tfswa" bench step --device cuda:0 --presets paper --batch 8 --seconds 3 \
  --n_fft 2048 --hop_length 441 --variant bf16/off --compute_dtype bf16 --rounds 1 --iters 5 --json \
  > "$OUT/bench_gpu_bf16.json" 2> "$LIB/bench_gpu_bf16.err"; rc=$?
if [ "$rc" -eq 0 ]; then
  step bench-step-cuda-bf16 ok "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]["paper/bf16/off"]; print("%.1f ms/step, device peak %.0f MiB, allocated %.0f MiB" % (r["ms_per_step"], r["device_peak_bytes"]/2**20, r["device_plan_bytes"]/2**20))' "$OUT/bench_gpu_bf16.json" 2>&1)"
else
  step bench-step-cuda-bf16 fail "exit $rc: $(tail -n 1 "$LIB/bench_gpu_bf16.err")"
fi

# 5. the PyTorch side (python3: the machine's PyTorch, not /usr/bin/python3)
if [ "${TORCH_BENCH:-1}" = 0 ]; then
  step torch-bench skip "TORCH_BENCH=0"
else
  left=$((440 - ($(date +%s) - T0)))  # of the 8 minutes: 7 min 20 s, minus the summary
  budget=${TORCH_BENCH_BUDGET_S:-240}
  [ "$budget" -gt $((left - 40)) ] && budget=$((left - 40))
  if [ "$budget" -lt 30 ]; then
    step torch-bench fail "no time left ($left s of the 8 minutes)"
  else
    rm -f "$OUT/torch_gpu.json"
    # timeout: SIGTERM (the bench writes what it has, marked truncated) 20 s past its budget,
    # SIGKILL 10 s later; the JSON is rewritten after every phase, so even then it stays
    # TORCH_BENCH_ARGS is split into words on purpose
    # shellcheck disable=SC2086
    tlog=$(LD_LIBRARY_PATH="$LD0" timeout -k 10 $((budget + 20)) ${TORCH_BENCH_PYTHON:-python3} \
             "$ROOT/tools/torch_gpu_bench.py" --out "$OUT/torch_gpu.json" --preset paper --batch 8 \
             --seconds 3 --n-fft 2048 --hop 441 --device cuda --budget-s "$budget" \
             --max-batch-search ${TORCH_BENCH_ARGS:-} 2>&1); rc=$?
    rm -f "$OUT/torch_gpu.json.tmp"  # a write cut by SIGKILL: not one more file to bring back
    res=$(python3 "$ROOT/tools/torch_gpu_bench.py" --summary "$OUT/torch_gpu.json" 2>&1)
    st=$(printf '%s' "$res" | cut -f 1); det=$(printf '%s' "$res" | cut -f 2-)
    [ "$rc" -ne 0 ] && det="exit $rc: $(printf '%s' "$tlog" | tail -n 1); $det"
    step torch-bench "${st:-fail}" "${det:-no result}"
  fi
fi

# 6. summary
total=$(($(date +%s) - T0))
printf '%s' "$steps" | python3 -c '
import json, sys, datetime, socket
steps = [dict(zip(("step", "status", "detail"), l.split("\t", 2))) for l in sys.stdin.read().splitlines() if l]
card, tp, tf, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(json.dumps({
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "host": socket.gethostname(), "card": card, "command": "tools/gpu_check.sh",
    "seconds": secs, "tests_passed": tp, "tests_failed": tf,
    "ok": all(s["status"] in ("ok", "skip") for s in steps), "steps": steps}, indent=1))
' "$card" "$tests_pass" "$tests_fail" "$total" > "$OUT/summary.json"
echo "summary: $OUT/summary.json ($total s)"
! printf '%s' "$steps" | grep -q '	fail	'
