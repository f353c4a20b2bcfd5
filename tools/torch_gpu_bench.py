#!/usr/bin/python3
"""The PyTorch side of the GPU comparison (issue 10): full training steps of the TFSWA-ResUNet
in PyTorch eager on one device, fp32 and AMP, step time and peak memory, and optionally the
largest batch that fits; one JSON file.

    python3 tools/torch_gpu_bench.py --out OUTDIR/torch_gpu.json [--preset paper] [--batch 8]
        [--seconds 3] [--n-fft 2048] [--hop 441] [--device cuda|cpu] [--budget-s 240]
        [--warmup 3] [--iters 10] [--modes fp32,amp] [--tf32] [--max-batch-search]
        [--max-batch-cap 1024]
    python3 tools/torch_gpu_bench.py --summary OUTDIR/torch_gpu.json
        (one line "ok|fail<TAB>what was measured", for tools/gpu_check.sh)

The model is tools/tfswa_torch_fast.py (the model of tests/reference/tfswa_ref.py written the
way a PyTorch user would for speed: SDPA, cached masks and STFT window; tools/vs_pytorch.py
checks it against the reference on CPU). One step is what tools/vs_pytorch.py's `step` times:
zero_grad(set_to_none=True), train-mode forward, L1 waveform loss against a fixed random target,
backward, clip_grad_norm_(5.0), Adam(lr=1e-3) with fused=True where this torch has it on CUDA
(foreach=True otherwise). One target (vocals), stereo, 44.1 kHz.

Modes: fp32 (PyTorch's defaults for TF32, recorded in "settings": matmul TF32 off, cuDNN conv
TF32 on); amp = torch.autocast(device, dtype=torch.bfloat16) around forward and loss (bf16: no
GradScaler); fp32_tf32 only with --tf32 (torch.set_float32_matmul_precision("high"): matmuls in
TF32; the default is restored for the other modes).
torch.backends.cudnn.benchmark = True, as a PyTorch user would set it.

Each mode builds a fresh model and optimizer on an emptied cache, runs --warmup untimed steps,
then --iters timed steps: CUDA events around each step (torch.cuda.synchronize at the end), and
the wall time of the timed loop. Memory: torch.cuda.max_memory_allocated and
max_memory_reserved since reset_peak_memory_stats (before the model is built: parameters,
gradients, Adam state and activations all count; reserved = allocated + the caching
allocator's slack, including the cuBLAS/cuDNN workspaces it hands out), and the card's used
memory from torch.cuda.mem_get_info (cudaMemGetInfo: total - free, which also counts the CUDA
context) at the end of the timed steps, with the same reading taken right after CUDA start-up.
On --device cpu (a test of this script; PyTorch 1.13 is enough): wall time per step, and the
process's peak RSS (ru_maxrss, monotonic over the whole run).

--max-batch-search (CUDA; on CPU only with --fake-oom-above, a test hook): per mode, doubling
from --batch, then bisection between the largest batch that fit and the smallest that did not;
each mode gets an equal share of the time left. Each trial builds a fresh model and runs 2 full
steps (the second has the Adam state); an OOM (torch.cuda.OutOfMemoryError, or a cuDNN/cuBLAS
allocation failure) is caught, everything freed and torch.cuda.empty_cache() called. Every
trial is recorded (batch, fits, seconds, peaks, the error).

Budget: --budget-s bounds the whole run (measurements first, then the search with what is
left). A step is not started when the time measured so far says it would not end in time;
what was measured is written with "truncated": true and the reason. The JSON is rewritten after
every phase (atomically), so a run killed from outside (timeout) leaves what it had, marked
truncated ("in progress"); SIGTERM is caught and written as the reason.
"""
import time

T_START = time.monotonic()

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_RATE = 44100
SEARCH_STEPS = 2  # steps per max-batch trial: the second runs with the Adam state allocated


class Stop(Exception):
    """SIGTERM (e.g. from timeout): write what was measured and exit."""


