#!/usr/bin/python3
"""TFSWA-ResUNet in PyTorch written the way a PyTorch user would write it for speed; used
ONLY as the "PyTorch" side of comparisons: tools/vs_pytorch.py (CPU) and
tools/torch_gpu_bench.py (CUDA; the cached masks and window live on the input's device).

Same architecture, same computation and the same state_dict names as the test oracle
tests/reference/tfswa_ref.py (weights load both ways; tools/vs_pytorch.py checks on every
run that both give the same outputs and gradients on the same weights), but:
  - attention: torch.nn.functional.scaled_dot_product_attention when this torch has it
    (2.0+), else (1.13) one batched matmul per attention with the 1/sqrt(d) scale folded
    into q, the relative-position bias and the shift mask added in place, then softmax;
  - the relative-position bias is gathered once per attention call (it is a parameter)
    and combined with the shift mask in one (nW, heads, L, L) tensor;
  - the shift masks and the STFT window are built once (cached by size/dtype), not per
    forward;
  - callers use torch.inference_mode() for separation, Adam(foreach=True) and
    zero_grad(set_to_none=True) for training.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
# what needs no speeding up is the reference's own code (same state_dict names)
from tfswa_ref import (BN_EPS, BN_MOMENTUM, LN_EPS, MASK_NEG, MLP,  # noqa: E402,F401
                       RCM, LayerNorm, window_partition, window_reverse)
from tfswa_ref import ConvBlock as Stage  # noqa: E402

HAVE_SDPA = hasattr(F, "scaled_dot_product_attention")
SDPA_PATH = ("torch.nn.functional.scaled_dot_product_attention, bias/mask as attn_mask (the "
             "explicit path for the windowed blocks in autocast training)")
EXPLICIT_PATH = "matmul (1/sqrt(d) folded into q) + in-place cached bias/mask + softmax + matmul"
# which attention Attention.forward runs; tools/vs_pytorch.py's check sets it to False to
# compare the two paths where SDPA exists
use_sdpa = HAVE_SDPA


def attention_path():
    return SDPA_PATH if use_sdpa else EXPLICIT_PATH


ATTENTION_PATH = attention_path()  # the default


# ----------------------------------------------------------------------------- conv part
# ----------------------------------------------------------------------- attention part
class Attention(nn.Module):
    """Multi-head self-attention over (N, L, C), qkv channels [q | k | v], head h on
    channels [h*hd, (h+1)*hd). Optional relative-position bias for a (wt, wf) window."""

    def __init__(self, c, heads, window=None):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(c // heads)
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)
        self.window = window
        if window is not None:
            wt, wf = window
            self.rel_bias = nn.Parameter(torch.zeros((2 * wt - 1) * (2 * wf - 1), heads))
            ti = torch.arange(wt).repeat_interleave(wf)
            fi = torch.arange(wf).repeat(wt)
            idx = (ti[:, None] - ti[None, :] + wt - 1) * (2 * wf - 1) + (fi[:, None] - fi[None, :] + wf - 1)
            self.register_buffer("rel_index", idx.reshape(-1), persistent=False)

    def bias(self):
        """(heads, L, L) relative-position bias, gathered once per call of the block."""
        l = self.window[0] * self.window[1]
        return self.rel_bias[self.rel_index].reshape(l, l, self.heads).permute(2, 0, 1)

    def forward(self, x, bm=None):
        # x (N, L, C); bm None or additive (nW, h, L, L): window n uses bm[n % nW]
        n, l, c = x.shape
        h = self.heads
        hd = c // h
        nw = 1 if bm is None else bm.shape[0]
        qkv = self.qkv(x).reshape(n, l, 3, h, hd).permute(2, 0, 3, 1, 4)  # (3, N, h, L, hd)
        q, k, v = qkv.unbind(0)
        if bm is not None and bm.dtype != q.dtype:
            bm = bm.to(q.dtype)  # under autocast q is bf16, the bias parameter float32
        # torch 2.5's CPU SDPA sends an attn_mask that needs a gradient (the learnable bias,
        # in training) to its math fallback, which computes bf16/fp16 input in float32: under
        # autocast that case takes the explicit path below, which stays in bf16
        if use_sdpa and not (bm is not None and bm.requires_grad and q.element_size() < 4):
            if bm is None:
                y = F.scaled_dot_product_attention(q, k, v)
            else:  # (N/nW, nW*h, L, hd) against a (1, nW*h, L, L) mask broadcast over the
                # batch (4-D: torch 2.5's CPU flash kernel takes it; a 3-D mask sends bf16 to
                # the math path, which computes in float32)
                sh = (n // nw, nw * h, l, hd)
                y = F.scaled_dot_product_attention(q.reshape(sh), k.reshape(sh), v.reshape(sh),
                                                   attn_mask=bm.reshape(1, nw * h, l, l))
                y = y.reshape(n, h, l, hd)
        else:
            att = torch.matmul(q * self.scale, k.transpose(-2, -1))  # (N, h, L, L)
            if bm is not None:
                att.view(n // nw, nw, h, l, l).add_(bm)  # the matmul does not save its output
            y = torch.matmul(att.softmax(-1), v)
        return self.proj(y.transpose(1, 2).reshape(n, l, c))


class TBlock(nn.Module):
    """Pre-LN transformer block: x + MSA(LN(x)), then + MLP(LN(.))."""

    def __init__(self, c, heads, mlp_hidden, window=None):
        super().__init__()
        self.ln1 = LayerNorm(c, eps=LN_EPS)
        self.attn = Attention(c, heads, window)
        self.ln2 = LayerNorm(c, eps=LN_EPS)
        self.mlp = MLP(c, mlp_hidden)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


_MASKS = {}


def shift_mask(t, f, wt, wf, st, sf, dtype, device=None):
    """Swin's attention mask for the rolled (t, f) map: (nW, L, L), 0 or MASK_NEG; built
    once per (size, window, shift, dtype, device) and cached on that device."""
    key = (t, f, wt, wf, st, sf, dtype, str(device))
    m = _MASKS.get(key)
    if m is None:
        img = torch.zeros(1, t, f, 1)
        cnt = 0
        for ts in (slice(0, -wt), slice(-wt, -st), slice(-st, None)):
            for fs in (slice(0, -wf), slice(-wf, -sf), slice(-sf, None)):
                img[:, ts, fs, :] = cnt
                cnt += 1
        w = window_partition(img, wt, wf).squeeze(-1)  # (nW, L)
        d = w[:, None, :] - w[:, :, None]
        m = torch.where(d != 0, torch.tensor(MASK_NEG), torch.tensor(0.0)).to(dtype=dtype, device=device)
        _MASKS[key] = m
    return m


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
        h = self.ln1(x)
        bm = self.attn.bias()[None]  # (1, heads, L, L)
        if self.shifted:
            st, sf = wt // 2, wf // 2
            h = torch.roll(h, shifts=(-st, -sf), dims=(1, 2))
            bm = bm + shift_mask(t, f, wt, wf, st, sf, bm.dtype, bm.device)[:, None]  # (nW, heads, L, L)
        w = self.attn(window_partition(h, wt, wf), bm)
        h = window_reverse(w, b, t, f, wt, wf)
        if self.shifted:
            h = torch.roll(h, shifts=(wt // 2, wf // 2), dims=(1, 2))
        x = x + h
        return x + self.mlp(self.ln2(x))


class TFSWABlock(nn.Module):
    """TSA (along time) -> FSA (along frequency) = y; out = y + Swin_SW(Swin_W(y))."""

    def __init__(self, c, heads, mlp_hidden, window):
        super().__init__()
        self.tsa = TBlock(c, heads, mlp_hidden)
        self.fsa = TBlock(c, heads, mlp_hidden)
        self.swin = nn.ModuleList([SwinBlock(c, heads, mlp_hidden, window, False),
                                   SwinBlock(c, heads, mlp_hidden, window, True)])

    def forward(self, x):
        b, t, f, c = x.shape
        h = x.permute(0, 2, 1, 3).reshape(b * f, t, c)
        h = self.tsa(h).reshape(b, f, t, c).permute(0, 2, 1, 3)
        y = self.fsa(h.reshape(b * t, f, c)).reshape(b, t, f, c)
        z = y
        for m in self.swin:
            z = m(z)
        return y + z


# ------------------------------------------------------------------------------ model
_WINDOWS = {}


def hann(n, dtype, device=None):
    key = (n, dtype, str(device))
    w = _WINDOWS.get(key)
    if w is None:
        w = _WINDOWS[key] = torch.hann_window(n, periodic=True, dtype=dtype, device=device)
    return w


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
            self.enc.append(Stage(cin, c, rcms))
            cin = c
        C = channels[-1]
        hidden = int(C * mlp_ratio)
        self.tfswa = nn.ModuleList([TFSWABlock(C, heads, hidden, self.window) for _ in range(tfswa)])
        self.dec = nn.ModuleList()
        cur = C
        for i in range(self.L - 1, -1, -1):
            co = channels[i - 1] if i > 0 else channels[0]
            self.dec.append(Stage(cur + channels[i], co, rcms))
            cur = co
        self.head = nn.Conv2d(cur, 2 * subbands * targets, 1)

    def padded_size(self, fsub, t):
        m = 2 ** self.L
        ft, ff = m * self.window[0], m * self.window[1]
        return -(-fsub // ff) * ff, -(-t // ft) * ft

    def forward(self, mix):
        # mix (B, 2, N) -> (B, S, 2, N); the STFT/ISTFT stay in float32 under autocast
        B, _, N = mix.shape
        K, S = self.K, self.S
        win = hann(self.n_fft, mix.dtype, mix.device)
        X = torch.stft(mix.reshape(B * 2, N), self.n_fft, self.hop, window=win, center=True,
                       pad_mode="reflect", normalized=False, onesided=True, return_complex=True)
        Fb, T = X.shape[-2], X.shape[-1]
        X = X.reshape(B, 2, Fb, T)
        mag = X.abs()
        fsub = (Fb - 1) // K
        Fp, Tp = self.padded_size(fsub, T)
        spec = mag[:, :, : K * fsub].reshape(B, 2 * K, fsub, T)
        x = F.pad(spec, (0, Tp - T, 0, Fp - fsub))
        skips = []
        for e in self.enc:
            x = e(x)
            skips.append(x)
            x = F.avg_pool2d(x, 2)
        h = x.permute(0, 3, 2, 1)  # (B, T, F, C)
        for blk in self.tfswa:
            h = blk(h)
        x = h.permute(0, 3, 2, 1)
        for j, d in enumerate(self.dec):
            i = self.L - 1 - j
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = d(torch.cat([x, skips[i].to(x.dtype)], dim=1))
        z = self.head(x).to(mag.dtype)  # (B, 2*K*S, Fp, Tp); back from bf16 under autocast
        if self.output == "mask":
            inp = F.pad(spec, (0, Tp - T, 0, Fp - fsub))
            m = torch.sigmoid(z).reshape(B, S, 2 * K, Fp, Tp) * inp[:, None]
        else:
            m = F.relu(z).reshape(B, S, 2 * K, Fp, Tp)
        m = m[..., :fsub, :T].reshape(B, S, 2, K * fsub, T)
        m = F.pad(m, (0, 0, 0, Fb - K * fsub))  # Nyquist bin = 0
        phase = torch.polar(torch.ones_like(mag), torch.angle(X))  # (B, 2, Fb, T)
        Y = m * phase[:, None]
        y = torch.istft(Y.reshape(B * S * 2, Fb, T), self.n_fft, self.hop, window=win, center=True,
                        normalized=False, onesided=True, length=N)
        return y.reshape(B, S, 2, N)


def from_arch(p, targets, n_fft, hop):
    """The model from a preset/model.json dict (channels, rcms_per_block, ...)."""
    return TFSWAResUNet(p["channels"], p["rcms_per_block"], p["tfswa_blocks"], p["heads"],
                        tuple(p["window"]), float(p["mlp_ratio"]), p["subbands"], targets, n_fft,
                        hop, p.get("output", "magnitude"))


def load_safetensors(path):
    """{name: tensor} from a standard safetensors file (F32 or BF16)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype={"F32": "<f4", "BF16": "<u2"}[info["dtype"]])
        if info["dtype"] == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def load_into(model, path):
    missing, unexpected = model.load_state_dict(load_safetensors(path), strict=False)
    missing = [m for m in missing if not m.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"{path}: missing {missing}, unexpected {unexpected}")
