#!/usr/bin/python3
"""PyTorch reference for tests/test_nn_conv.c (conv2d, batchnorm2d, avgpool, upsample, concat).

usage: nn_conv_ref.py SEED OUT_FILE

Inputs, weights and a random upstream gradient `dout` are drawn in float32 from SEED; the
reference forward and backward run in float64 (the float32 inputs widened exactly) with
gradients from (out * dout).sum().backward(); every tensor is written as float32.

File format (little-endian), "TFREF001":
  8 bytes magic b"TFREF001", uint32 count, then `count` records:
  uint32 name_len, name (ASCII, no NUL), uint32 ndim, uint32 dims[ndim],
  float32 data[prod(dims)] (row-major).
Names are "<case>.<tensor>", e.g. "conv3a.dweight"; the C test reads the dims it needs
from the shapes.
"""
import struct
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:
    sys.stderr.write("nn_conv_ref.py: cannot import torch (%s); python3-torch for "
                     "/usr/bin/python3 is a test dependency\n" % e)
    sys.exit(3)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: nn_conv_ref.py SEED OUT_FILE")
    seed, path = int(sys.argv[1]), sys.argv[2]
    torch.manual_seed(seed)
    tensors = []

    def put(name, t):
        tensors.append((name, t.detach().to(torch.float32).contiguous()))

    def rnd(*shape, scale=1.0, shift=0.0):
        return torch.randn(*shape, dtype=torch.float32) * scale + shift

    def leaf(t):
        return t.double().requires_grad_(True)

    # conv2d: k=3 with bias, k=3 without bias on an odd size, k=1 with bias
    for name, B, Cin, Cout, H, W, k, has_bias in [
        ("conv3a", 2, 3, 4, 6, 10, 3, True),
        ("conv3b", 2, 3, 4, 5, 7, 3, False),
        ("conv1", 2, 3, 4, 5, 7, 1, True),
    ]:
        x, w = rnd(B, Cin, H, W), rnd(Cout, Cin, k, k, scale=0.3)
        b = rnd(Cout) if has_bias else None
        dout = rnd(B, Cout, H, W)
        xd, wd = leaf(x), leaf(w)
        bd = leaf(b) if has_bias else None
        out = F.conv2d(xd, wd, bd, stride=1, padding=(k - 1) // 2)
        (out * dout.double()).sum().backward()
        put(name + ".inp", x), put(name + ".weight", w), put(name + ".dout", dout)
        put(name + ".out", out), put(name + ".dinp", xd.grad), put(name + ".dweight", wd.grad)
        if has_bias:
            put(name + ".bias", b), put(name + ".dbias", bd.grad)

    # batchnorm2d, training mode (batch stats, running-stat update) and eval mode
    B, C, H, W = 2, 3, 5, 7
    x = rnd(B, C, H, W, scale=2.0, shift=0.7)
    w, b = rnd(C, scale=0.5, shift=1.0), rnd(C)
    rm0, rv0 = rnd(C), torch.rand(C, dtype=torch.float32) + 0.5
    dout = rnd(B, C, H, W)
    for name, training in [("bn", True), ("bneval", False)]:
        bn = torch.nn.BatchNorm2d(C, eps=1e-5, momentum=0.1).double()
        with torch.no_grad():
            bn.weight.copy_(w.double()), bn.bias.copy_(b.double())
            bn.running_mean.copy_(rm0.double()), bn.running_var.copy_(rv0.double())
        bn.train(training)
        xd = leaf(x)
        out = bn(xd)
        (out * dout.double()).sum().backward()
        put(name + ".inp", x), put(name + ".weight", w), put(name + ".bias", b)
        put(name + ".running_mean0", rm0), put(name + ".running_var0", rv0)
        put(name + ".dout", dout), put(name + ".out", out), put(name + ".dinp", xd.grad)
        put(name + ".dweight", bn.weight.grad), put(name + ".dbias", bn.bias.grad)
        put(name + ".running_mean1", bn.running_mean), put(name + ".running_var1", bn.running_var)

    # 2x2 average pooling, stride 2
    x, dout = rnd(2, 3, 6, 10), rnd(2, 3, 3, 5)
    xd = leaf(x)
    out = F.avg_pool2d(xd, 2, 2)
    (out * dout.double()).sum().backward()
    put("pool.inp", x), put("pool.dout", dout), put("pool.out", out), put("pool.dinp", xd.grad)

    # bilinear x2, align_corners=False (nn.Upsample default); a 1-row edge case too
    for name, B, C, H, W in [("up", 2, 3, 5, 7), ("up1", 1, 2, 1, 3)]:
        x, dout = rnd(B, C, H, W), rnd(B, C, 2 * H, 2 * W)
        xd = leaf(x)
        out = torch.nn.Upsample(scale_factor=2, mode="bilinear")(xd)
        (out * dout.double()).sum().backward()
        put(name + ".inp", x), put(name + ".dout", dout)
        put(name + ".out", out), put(name + ".dinp", xd.grad)

    # channel concat
    a, b, dout = rnd(2, 3, 5, 7), rnd(2, 2, 5, 7), rnd(2, 5, 5, 7)
    ad, bd = leaf(a), leaf(b)
    out = torch.cat([ad, bd], dim=1)
    (out * dout.double()).sum().backward()
    put("cat.a", a), put("cat.b", b), put("cat.dout", dout), put("cat.out", out)
    put("cat.da", ad.grad), put("cat.db", bd.grad)

    with open(path, "wb") as f:
        f.write(b"TFREF001")
        f.write(struct.pack("<I", len(tensors)))
        for name, t in tensors:
            nb = name.encode("ascii")
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main()