def on_term(signum, frame):
    raise Stop("SIGTERM")


def load_preset(name):
    """configs/model/NAME.yaml: flat `key: value` lines (numbers, [lists], words); yaml is not
    needed (the GPU machine may not have it)."""
    path = os.path.join(ROOT, "configs", "model", name + ".yaml")
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        sys.exit(f"torch_gpu_bench: --preset {name}: cannot read {path}: {e.strerror}")

    def value(v):
        v = v.strip()
        if v.startswith("[") and v.endswith("]"):
            return [value(x) for x in v[1:-1].split(",") if x.strip()]
        for conv in (int, float):
            try:
                return conv(v)
            except ValueError:
                pass
        return v.strip("\"'")

    p = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip()
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.+)$", line)
        if m:
            p[m.group(1)] = value(m.group(2))
    need = ("channels", "rcms_per_block", "tfswa_blocks", "heads", "window", "mlp_ratio", "subbands")
    miss = [k for k in need if k not in p]
    if miss:
        sys.exit(f"torch_gpu_bench: {path}: missing keys {', '.join(miss)}")
    return p


def import_model():
    """torch and tools/tfswa_torch_fast.py. numpy is only needed there to read/write
    safetensors, which this script does not: where it is absent, a stub stands in while the
    model's modules are imported (and is taken away again, so torch never sees it)."""
    import torch

    numpy_version, stub = None, False
    try:
        import numpy

        numpy_version = numpy.__version__
    except ImportError:
        sys.modules["numpy"] = types.ModuleType("numpy")
        stub = True
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        import tfswa_torch_fast
    finally:
        if stub:
            del sys.modules["numpy"]
    return torch, tfswa_torch_fast, numpy_version


def nvidia_smi():
    """(name, driver, memory.total) of GPU 0 from nvidia-smi, or Nones."""
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader", "-i", "0"], capture_output=True, text=True,
                           timeout=30)
        parts = [x.strip() for x in r.stdout.strip().splitlines()[0].split(",")]
        return {"name": parts[0], "driver": parts[1], "memory_total": parts[2]}
    except (OSError, subprocess.SubprocessError, IndexError):
        return {"name": None, "driver": None, "memory_total": None}


def tf32_settings(torch):
    """The TF32 switches as this torch has them (2.9+ also has the fp32_precision ones and warns
    that the allow_tf32 ones will be deprecated: read quietly; None where absent)."""
    import warnings

    s = {"cudnn_benchmark": torch.backends.cudnn.benchmark}
    for key, get in (("matmul_allow_tf32", lambda: torch.backends.cuda.matmul.allow_tf32),
                     ("cudnn_allow_tf32", lambda: torch.backends.cudnn.allow_tf32),
                     ("float32_matmul_precision", torch.get_float32_matmul_precision),
                     ("matmul_fp32_precision", lambda: torch.backends.cuda.matmul.fp32_precision),
                     ("cudnn_conv_fp32_precision", lambda: torch.backends.cudnn.conv.fp32_precision)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s[key] = get()
        except Exception:  # an attribute this torch does not have
            s[key] = None
    return s


def is_oom(torch, e):
    """An allocation failure on the device (what the max-batch search expects to hit)."""
    oom_t = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    if oom_t is not None and isinstance(e, oom_t):
        return True
    msg = str(e)
    return isinstance(e, RuntimeError) and any(
        k in msg for k in ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED",
                           "FAKE_OOM"))


