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

    /usr/bin/python3 tools/vs_pytorch.py separate [--preset tiny] [--song-seconds 60]
        [--segment 6] [--overlap 0.25] [--threads 2] [--rounds 2] [--tfswa build/tfswa]

separate: separating one synthetic stereo song (`tfswa synth`, one test track of
--song-seconds, 16-bit PCM) into 4 stems with a random-weight checkpoint of the preset
(made by `tfswa train --max_steps 1` on a tiny synth set; all of it in a temp dir).
Ours: `tfswa separate --segment S --overlap O --batch_size 1 --num_threads T --subtype
FLOAT` as a child process, wall time around it, peak RSS from os.wait4. PyTorch: a worker
process builds tests/reference/tfswa_ref.py's model from the checkpoint's model.json,
loads model.safetensors, eval() + no_grad(), reads the WAV with `wave` + numpy and runs
the same chunking (chunk = round(S*rate), hop = round(chunk*(1-O)), trapezoid weights,
weighted overlap-add divided by the summed weights, zero padding past the end, batch 1);
it writes the 4 stems as raw float32 .npy files (the `wave` module cannot write float
WAV), so both sides pay for output. Its wall time covers the whole process (interpreter
and torch import included, as ours includes process start) and is also reported without
start-up. Rounds alternate ours, torch, ... Same JSON shape as `model`; results also has
max_abs_diff: our vocals.wav (float WAV parsed with numpy) against torch's vocals, and
agree = max_abs_diff <= 1e-3.
"""
import argparse
import json
import os
import platform
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
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


# ------------------------------------------------------------------------------ separate
def read_wav(path):
    """(2, n) float32 and the rate, from a 16-bit PCM (wave module) or 32-bit float WAV."""
    import numpy as np

    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            tag, ch, rate = (int.from_bytes(body[0:2], "little"), int.from_bytes(body[2:4], "little"),
                             int.from_bytes(body[4:8], "little"))
            bits = int.from_bytes(body[14:16], "little")
            if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: the subformat GUID starts with the tag
                tag = int.from_bytes(body[24:26], "little")
            fmt = (tag, ch, rate, bits)
        elif cid == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    tag, ch, rate, bits = fmt
    if tag == 3 and bits == 32:
        x = np.frombuffer(pcm, dtype="<f4")
    elif tag == 1 and bits == 16:
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    else:
        raise ValueError(f"{path}: format tag {tag} with {bits} bits is not handled")
    x = x[: len(x) // ch * ch].reshape(-1, ch).T
    if ch == 1:
        x = np.concatenate([x, x])
    return np.ascontiguousarray(x[:2], dtype=np.float32), rate


def torch_sep_worker(args):
    """One process: separate the song with the reference, chunked like ours; print JSON."""
    t_start = time.perf_counter()
    import numpy as np
    import torch

    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    import tfswa_ref

    torch.set_num_threads(args.threads)
    with open(os.path.join(args.checkpoint, "model.json")) as f:
        meta = json.load(f)
    m, stft = meta["model"], meta["stft"]
    stems = meta["targets"]
    model = tfswa_ref.TFSWAResUNet(m["channels"], m["rcms_per_block"], m["tfswa_blocks"], m["heads"],
                                   tuple(m["window"]), float(m["mlp_ratio"]), m["subbands"],
                                   len(stems), stft["window_size"], stft["hop_length"],
                                   m.get("output", "magnitude"))
    tfswa_ref.load_into(model, os.path.join(args.checkpoint, "model.safetensors"))
    model.eval()
    t0 = time.perf_counter()
    x, rate = read_wav(args.song)
    n = x.shape[1]
    L = int(round(args.segment * rate))
    hop = min(L, max(1, int(round(L * (1.0 - args.overlap)))))
    R = L - hop
    i = np.arange(L, dtype=np.float64)
    w = np.minimum(1.0, np.minimum((i + 1) / (R + 1), (L - i) / (R + 1))).astype(np.float32)
    chunks = 1 if n <= 0 else (n - 1) // hop + 1
    span = (chunks - 1) * hop + L
    xp = np.zeros((2, span), np.float32)
    xp[:, :n] = x
    acc = np.zeros((len(stems), 2, span), np.float32)
    wsum = np.zeros(span, np.float32)
    with torch.no_grad():
        for k in range(chunks):
            a = k * hop
            y = model(torch.from_numpy(xp[None, :, a:a + L].copy()))[0].numpy()  # (S, 2, L)
            acc[:, :, a:a + L] += y * w
            wsum[a:a + L] += w
    out = acc[:, :, :n] / wsum[:n]
    os.makedirs(args.out, exist_ok=True)
    for s, name in enumerate(stems):
        np.save(os.path.join(args.out, name + ".npy"), np.ascontiguousarray(out[s]))
    t1 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"separate_s": t1 - t0, "startup_s": t0 - t_start, "peak_rss_bytes": rss,
                      "chunks": chunks, "chunk": L, "hop": hop, "torch": torch.__version__}))


def make_inputs(args, work, env):
    """A random-weight checkpoint of the preset and one synthetic song, under `work`."""
    def run(cmd):
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            sys.exit(f"vs_pytorch: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr.strip()}")

    data, run_dir, song_dir = (os.path.join(work, d) for d in ("data", "run", "song"))
    run([args.tfswa, "synth", data, "--tracks", "2", "--seconds", "4", "--seed", "1"])
    run([args.tfswa, "train", "--data_root", data, "--preset", args.preset, "--max_steps", "1",
         "--segment_seconds", "1", "--batch_size", "1", "--num_workers", "0", "--val_every", "0",
         "--output_dir", run_dir])
    run([args.tfswa, "synth", song_dir, "--tracks", "1", "--test_tracks", "1", "--seconds",
         str(args.song_seconds), "--seed", "2"])
    test = os.path.join(song_dir, "test")
    song = os.path.join(test, sorted(os.listdir(test))[0], "mixture.wav")
    return os.path.join(run_dir, "checkpoints", "last"), song


def timed_child(cmd, env):
    """Wall seconds and peak RSS (bytes) of one child process, via os.wait4."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env)
        _, status, ru = os.wait4(p.pid, 0)  # reap it here (Popen.wait would lose the rusage)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    if p.returncode != 0:
        sys.exit(f"vs_pytorch: {' '.join(cmd)} failed ({p.returncode}):\n{err.decode().strip()}")
    return wall, ru.ru_maxrss * 1024, out.decode()


