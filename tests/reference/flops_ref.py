#!/usr/bin/python3
"""FLOPs of one training step of the PyTorch reference model (tfswa_ref.py), counted from
the aten operators PyTorch really runs, for tests/test_model.c (tf_model_train_flops).

    /usr/bin/python3 tests/reference/flops_ref.py --channels 8,16,24,32 ... \
        --batch 2 --samples 22050 [--checkpointing blocks]

prints two numbers: the forward FLOPs and the backward FLOPs (everything run inside
loss.backward(), the recomputed forwards of checkpointed blocks included).

Counted (2 per multiply-add, like tf_conv2d_flops): aten.convolution, the grad_input and
grad_weight outputs of aten.convolution_backward (as its output_mask asks for them), mm,
addmm, bmm. Everything else (norms, activations, softmax, FFTs, elementwise) counts 0.
The mixture requires grad, so the first conv's grad_input is computed, as in the C model.
--checkpointing blocks wraps every RCM and every TFSWA block in torch.utils.checkpoint, and
inside it the first half (BN, GELU, conv1) of every RCM but a Conv block's last in a nested
checkpoint: the C model recomputes a block's forward before its backward and, just before
each RCM's backward, that RCM's conv1 output again (the last RCM's is still there).
(PyTorch 1.13 has no torch.utils.flop_counter; the dispatch mode below is one).
"""
import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfswa_ref  # noqa: E402

aten = torch.ops.aten


def numel(shape):
    return math.prod(int(s) for s in shape)


class FlopCount(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        p = func.overloadpacket
        if p is aten.convolution:
            w = args[1]  # (Cout, Cin, kh, kw)
            self.flops += 2 * numel(out.shape) * numel(w.shape[1:])
        elif p is aten.convolution_backward:
            gout, w, mask = args[0], args[2], args[10]
            f = 2 * numel(gout.shape) * numel(w.shape[1:])
            self.flops += f * (int(bool(mask[0])) + int(bool(mask[1])))
        elif p is aten.mm:
            a, b = args[0], args[1]
            self.flops += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        elif p is aten.addmm:
            a, b = args[1], args[2]
            self.flops += 2 * a.shape[0] * a.shape[1] * b.shape[1]
        elif p is aten.bmm:
            a, b = args[0], args[1]
            self.flops += 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
        return out


class NestedRCM(torch.nn.Module):
    """An RCM whose first half runs in its own checkpoint."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def first(self, x):
        return self.m.conv1(F.gelu(self.m.bn1(x)))

    def forward(self, x):
        h = cp.checkpoint(self.first, x, use_reentrant=True)
        h = self.m.conv2(F.gelu(self.m.bn2(h)))
        return h + self.m.short(x)


class Ckpt(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return cp.checkpoint(self.m, x, use_reentrant=True)


def main():
    ap = argparse.ArgumentParser()
    tfswa_ref.add_model_args(ap)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--samples", type=int, default=8000)
    ap.add_argument("--checkpointing", default="off", choices=["off", "blocks"])
    args = ap.parse_args()
    torch.manual_seed(0)
    model = tfswa_ref.build(args)
    model.train()
    if args.checkpointing == "blocks":
        for blocks in (model.enc, model.dec):
            for b in blocks:
                for r in range(len(b.rcm)):
                    inner = NestedRCM(b.rcm[r]) if r < len(b.rcm) - 1 else b.rcm[r]
                    b.rcm[r] = Ckpt(inner)
        for k in range(len(model.tfswa)):
            model.tfswa[k] = Ckpt(model.tfswa[k])
    mix = (torch.rand(args.batch, 2, args.samples) - 0.5).requires_grad_(True)
    with FlopCount() as fc:
        y = model(mix)
        fwd = fc.flops
        y.abs().mean().backward()
        bwd = fc.flops - fwd
    print(fwd, bwd)


if __name__ == "__main__":
    sys.exit(main())
