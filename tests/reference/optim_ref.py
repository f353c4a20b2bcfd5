"""Reference for tests/test_optim.c: torch.optim.Adam / AdamW and clip_grad_norm_ on a
deterministic problem. Prints one line per (variant): name followed by the final params."""
import math
import sys

import torch

N, STEPS = 7, 6


def grad(t, i):
    return math.sin(1.3 * t + 0.7 * i) * (0.1 + i) + 0.05 * t


def run(name, opt_cls, **kw):
    p = torch.nn.Parameter(torch.tensor([0.5 - 0.2 * i for i in range(N)], dtype=torch.float32))
    opt = opt_cls([p], lr=kw.pop("lr"), **kw)
    for t in range(1, STEPS + 1):
        opt.zero_grad()
        p.grad = torch.tensor([grad(t, i) for i in range(N)], dtype=torch.float32)
        if name.endswith("clip"):
            torch.nn.utils.clip_grad_norm_([p], max_norm=1.0)
        opt.step()
    print(name, " ".join("%.9g" % x for x in p.detach().tolist()))


run("adam", torch.optim.Adam, lr=1e-2)
run("adam_wd", torch.optim.Adam, lr=1e-2, weight_decay=0.1)
run("adamw", torch.optim.AdamW, lr=1e-2, weight_decay=0.1)
run("adam_clip", torch.optim.Adam, lr=1e-2)
sys.stdout.flush()
