#!/usr/bin/python3
"""PyTorch reference of tfswa's TFSWA-ResUNet, used ONLY by tests and tools/vs_pytorch.py.

It mirrors src/model/model.c choice for choice (see the comment at the top of
src/model/model.h for the list of decisions the paper leaves open) and uses the same
PyTorch-style parameter names, so weights move both ways through safetensors.

    /usr/bin/python3 tests/reference/tfswa_ref.py gen --out ref.safetensors \
        --channels 8,16,24,32 --rcms 2 --tfswa 2 --heads 2 --window 5,4 --mlp-ratio 2 \
        --subbands 4 --targets 1 --n-fft 512 --hop 128 --batch 2 --samples 8000 \
        --output magnitude --seed 1234

`gen` builds the model with random (seeded) weights rounded to float32, runs one
train-mode forward (batch-statistics BatchNorm) and backward in float64, and writes a
safetensors file (F32) with: every parameter and BatchNorm buffer under its own name
(running stats BEFORE the forward), `after.<bn>.running_mean/var` (AFTER the forward),
`act.*` block outputs, `loss`, and `grad.<param>` for every trainable parameter; then
an eval-mode forward of the same input (running statistics as updated by the train-mode
forward) as `eval.wave` (both left out with --forward-only). --fp32-too adds `f32.act.*`
and `f32.grad.*`: the same train-mode step run in float32 (PyTorch's own float32 error).

    /usr/bin/python3 tests/reference/tfswa_ref.py count --channels ... --targets 1,4

prints the trainable parameter count of the model, one line per --targets value.
"""
import argparse
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

BN_MOMENTUM = 0.1
BN_EPS = 1e-5
LN_EPS = 1e-5
MASK_NEG = -100.0  # shifted-window mask value (Swin's, as tf_swin_attn_mask in C)