class Bench:
    def __init__(self, args):
        self.args = args
        self.torch, self.fast, self.numpy_version = import_model()
        torch = self.torch
        self.dev = torch.device(args.device)
        self.cuda = self.dev.type == "cuda"
        if self.cuda and not torch.cuda.is_available():
            sys.exit("torch_gpu_bench: --device cuda: torch.cuda.is_available() is False "
                     f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
        if self.cuda and self.dev.index is None:  # set_device and the memory calls want an index
            self.dev = torch.device("cuda", torch.cuda.current_device())
        if self.cuda and self.dev.index >= torch.cuda.device_count():
            sys.exit(f"torch_gpu_bench: --device {args.device}: out of range ({torch.cuda.device_count()} devices)")
        self.arch = load_preset(args.preset)
        self.n = int(round(args.seconds * SAMPLE_RATE))
        if self.n < args.n_fft:
            sys.exit(f"torch_gpu_bench: --seconds {args.seconds}: {self.n} samples, fewer than "
                     f"--n-fft {args.n_fft}")
        self.deadline = T_START + args.budget_s
        self.truncated = []  # reasons
        torch.backends.cudnn.benchmark = True
        self.default_tf32 = tf32_settings(torch)
        self.ctx_used = None
        if self.cuda:
            torch.cuda.init()
            torch.cuda.set_device(self.dev)
            torch.empty(1, device=self.dev)  # the context
            free, total = torch.cuda.mem_get_info(self.dev)
            self.ctx_used = total - free
        adam = inspect.signature(torch.optim.Adam).parameters
        self.opt_kw = {"lr": 1e-3}
        if self.cuda and "fused" in adam:
            self.opt_kw["fused"] = True
        elif "foreach" in adam:
            self.opt_kw["foreach"] = True
        clip = inspect.signature(torch.nn.utils.clip_grad_norm_).parameters
        self.clip_kw = {"foreach": True} if "foreach" in clip else {}
        self.result = self.header()

    # ------------------------------------------------------------------ bookkeeping
    def left(self):
        return self.deadline - time.monotonic()

    def header(self):
        torch, a = self.torch, self.args
        dev = {"type": self.dev.type}
        if self.cuda:
            p = torch.cuda.get_device_properties(self.dev)
            smi = nvidia_smi()
            dev.update({"name": p.name, "index": self.dev.index,
                        "capability": f"{p.major}.{p.minor}", "total_memory_bytes": p.total_memory,
                        "multiprocessors": p.multi_processor_count, "driver": smi["driver"],
                        "nvidia_smi": smi, "cuda_runtime": torch.version.cuda,
                        "cudnn": torch.backends.cudnn.version(),
                        "context_used_bytes": self.ctx_used,
                        "context_used_note": "mem_get_info total - free right after CUDA start-up "
                                             "(context + whatever else runs on the card)"})
        else:
            name = platform.machine()
            try:
                with open("/proc/cpuinfo") as f:
                    name = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), name)
            except OSError:
                pass
            dev.update({"name": name, "threads": torch.get_num_threads()})
        n_params = sum(p.numel() for p in self.fast.from_arch(self.arch, 1, a.n_fft, a.hop).parameters())
        return {
            "bench": "torch_gpu_bench",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": " ".join(["python3", os.path.relpath(os.path.abspath(__file__), ROOT)] + sys.argv[1:]),
            "host": socket.gethostname(),
            "python": platform.python_version(),
            "python_executable": sys.executable,
            "torch": torch.__version__,
            "numpy": self.numpy_version,
            "device": dev,
            "config": {"preset": a.preset, "params": n_params, "targets": 1, "channels_in": 2,
                       "batch": a.batch, "seconds": a.seconds, "samples": self.n,
                       "sample_rate": SAMPLE_RATE, "n_fft": a.n_fft, "hop": a.hop,
                       "warmup": a.warmup, "iters": a.iters, "budget_s": a.budget_s,
                       "modes": self.modes()},
            "settings": dict(self.default_tf32, **{
                "tf32_note": "PyTorch's defaults, not changed for fp32 and amp (fp32_tf32: matmul TF32 on)",
                "optimizer": "Adam(" + ", ".join(f"{k}={v}" for k, v in self.opt_kw.items()) + ")",
                "clip_grad_norm": "5.0" + (", foreach=True" if self.clip_kw else ""),
                "zero_grad": "set_to_none=True",
                "loss": "L1 (mean |y - target|), fixed random target",
                "amp": f"torch.autocast({self.dev.type!r}, dtype=torch.bfloat16) around forward and "
                       "loss, no GradScaler",
                "attention": self.fast.ATTENTION_PATH,
                "timer": "CUDA events per step" if self.cuda else "time.perf_counter per step",
                "model": "tools/tfswa_torch_fast.py (eager, no torch.compile)"}),
            "modes": {},
            "max_batch": None,
            "truncated": True,
            "truncated_reason": "in progress (the run was stopped before it finished)",
        }

    def modes(self, which=None):
        m = [x.strip() for x in (which or self.args.modes).split(",") if x.strip()]
        if which is None and self.args.tf32 and "fp32_tf32" not in m:
            m.append("fp32_tf32")
        return m

    def write(self, final=False):
        r = self.result
        r["elapsed_s"] = round(time.monotonic() - T_START, 3)
        if final:
            r["truncated"] = bool(self.truncated)
            r["truncated_reason"] = "; ".join(self.truncated) or None
        tmp = self.args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(r, f, indent=1)
            f.write("\n")
        os.replace(tmp, self.args.out)

    # ---------------------------------------------------------------- the training step
    def build(self):
        m = self.fast.from_arch(self.arch, 1, self.args.n_fft, self.args.hop)
        return m.to(self.dev).train()

    def data(self, batch):
        g = self.torch.Generator().manual_seed(0)
        mix = (self.torch.rand(batch, 2, self.n, generator=g) - 0.5) * 0.5
        target = (self.torch.rand(batch, 1, 2, self.n, generator=g) - 0.5) * 0.2
        return mix.to(self.dev), target.to(self.dev)

    def autocast(self, mode):
        import contextlib

        if mode == "amp":
            return self.torch.autocast(self.dev.type, dtype=self.torch.bfloat16)
        return contextlib.nullcontext()

    def set_precision(self, mode):
        """fp32 and amp: PyTorch's defaults, untouched; fp32_tf32: matmuls in TF32
        (set_float32_matmul_precision("high"), the API every torch since 1.12 has)."""
        torch = self.torch
        if mode == "fp32_tf32":
            torch.set_float32_matmul_precision("high")
        elif torch.get_float32_matmul_precision() != self.default_tf32["float32_matmul_precision"]:
            torch.set_float32_matmul_precision(self.default_tf32["float32_matmul_precision"])

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize(self.dev)

    def fresh(self):
        gc.collect()
        if self.cuda:
            self.torch.cuda.synchronize(self.dev)
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats(self.dev)

    def runner(self, mode, batch):
        """(model, optimizer, step function) for one mode and batch."""
        torch = self.torch
        if self.args.fake_oom_above and batch > self.args.fake_oom_above:
            raise RuntimeError(f"FAKE_OOM: batch {batch} > --fake-oom-above {self.args.fake_oom_above}")
        model = self.build()
        params = list(model.parameters())
        opt = torch.optim.Adam(params, **self.opt_kw)
        mix, target = self.data(batch)

        def step():
            opt.zero_grad(set_to_none=True)
            with self.autocast(mode):
                loss = (model(mix).float() - target).abs().mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0, **self.clip_kw)
            opt.step()
            return loss.detach()

        return model, opt, step

    # ---------------------------------------------------------------------- timing
    def measure(self, mode, share_s):
        """Warm-up + timed steps of one mode at --batch; stops early at its share of the budget."""
        torch, a = self.torch, self.args
        soft = time.monotonic() + share_s
        self.set_precision(mode)
        self.fresh()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        r = {"status": "ok", "batch": a.batch, "float32_matmul_precision": torch.get_float32_matmul_precision()}
        model = opt = step = None
        try:
            t0 = time.monotonic()
            model, opt, step = self.runner(mode, a.batch)
            self.sync()
            r["build_s"] = round(time.monotonic() - t0, 3)
            if self.cuda:
                r["after_build_allocated_bytes"] = torch.cuda.memory_allocated(self.dev)
            warm, loss = [], None
            for i in range(a.warmup):
                if i > 0 and time.monotonic() + warm[-1] > min(soft, self.deadline):
                    self.truncated.append(f"{mode}: warm-up cut to {i} of {a.warmup} steps by the budget")
                    break
                t = time.monotonic()
                loss = step()
                self.sync()
                warm.append(time.monotonic() - t)
            r["warmup_s"] = [round(x, 4) for x in warm]
            r["loss_after_warmup"] = None if loss is None else float(loss)
            est = warm[-1] if warm else 0.0
            times, losses = [], []
            t_loop = time.perf_counter()
            for i in range(a.iters):
                if time.monotonic() + est > min(soft, self.deadline) and (i > 0 or warm):
                    self.truncated.append(f"{mode}: {i} of {a.iters} timed steps (budget)")
                    break
                if self.cuda:
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    loss = step()
                    e1.record()
                    times.append((e0, e1))
                    e1.synchronize()
                    est = e0.elapsed_time(e1) / 1e3
                else:
                    t = time.perf_counter()
                    loss = step()
                    times.append(time.perf_counter() - t)
                    est = times[-1]
                losses.append(loss)
            self.sync()
            wall = time.perf_counter() - t_loop
            ms = [e0.elapsed_time(e1) for e0, e1 in times] if self.cuda else [1e3 * t for t in times]
            r["iters"] = len(ms)
            if ms:
                r.update({"step_ms_median": statistics.median(ms), "step_ms_min": min(ms),
                          "step_ms_mean": statistics.mean(ms), "step_ms": [round(x, 3) for x in ms],
                          "wall_ms_per_step": 1e3 * wall / len(ms),
                          "loss_last": float(losses[-1])})
                r["loss_finite"] = all(bool(torch.isfinite(x)) for x in losses)
            if self.cuda:
                free, total = torch.cuda.mem_get_info(self.dev)
                r.update({"peak_allocated_bytes": torch.cuda.max_memory_allocated(self.dev),
                          "peak_reserved_bytes": torch.cuda.max_memory_reserved(self.dev),
                          "end_allocated_bytes": torch.cuda.memory_allocated(self.dev),
                          "device_used_bytes": total - free,
                          "device_used_minus_context_bytes": total - free - self.ctx_used})
            r["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            r["peak_rss_before_bytes"] = rss0
        except Exception as e:  # an OOM at the asked batch is a result too
            if isinstance(e, Stop):
                raise
            r["status"] = "oom" if is_oom(torch, e) else "error"
            r["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:500]
            if self.cuda:
                r["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(self.dev)
                r["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(self.dev)
        finally:
            del model, opt, step
            self.fresh()
        return r

    # ------------------------------------------------------------------ max batch
    def trial(self, mode, batch):
        """One max-batch trial: (fits, record)."""
        torch = self.torch
        self.fresh()
        rec = {"batch": batch}
        t0 = time.monotonic()
        model = opt = step = None
        try:
            model, opt, step = self.runner(mode, batch)
            for _ in range(SEARCH_STEPS):
                step()
            self.sync()
            fits = True
        except Exception as e:
            if isinstance(e, Stop):
                raise
            fits = False
            rec["oom"] = is_oom(torch, e)
            rec["error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
        finally:
            del model, opt, step
        if self.cuda:
            rec["peak_allocated_bytes"] = torch.cuda.max_memory_allocated(self.dev)
            rec["peak_reserved_bytes"] = torch.cuda.max_memory_reserved(self.dev)
        self.fresh()
        rec["fits"] = fits
        rec["s"] = round(time.monotonic() - t0, 3)
        return fits, rec

    def search(self, mode, out, deadline):
        """Doubling from --batch, then bisection, until `deadline`; fills out (written as it
        goes)."""
        a = self.args
        self.set_precision(mode)
        out.update({"max_fits": None, "first_fail": None, "trials": [], "complete": False})
        lo, hi = 0, None  # lo: largest that fit (0: none); hi: smallest that did not
        b = a.batch
        m = self.result["modes"].get(mode, {})
        if m.get("status") == "ok" and m.get("batch") == a.batch:
            lo = out["max_fits"] = a.batch  # the measurement ran it: start above
            out["from_measurement"] = a.batch
            b = 2 * a.batch
        while True:
            if hi is None and b > a.max_batch_cap:
                out["stopped"] = f"reached --max-batch-cap {a.max_batch_cap}"
                out["complete"] = True
                break
            if hi is not None and hi - lo <= 1:
                out["complete"] = True
                break
            # a trial costs about the slowest one so far per batch item, times the batch
            t = out["trials"]
            need = max((x["s"] / x["batch"] for x in t), default=0.0) * b
            if time.monotonic() + need > deadline:
                self.truncated.append(f"max batch {mode}: stopped by the budget before batch {b} "
                                      f"(fits {lo or None}, fails {hi})")
                out["stopped"] = "budget"
                break
            fits, rec = self.trial(mode, b)
            t.append(rec)
            if fits:
                lo = out["max_fits"] = b
            else:
                hi = out["first_fail"] = b
                if not rec.get("oom"):
                    out["stopped"] = "an error that is not out-of-memory: " + rec["error"]
                    break
            self.write()
            b = 2 * b if hi is None else (lo + hi) // 2
        out["max_fits"] = lo or None
        return out

    # ---------------------------------------------------------------------------- run
    def run(self):
        a = self.args
        modes = self.modes()
        self.write()
        # the measurements first; the search gets what is left (at least half of the budget
        # is kept for it when asked)
        for i, mode in enumerate(modes):
            left = self.left()
            keep = 0.5 * a.budget_s * (1 - i / len(modes)) if a.max_batch_search else 0.0
            share = max(0.0, (left - keep) / (len(modes) - i))
            if left <= 0:
                self.truncated.append(f"{mode}: not measured (budget spent)")
                continue
            self.result["modes"][mode] = self.measure(mode, share)
            self.write()
        if a.max_batch_search:
            self.result["max_batch"] = {}
            sm = self.modes(a.search_modes)
            for i, mode in enumerate(sm):  # each mode gets an equal share of what is left
                out = self.result["max_batch"][mode] = {}
                self.search(mode, out, time.monotonic() + self.left() / (len(sm) - i))
                self.write()


def summary(path):
    """One line "ok|fail<TAB>what" of a written JSON, for tools/gpu_check.sh's summary.json:
    ok when fp32 and amp were both measured (a truncated max-batch search is still ok)."""
    try:
        with open(path) as f:
            r = json.load(f)
    except (OSError, ValueError) as e:
        print(f"fail\tno JSON ({e})")
        return
    ms, d = r.get("modes", {}), []
    for m in ("fp32", "amp"):
        x = ms.get(m, {})
        if x.get("status") == "ok" and x.get("iters"):
            mem = (f"peak allocated {x['peak_allocated_bytes'] / 2**30:.2f} GiB, reserved "
                   f"{x['peak_reserved_bytes'] / 2**30:.2f} GiB" if "peak_reserved_bytes" in x
                   else f"peak RSS {x.get('peak_rss_bytes', 0) / 2**20:.0f} MiB")
            d.append(f"{m} {x['step_ms_median']:.1f} ms/step, {mem}")
        else:
            d.append(f"{m} {x.get('status', 'missing')}" + (f": {x['error']}" if "error" in x else ""))
    for m, x in (r.get("max_batch") or {}).items():
        d.append(f"max batch {m} {x.get('max_fits')} (first fail {x.get('first_fail')})")
    if r.get("truncated"):
        d.append(f"truncated: {r.get('truncated_reason')}")
    good = all(ms.get(m, {}).get("status") == "ok" and ms.get(m, {}).get("iters") for m in ("fp32", "amp"))
    print(("ok" if good else "fail") + "\t" + "; ".join(d).replace("\t", " ").replace("\n", " "))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        return summary(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="the JSON file to write")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--n-fft", type=int, default=2048)
    ap.add_argument("--hop", type=int, default=441)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget-s", type=float, default=240.0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--modes", default="fp32,amp", help="comma list of fp32, amp, fp32_tf32")
    ap.add_argument("--tf32", action="store_true", help="also the fp32_tf32 mode (matmul TF32 on)")
    ap.add_argument("--max-batch-search", action="store_true")
    ap.add_argument("--max-batch-cap", type=int, default=1024)
    ap.add_argument("--search-modes", default=None, help="modes of the max-batch search (default: --modes)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--fake-oom-above", type=int, default=0,
                    help=argparse.SUPPRESS)  # test hook: batches above this 'run out of memory'
    a = ap.parse_args()
    for name, v, lo in (("--batch", a.batch, 1), ("--warmup", a.warmup, 0), ("--iters", a.iters, 1),
                        ("--n-fft", a.n_fft, 16), ("--hop", a.hop, 1), ("--max-batch-cap", a.max_batch_cap, 1)):
        if v < lo:
            sys.exit(f"torch_gpu_bench: {name} {v}: must be >= {lo}")
    if not a.seconds > 0 or not a.budget_s > 0:
        sys.exit("torch_gpu_bench: --seconds and --budget-s must be > 0")
    for opt, val in (("--modes", a.modes), ("--search-modes", a.search_modes or "")):
        bad = [m for m in val.split(",") if m.strip() and m.strip() not in ("fp32", "amp", "fp32_tf32")]
        if bad:
            sys.exit(f"torch_gpu_bench: {opt} {val}: unknown mode {bad[0]} (fp32, amp, fp32_tf32)")
    if not a.device.startswith(("cuda", "cpu")):
        sys.exit(f"torch_gpu_bench: --device {a.device}: cuda, cuda:N or cpu")
    if a.max_batch_search and a.device == "cpu" and not a.fake_oom_above:
        sys.exit("torch_gpu_bench: --max-batch-search needs --device cuda (a CPU does not run out of memory "
                 "the way a card does)")
    d = os.path.dirname(os.path.abspath(a.out))
    if not os.path.isdir(d):
        sys.exit(f"torch_gpu_bench: --out {a.out}: no directory {d}")
    signal.signal(signal.SIGTERM, on_term)
    b = None
    try:
        b = Bench(a)
        if a.threads > 0:
            b.torch.set_num_threads(a.threads)
        b.run()
    except Stop as e:
        if b is None:
            sys.exit("torch_gpu_bench: stopped (SIGTERM) before the first measurement")
        b.truncated.append(f"stopped: {e}")
    b.write(final=True)
    r = b.result
    for m, x in r["modes"].items():
        mem = (f", peak allocated {x['peak_allocated_bytes'] / 2**30:.2f} GiB, reserved "
               f"{x['peak_reserved_bytes'] / 2**30:.2f} GiB" if "peak_reserved_bytes" in x else
               f", peak RSS {x.get('peak_rss_bytes', 0) / 2**20:.0f} MiB")
        print(f"torch_gpu_bench: {m}: {x['status']}, {x.get('iters', 0)} steps, median "
              f"{x.get('step_ms_median', float('nan')):.1f} ms{mem}")
    for m, x in (r["max_batch"] or {}).items():
        print(f"torch_gpu_bench: max batch {m}: {x.get('max_fits')} (first fail {x.get('first_fail')}, "
              f"{len(x.get('trials', []))} trials)")
    print(f"torch_gpu_bench: {a.out} ({r['elapsed_s']:.1f} s{', truncated: ' + r['truncated_reason'] if r['truncated'] else ''})")


if __name__ == "__main__":
    main()