def separate_cmd(args):
    import numpy as np

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    work = tempfile.mkdtemp(prefix="vs_pytorch_sep_")
    try:
        ckpt, song = make_inputs(args, work, env)
        ours_out, torch_out = os.path.join(work, "ours"), os.path.join(work, "torch")
        ours_cmd = [args.tfswa, "separate", song, "-o", ours_out, "--checkpoint", ckpt,
                    "--segment", str(args.segment), "--overlap", str(args.overlap), "--batch_size",
                    "1", "--num_threads", str(args.threads), "--overwrite", "--subtype", "FLOAT"]
        torch_cmd = [sys.executable, os.path.abspath(__file__), "_torch_sep", "--checkpoint", ckpt,
                     "--song", song, "--out", torch_out, "--segment", str(args.segment),
                     "--overlap", str(args.overlap), "--threads", str(args.threads)]
        ot, orss, tt, tsep, trss = [], [], [], [], []
        t = {}
        for _ in range(args.rounds):
            wall, rss, _ = timed_child(ours_cmd, env)
            ot.append(wall)
            orss.append(rss)
            wall, rss, out = timed_child(torch_cmd, env)
            t = json.loads(out.strip().splitlines()[-1])
            tt.append(wall)
            tsep.append(t["separate_s"])
            trss.append(t["peak_rss_bytes"])  # the worker's own RUSAGE_SELF
        # agreement: our float WAV vocals against torch's
        ov = None
        for root, _, files in os.walk(ours_out):
            if "vocals.wav" in files:
                ov = os.path.join(root, "vocals.wav")
        diff = None
        if ov is not None:
            a, _ = read_wav(ov)
            b = np.load(os.path.join(torch_out, "vocals.npy"))
            if a.shape == b.shape:
                diff = float(np.max(np.abs(a - b)))
        rate = 44100
        song_s = args.song_seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = statistics.median
    out = {
        "bench": "vs_pytorch",
        "machine": machine(args.threads),
        "config": {"what": "separate", "preset": args.preset, "song_seconds": song_s,
                   "sample_rate": rate, "segment": args.segment, "overlap": args.overlap,
                   "chunk": t.get("chunk"), "hop": t.get("hop"), "chunks": t.get("chunks"),
                   "batch": 1, "threads": args.threads, "rounds": args.rounds, "stems": 4,
                   "weights": "random (tfswa train --max_steps 1)",
                   "ours_output": "4 float32 WAV (--subtype FLOAT)",
                   "torch_output": "4 float32 .npy (wave cannot write float WAV)",
                   "timing": "wall time of each whole process, start-up included",
                   "torch": t.get("torch")},
        "results": {
            "time_ratio": med(tt) / med(ot),
            "time_ratio_best": min(tt) / min(ot),
            "time_ratio_no_startup": med(tsep) / med(ot),
            "rss_ratio": med(trss) / med(orss),
            "torch_wall_s": med(tt),
            "torch_separate_s": med(tsep),
            "ours_wall_s": med(ot),
            "torch_realtime_factor": song_s / med(tt),
            "ours_realtime_factor": song_s / med(ot),
            "torch_peak_rss_bytes": med(trss),
            "ours_peak_rss_bytes": med(orss),
            "torch_wall_s_rounds": tt,
            "ours_wall_s_rounds": ot,
            "max_abs_diff": diff,
            "agree": diff is not None and diff <= 1e-3,
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
    p = sub.add_parser("separate")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--song-seconds", type=float, default=60.0)
    p.add_argument("--segment", type=float, default=6.0)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--tfswa", default=os.path.join(ROOT, "build", "tfswa"))
    p = sub.add_parser("_torch_sep")
    for a in ("--checkpoint", "--song", "--out"):
        p.add_argument(a, required=True)
    p.add_argument("--segment", type=float, default=6.0)
    p.add_argument("--overlap", type=float, default=0.25)
    p.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    {"_torch": torch_worker, "model": model_cmd, "_torch_step": torch_step_worker,
     "step": step_cmd, "separate": separate_cmd, "_torch_sep": torch_sep_worker}[args.what](args)


if __name__ == "__main__":
    main()