# ----------------------------------------------------------------------------- conv part
class RCM(nn.Module):
    """BN -> GELU -> conv3x3 -> BN -> GELU -> conv3x3, plus a 1x1 conv shortcut."""

    def __init__(self, ci, co):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(ci, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv1 = nn.Conv2d(ci, co, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(co, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(co, co, 3, padding=1)
        self.short = nn.Conv2d(ci, co, 1)

    def forward(self, x):
        h = self.conv1(F.gelu(self.bn1(x)))
        h = self.conv2(F.gelu(self.bn2(h)))
        return h + self.short(x)


class ConvBlock(nn.Module):
    def __init__(self, ci, co, n):
        super().__init__()
        self.rcm = nn.ModuleList([RCM(ci if i == 0 else co, co) for i in range(n)])

    def forward(self, x):
        for m in self.rcm:
            x = m(x)
        return x


# ----------------------------------------------------------------------- attention part
class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm that also runs under torch.autocast("cpu", dtype=torch.bfloat16): torch
    1.13's CPU autocast leaves layer_norm alone and its kernel rejects bf16 input with
    float32 weights, so such input is normalized in the weights' dtype (float32). Without
    autocast the dtypes match and this is exactly nn.LayerNorm. Same state_dict."""

    def forward(self, x):
        if x.dtype != self.weight.dtype:
            x = x.to(self.weight.dtype)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class Attention(nn.Module):
    """Multi-head self-attention over (N, L, C). qkv output channels are [q | k | v], head h
    uses channels [h*hd, (h+1)*hd) of each. Optional relative-position bias for a (wt, wf)
    window: table ((2wt-1)*(2wf-1), heads), index (ti-tj+wt-1)*(2wf-1) + (fi-fj+wf-1) with
    tokens numbered t-major (n = ti*wf + fi)."""

    def __init__(self, c, heads, window=None):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.window = window
        if window is not None:
            wt, wf = window
            self.rel_bias = nn.Parameter(torch.zeros((2 * wt - 1) * (2 * wf - 1), heads))
            ti = torch.arange(wt).repeat_interleave(wf)
            fi = torch.arange(wf).repeat(wt)
            idx = (ti[:, None] - ti[None, :] + wt - 1) * (2 * wf - 1) + (fi[:, None] - fi[None, :] + wf - 1)
            self.register_buffer("rel_index", idx, persistent=False)

    def forward(self, x, mask=None):
        # x (N, L, C); mask (nW, L, L) additive, windows ordered so that window n uses mask[n % nW]
        n, l, c = x.shape
        h = self.heads
        hd = c // h
        qkv = self.qkv(x).reshape(n, l, 3, h, hd).permute(2, 0, 3, 1, 4)  # (3, N, h, L, hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)  # (N, h, L, L)
        if self.window is not None:
            bias = self.rel_bias[self.rel_index.reshape(-1)].reshape(l, l, h).permute(2, 0, 1)
            att = att + bias[None].to(att.dtype)  # under autocast: bf16 like the scores
        if mask is not None:
            nw = mask.shape[0]
            att = att.reshape(n // nw, nw, h, l, l) + mask[None, :, None].to(att.dtype)
            att = att.reshape(n, h, l, l)
        att = att.softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(n, l, c)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, c, hidden):
        super().__init__()
        self.fc1 = nn.Linear(c, hidden)
        self.fc2 = nn.Linear(hidden, c)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class TBlock(nn.Module):
    """Pre-LN transformer block: x + MSA(LN(x)), then + MLP(LN(.))."""

    def __init__(self, c, heads, mlp_hidden, window=None):
        super().__init__()
        self.ln1 = LayerNorm(c, eps=LN_EPS)
        self.attn = Attention(c, heads, window)
        self.ln2 = LayerNorm(c, eps=LN_EPS)
        self.mlp = MLP(c, mlp_hidden)

    def forward(self, x, mask=None):
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))


def window_partition(x, wt, wf):
    # (B, T, F, C) -> (B*nT*nF, wt*wf, C), windows ordered (b, it, if), tokens t-major
    b, t, f, c = x.shape
    x = x.reshape(b, t // wt, wt, f // wf, wf, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wt * wf, c)


def window_reverse(w, b, t, f, wt, wf):
    c = w.shape[-1]
    x = w.reshape(b, t // wt, f // wf, wt, wf, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, t, f, c)


def shift_mask(t, f, wt, wf, st, sf, dtype):
    """Swin's attention mask for the rolled map: (nW, L, L), 0 or MASK_NEG."""
    img = torch.zeros(1, t, f, 1)
    cnt = 0
    for ts in (slice(0, -wt), slice(-wt, -st), slice(-st, None)):
        for fs in (slice(0, -wf), slice(-wf, -sf), slice(-sf, None)):
            img[:, ts, fs, :] = cnt
            cnt += 1
    w = window_partition(img, wt, wf).squeeze(-1)  # (nW, L)
    m = w[:, None, :] - w[:, :, None]
    return torch.where(m != 0, torch.tensor(MASK_NEG), torch.tensor(0.0)).to(dtype)


class SwinBlock(nn.Module):
    def __init__(self, c, heads, mlp_hidden, window, shifted):
        super().__init__()
        self.window = window
        self.shifted = shifted
        self.ln1 = LayerNorm(c, eps=LN_EPS)
        self.attn = Attention(c, heads, window)
        self.ln2 = LayerNorm(c, eps=LN_EPS)
        self.mlp = MLP(c, mlp_hidden)

    def forward(self, x):
        # x (B, T, F, C)
        b, t, f, c = x.shape
        wt, wf = self.window
        st, sf = (wt // 2, wf // 2) if self.shifted else (0, 0)
        h = self.ln1(x)
        mask = None
        if self.shifted:
            h = torch.roll(h, shifts=(-st, -sf), dims=(1, 2))
            mask = shift_mask(t, f, wt, wf, st, sf, x.dtype)
        w = self.attn(window_partition(h, wt, wf), mask)
        h = window_reverse(w, b, t, f, wt, wf)
        if self.shifted:
            h = torch.roll(h, shifts=(st, sf), dims=(1, 2))
        x = x + h
        return x + self.mlp(self.ln2(x))


class TFSWABlock(nn.Module):
    """TSA (along time, per frequency row) -> FSA (along frequency, per frame) = y;
    out = y + Swin_SW(Swin_W(y)) (the Swin pair is a residual branch around y)."""

    def __init__(self, c, heads, mlp_hidden, window):
        super().__init__()
        self.tsa = TBlock(c, heads, mlp_hidden)
        self.fsa = TBlock(c, heads, mlp_hidden)
        self.swin = nn.ModuleList([SwinBlock(c, heads, mlp_hidden, window, False),
                                   SwinBlock(c, heads, mlp_hidden, window, True)])

    def forward(self, x):
        # x (B, T, F, C)
        b, t, f, c = x.shape
        h = x.permute(0, 2, 1, 3).reshape(b * f, t, c)          # TSA tokens (B*F, T, C)
        h = self.tsa(h).reshape(b, f, t, c).permute(0, 2, 1, 3)  # back to (B, T, F, C)
        y = self.fsa(h.reshape(b * t, f, c)).reshape(b, t, f, c)  # FSA tokens (B*T, F, C)
        z = y
        for m in self.swin:
            z = m(z)
        return y + z


# ------------------------------------------------------------------------------ model
class TFSWAResUNet(nn.Module):
    def __init__(self, channels, rcms=4, tfswa=4, heads=4, window=(5, 4), mlp_ratio=2.0,
                 subbands=4, targets=1, n_fft=2048, hop=441, output="magnitude"):
        super().__init__()
        self.channels = list(channels)
        self.L = len(channels)
        self.K = subbands
        self.S = targets
        self.n_fft = n_fft
        self.hop = hop
        self.window = tuple(window)
        self.output = output
        cin = 2 * subbands
        self.enc = nn.ModuleList()
        for c in channels:
            self.enc.append(nn.Module())
            self.enc[-1].rcm = ConvBlock(cin, c, rcms).rcm
            cin = c
        C = channels[-1]
        hidden = int(C * mlp_ratio)
        self.tfswa = nn.ModuleList([TFSWABlock(C, heads, hidden, self.window) for _ in range(tfswa)])
        self.dec = nn.ModuleList()
        cur = C
        for i in range(self.L - 1, -1, -1):
            co = channels[i - 1] if i > 0 else channels[0]
            self.dec.append(nn.Module())
            self.dec[-1].rcm = ConvBlock(cur + channels[i], co, rcms).rcm
            cur = co
        self.head = nn.Conv2d(cur, 2 * subbands * targets, 1)

    def padded_size(self, fsub, t):
        m = 2 ** self.L
        ft, ff = m * self.window[0], m * self.window[1]
        return -(-fsub // ff) * ff, -(-t // ft) * ft

    def forward(self, mix, acts=None):
        # mix (B, 2, N) -> (B, S, 2, N)
        B, _, N = mix.shape
        K, S = self.K, self.S
        win = torch.hann_window(self.n_fft, periodic=True, dtype=mix.dtype)
        X = torch.stft(mix.reshape(B * 2, N), self.n_fft, self.hop, window=win, center=True,
                       pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        Fb, T = X.shape[-2], X.shape[-1]
        X = X.reshape(B, 2, Fb, T)
        mag = X.abs()
        fsub = (Fb - 1) // K
        Fp, Tp = self.padded_size(fsub, T)
        # subbands: channel (ch, k) = ch*K + k, k = 0 lowest band; Nyquist bin dropped
        x = mag[:, :, : K * fsub].reshape(B, 2, K, fsub, T).reshape(B, 2 * K, fsub, T)
        x = F.pad(x, (0, Tp - T, 0, Fp - fsub))
        if acts is not None:
            acts["act.input_spec"] = x
        skips = []
        for i, e in enumerate(self.enc):
            for m in e.rcm:
                x = m(x)
            skips.append(x)
            if acts is not None:
                acts[f"act.enc.{i}"] = x
            x = F.avg_pool2d(x, 2)
        # bottleneck: (B, C, F, T) -> (B, T, F, C)
        h = x.permute(0, 3, 2, 1)
        for j, blk in enumerate(self.tfswa):
            h = blk(h)
            if acts is not None:
                acts[f"act.tfswa.{j}"] = h.permute(0, 3, 2, 1)
        x = h.permute(0, 3, 2, 1)
        for j, d in enumerate(self.dec):
            i = self.L - 1 - j
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = torch.cat([x, skips[i]], dim=1)
            for m in d.rcm:
                x = m(x)
            if acts is not None:
                acts[f"act.dec.{j}"] = x
        z = self.head(x)  # (B, 2*K*S, Fp, Tp), channel (s, ch, k)
        if self.output == "mask":
            inp = F.pad(mag[:, :, : K * fsub].reshape(B, 2 * K, fsub, T), (0, Tp - T, 0, Fp - fsub))
            m = torch.sigmoid(z).reshape(B, S, 2 * K, Fp, Tp) * inp[:, None]
        else:
            m = F.relu(z).reshape(B, S, 2 * K, Fp, Tp)
        m = m[..., :fsub, :T].reshape(B, S, 2, K * fsub, T)
        m = F.pad(m, (0, 0, 0, Fb - K * fsub))  # Nyquist bin = 0
        if acts is not None:
            acts["act.mag"] = m
        phase = torch.polar(torch.ones_like(mag), torch.angle(X))  # (B, 2, Fb, T)
        Y = m * phase[:, None]
        y = torch.istft(Y.reshape(B * S * 2, Fb, T), self.n_fft, self.hop, window=win, center=True,
                        normalized=False, onesided=True, length=N)
        y = y.reshape(B, S, 2, N)
        if acts is not None:
            acts["act.wave"] = y
        return y


def build(args):
    return TFSWAResUNet([int(c) for c in args.channels.split(",")], args.rcms, args.tfswa,
                        args.heads, tuple(int(w) for w in args.window.split(",")),
                        args.mlp_ratio, args.subbands, args.targets, args.n_fft, args.hop,
                        args.output)


# ------------------------------------------------------------------------ safetensors
def save_safetensors(path, tensors, metadata=None):
    """Minimal standard safetensors writer (F32), independent of the C implementation."""
    header = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy().astype("<f4"))
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        dt = {"F32": "<f4", "BF16": "<u2"}[info["dtype"]]
        arr = np.frombuffer(data[a:b], dtype=dt)
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def load_into(model, path):
    """Load weights written by tfswa (C). num_batches_tracked is not stored (BN momentum is
    fixed, so PyTorch never reads it)."""
    sd = load_safetensors(path)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"{path}: missing {missing}, unexpected {unexpected}")


# -------------------------------------------------------------------------------- gen
def randomize(model, g):
    """Default PyTorch init, then non-trivial norms/buffers/biases so the test sees them."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("rel_bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif ".bn" in name or ".ln" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(1.0 + 0.5 * torch.rand(b.shape, generator=g))


def state_tensors(model):
    return {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def gen(args):
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    model = build(args)
    randomize(model, g)
    weights = {k: v.float().clone() for k, v in state_tensors(model).items()}
    mix = (0.5 * torch.randn(args.batch, 2, args.samples, generator=g)).float()
    target = (0.3 * torch.randn(args.batch, args.targets, 2, args.samples, generator=g)).float()
    model = model.double()
    model.train()
    acts = {}
    with torch.set_grad_enabled(not args.forward_only):
        y = model(mix.double(), acts)
    loss = (y - target.double()).abs().mean()
    if not args.forward_only:
        loss.backward()
    out = dict(weights)
    out["act.input"] = mix
    out["act.target"] = target
    for k, v in acts.items():
        out[k] = v
    out["loss"] = loss.reshape(1)
    for k, v in state_tensors(model).items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            out["after." + k] = v
    if not args.forward_only:
        for k, p in model.named_parameters():
            out["grad." + k] = p.grad
        model.eval()
        with torch.no_grad():
            out["eval.wave"] = model(mix.double(), {})
    if args.fp32_too:
        # the same forward (and backward) in float32: PyTorch's own float32 error, the yardstick
        # for ill-conditioned tensors of the deeper presets
        m32 = build(args)
        m32.load_state_dict(weights, strict=False)
        m32.train()
        a32 = {}
        with torch.set_grad_enabled(not args.forward_only):
            y32 = m32(mix, a32)
            l32 = (y32 - target).abs().mean()
            if not args.forward_only:
                l32.backward()
        for k, v in a32.items():
            out["f32." + k] = v
        if not args.forward_only:
            for k, p in m32.named_parameters():
                out["f32.grad." + k] = p.grad
    meta = {k: getattr(args, k) for k in ("channels", "rcms", "tfswa", "heads", "window", "mlp_ratio",
                                             "subbands", "targets", "n_fft", "hop", "batch",
                                             "samples", "output", "seed")}
    meta["format"] = "tfswa-ref-1"
    save_safetensors(args.out, out, meta)


def add_model_args(p):
    p.add_argument("--channels", default="8,16,24,32")
    p.add_argument("--rcms", type=int, default=2)
    p.add_argument("--tfswa", type=int, default=2)
    p.add_argument("--heads", type=int, default=2)
    p.add_argument("--window", default="5,4")
    p.add_argument("--mlp-ratio", type=float, default=2.0)
    p.add_argument("--subbands", type=int, default=4)
    p.add_argument("--targets", type=int, default=1)
    p.add_argument("--n-fft", type=int, default=512)
    p.add_argument("--hop", type=int, default=128)
    p.add_argument("--output", default="magnitude", choices=["magnitude", "mask"])


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("gen")
    add_model_args(p)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--samples", type=int, default=8000)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--forward-only", action="store_true",
                   help="the train-mode forward only: no grad.*, no eval.wave")
    p.add_argument("--fp32-too", action="store_true",
                   help="also f32.act.* and f32.grad.*: the same step run in float32")
    p.add_argument("--out", required=True)
    p = sub.add_parser("count", help="trainable parameter count, one line per --targets value "
                                     "(--targets takes a comma list here, e.g. 1,4)")
    add_model_args(p)
    p.set_defaults(targets="1")
    for a in p._actions:
        if a.dest == "targets":
            a.type = str
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.cmd == "gen":
        gen(args)
    else:
        for t in args.targets.split(","):
            args.targets = int(t)
            m = build(args)
            print(sum(p.numel() for p in m.parameters()))


if __name__ == "__main__":
    sys.exit(main())
