#!/usr/bin/python3
"""tfswa against PyTorch on the same work, same input size, same thread count.

    /usr/bin/python3 tools/vs_pytorch.py model --preset tiny [--seconds 2] [--batch 1]
        [--threads 2] [--rounds 3] [--iters 3] [--tfswa build/tfswa]

model: one training step (train-mode forward + backward) of TFSWA-ResUNet: the PyTorch
reference (tests/reference/tfswa_ref.py, float32) against `tfswa bench model`. Each
round runs both, alternating, each in its own process (so each peak RSS is its own);
each process times `iters` steps after one warm-up step. Prints one JSON object:
results.time_ratio = PyTorch forward+backward time / ours (> 1: we are faster) and
results.rss_ratio = PyTorch peak RSS / ours (> 1: we use less), medians over rounds;
results.time_ratio_best compares the fastest round of each (robust on a busy machine).

    /usr/bin/python3 tools/vs_pytorch.py step --preset tiny [--seconds 2] [--batch 2]
        [--threads 2] [--rounds 3] [--iters 2] [--tfswa build/tfswa]

step: one full optimizer step (zero_grad, train-mode forward, L1 waveform loss against a
fixed random target, backward, clip_grad_norm_(5.0), torch.optim.Adam(lr=1e-3)) of the
PyTorch reference against `tfswa bench step --variant fp32/off` (fp32 activations, no
checkpointing: what the reference does), same batch, segment and threads. Each round
starts one process of each, alternating; each builds a fresh model and times `iters`
steps after one warm-up step. Same JSON shape as `model`, with ms per optimizer step.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_preset(name):
    import yaml

    path = os.path.join(ROOT, "configs", "model", name + ".yaml")
    with open(path) as f:
        return yaml.safe_load(f)


def torch_worker(args):
    """One process: build the reference, time `iters` training steps, print JSON."""
    import torch

    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    import tfswa_ref

    torch.set_num_threads(args.threads)
    p = load_preset(args.preset)
    model = tfswa_ref.TFSWAResUNet(p["channels"], p["rcms_per_block"], p["tfswa_blocks"], p["heads"],
                                   tuple(p["window"]), float(p["mlp_ratio"]), p["subbands"], 1,
                                   args.n_fft, args.hop, p.get("output", "magnitude"))
    model.train()
    n = int(round(args.seconds * 44100))
    g = torch.Generator().manual_seed(0)
    mix = (torch.rand(args.batch, 2, n, generator=g) - 0.5) * 0.5
    w = torch.where(torch.arange(args.batch * 2 * n) % 3 == 0, 1.0, -1.0).reshape(args.batch, 1, 2, n)
    w = w / w.numel()

    def step():
        model.zero_grad(set_to_none=False)
        t0 = time.perf_counter()
        y = model(mix)
        (y * w).sum().backward()
        return 1e3 * (time.perf_counter() - t0)

    step()
    times = [step() for _ in range(args.iters)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"forward_backward_ms": statistics.median(times), "peak_rss_bytes": rss,
                      "torch": torch.__version__}))


def torch_step_worker(args):
    """One process: build the reference, time `iters` optimizer steps, print JSON."""
    import torch

    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    import tfswa_ref

    torch.set_num_threads(args.threads)
    p = load_preset(args.preset)
    model = tfswa_ref.TFSWAResUNet(p["channels"], p["rcms_per_block"], p["tfswa_blocks"], p["heads"],
                                   tuple(p["window"]), float(p["mlp_ratio"]), p["subbands"], 1,
                                   args.n_fft, args.hop, p.get("output", "magnitude"))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = int(round(args.seconds * 44100))
    g = torch.Generator().manual_seed(0)
    mix = (torch.rand(args.batch, 2, n, generator=g) - 0.5) * 0.5
    target = (torch.rand(args.batch, 1, 2, n, generator=g) - 0.5) * 0.2

    def step():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss = (model(mix) - target).abs().mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return 1e3 * (time.perf_counter() - t0)

    step()
    times = [step() for _ in range(args.iters)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"ms_per_step": statistics.median(times), "ms_per_step_min": min(times),
                      "peak_rss_bytes": rss, "torch": torch.__version__}))


def run_json(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"vs_pytorch: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def machine(threads):
    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {threads} threads"


def model_cmd(args):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    torch_cmd = [sys.executable, os.path.abspath(__file__), "_torch", "--preset", args.preset,
                 "--seconds", str(args.seconds), "--batch", str(args.batch), "--threads",
                 str(args.threads), "--iters", str(args.iters), "--n-fft", str(args.n_fft), "--hop",
                 str(args.hop)]
    ours_cmd = [args.tfswa, "bench", "model", "--json", "--preset", args.preset, "--seconds",
                str(args.seconds), "--batch", str(args.batch), "--threads", str(args.threads),
                "--iters", str(args.iters), "--targets", "vocals", "--stft.window_size",
                str(args.n_fft), "--stft.hop_length", str(args.hop), "--checkpointing", "off",
                "--activation_dtype", "fp32"]
    tt, tr, ot, orss = [], [], [], []
    version = ""
    for _ in range(args.rounds):
        t = run_json(torch_cmd, env)
        o = run_json(ours_cmd, env)
        tt.append(t["forward_backward_ms"])
        tr.append(t["peak_rss_bytes"])
        version = t["torch"]
        ot.append(o["results"]["forward_backward_ms"])
        orss.append(o["results"]["peak_rss_bytes"])
    med = statistics.median
    out = {
        "bench": "vs_pytorch",
        "machine": machine(args.threads),
        "config": {"what": "model", "preset": args.preset, "seconds": args.seconds,
                   "batch": args.batch, "threads": args.threads, "rounds": args.rounds,
                   "iters": args.iters, "n_fft": args.n_fft, "hop_length": args.hop, "targets": 1,
                   "checkpointing": "off", "activation_dtype": "fp32", "torch": version},
        "results": {
            "time_ratio": med(tt) / med(ot),
            "time_ratio_best": min(tt) / min(ot),
            "rss_ratio": med(tr) / med(orss),
            "torch_forward_backward_ms": med(tt),
            "ours_forward_backward_ms": med(ot),
            "torch_peak_rss_bytes": med(tr),
            "ours_peak_rss_bytes": med(orss),
            "torch_forward_backward_ms_rounds": tt,
            "ours_forward_backward_ms_rounds": ot,
        },
    }
    print(json.dumps(out))


def step_cmd(args):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    torch_cmd = [sys.executable, os.path.abspath(__file__), "_torch_step", "--preset", args.preset,
                 "--seconds", str(args.seconds), "--batch", str(args.batch), "--threads",
                 str(args.threads), "--iters", str(args.iters), "--n-fft", str(args.n_fft), "--hop",
                 str(args.hop)]
    ours_cmd = [args.tfswa, "bench", "step", "--json", "--presets", args.preset, "--variant",
                "fp32/off", "--seconds", str(args.seconds), "--batch", str(args.batch), "--threads",
                str(args.threads), "--rounds", "1", "--iters", str(args.iters), "--targets", "vocals",
                "--stft.window_size", str(args.n_fft), "--stft.hop_length", str(args.hop),
                "--optimizer", "adam", "--learning_rate", "1e-3", "--weight_decay", "0",
                "--grad_clip", "5"]
    name = args.preset + "/fp32/off"
    tt, tmin, tr, ot, omin, orss = [], [], [], [], [], []
    version = ""
    for _ in range(args.rounds):
        t = run_json(torch_cmd, env)
        o = run_json(ours_cmd, env)
        tt.append(t["ms_per_step"])
        tmin.append(t["ms_per_step_min"])
        tr.append(t["peak_rss_bytes"])
        version = t["torch"]
        ot.append(o["results"][name]["ms_per_step"])
        omin.append(o["results"][name]["ms_per_step_min"])
        orss.append(o["results"]["peak_rss_bytes"])
    med = statistics.median
    out = {
        "bench": "vs_pytorch",
        "machine": machine(args.threads),
        "config": {"what": "step", "preset": args.preset, "seconds": args.seconds,
                   "batch": args.batch, "threads": args.threads, "rounds": args.rounds,
                   "iters": args.iters, "n_fft": args.n_fft, "hop_length": args.hop, "targets": 1,
                   "checkpointing": "off", "activation_dtype": "fp32", "optimizer": "adam",
                   "learning_rate": 1e-3, "grad_clip": 5.0, "loss": "l1", "torch": version,
                   "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OMP_WAIT_POLICY")
                           if os.environ.get(k)}},
        "results": {
            "time_ratio": med(tt) / med(ot),
            "time_ratio_best": min(tmin) / min(omin),
            "rss_ratio": med(tr) / med(orss),
            "torch_ms_per_step": med(tt),
            "ours_ms_per_step": med(ot),
            "torch_ms_per_sample": med(tt) / args.batch,
            "ours_ms_per_sample": med(ot) / args.batch,
            "torch_ms_per_step_min": min(tmin),
            "ours_ms_per_step_min": min(omin),
            "torch_peak_rss_bytes": med(tr),
            "ours_peak_rss_bytes": med(orss),
            "torch_ms_per_step_rounds": tt,
            "ours_ms_per_step_rounds": ot,
        },
    }
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    for name in ("model", "_torch", "step", "_torch_step"):
        step = name.endswith("step")
        p = sub.add_parser(name)
        p.add_argument("--preset", default="tiny")
        p.add_argument("--seconds", type=float, default=2.0)
        p.add_argument("--batch", type=int, default=2 if step else 1)
        p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
        p.add_argument("--iters", type=int, default=2 if step else 3)
        p.add_argument("--n-fft", type=int, default=2048)
        p.add_argument("--hop", type=int, default=512)
        if not name.startswith("_"):
            p.add_argument("--rounds", type=int, default=3)
            p.add_argument("--tfswa", default=os.path.join(ROOT, "build", "tfswa"))
    args = ap.parse_args()
    {"_torch": torch_worker, "model": model_cmd, "_torch_step": torch_step_worker,
     "step": step_cmd}[args.what](args)


if __name__ == "__main__":
    main()
