#!/usr/bin/python3
"""PyTorch reference of the training losses of src/train/loss.c, used ONLY by tests.

    /usr/bin/python3 tests/reference/loss_ref.py IN.safetensors OUT.safetensors

IN holds `y` and `t` (n_sig, N) float32 and the metadata `kind` (l1 | mrstft) and `scale`.
OUT gets `loss` (1,) and `dy` (n_sig, N) = scale * d loss / d y, computed in float64 with
autograd, independently of the C code:
    l1      mean |y - t|
    mrstft  l1 + (1/3) sum over windows w in (512, 1024, 2048) of
            mean over (signal, bin, frame) of | |STFT_w y| - |STFT_w t| |
            with torch.stft(n_fft=w, hop_length=w/4, periodic Hann window, center=True,
            pad_mode='reflect', onesided)
"""
import json
import struct
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0] if "/" in __file__ else ".")
import tfswa_ref  # noqa: E402  (safetensors reader / writer)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        meta = json.loads(f.read(struct.unpack("<Q", f.read(8))[0])).get("__metadata__", {})
    d = tfswa_ref.load_safetensors(src)
    y = d["y"].double().requires_grad_(True)
    t = d["t"].double()
    loss = (y - t).abs().mean()
    if meta["kind"] == "mrstft":
        terms = []
        for w in (512, 1024, 2048):
            win = torch.hann_window(w, periodic=True, dtype=torch.float64)

            def mag(x):
                return torch.stft(x, w, w // 4, window=win, center=True, pad_mode="reflect",
                                  normalized=False, onesided=True, return_complex=True).abs()

            terms.append((mag(y) - mag(t)).abs().mean())
        loss = loss + sum(terms) / len(terms)
    (float(meta["scale"]) * loss).backward()
    tfswa_ref.save_safetensors(dst, {"loss": loss.detach().reshape(1), "dy": y.grad})


if __name__ == "__main__":
    sys.exit(main())
