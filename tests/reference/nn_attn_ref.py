#!/usr/bin/python3
"""PyTorch reference for tests/test_nn_attn.c (attention-side kernels of src/nn/attn.h).

Usage: /usr/bin/python3 tests/reference/nn_attn_ref.py OUT.bin

Builds random float32 inputs and parameters, runs every layer in float64 with autograd
((out * dout).sum().backward()) and writes inputs, outputs and gradients as float32.
The Swin blocks follow the official Swin Transformer code (window_partition,
window_reverse, relative_position_index, the img_mask/-100 attention mask, torch.roll),
generalised to a (wt, wf) = time x frequency window on a (B, T, F, C) token map.

File format (little-endian):
  8 bytes magic "TFNNREF1", uint32 count, then count records of
  uint32 name_len, name (ASCII, no NUL), uint32 ndim, uint32 shape[ndim],
  float32 data[prod(shape)] (row-major). Integer tensors (indices) are stored as float32.
"""
import struct
import sys

import torch
import torch.nn.functional as Fn

torch.manual_seed(1234)
DT = torch.float64
out_tensors = []


def put(name, t):
    out_tensors.append((name, t.detach().to(torch.float32).contiguous().cpu()))


def rnd(*shape, scale=1.0):
    """float32-representable random tensor, promoted to float64, requiring grad."""
    t = (torch.randn(*shape, dtype=torch.float32) * scale).to(DT)
    return t.requires_grad_(True)


# ------------------------------------------------------------------ layer norm
def ref_layernorm():
    N, C = 7, 12
    x = rnd(N, C, scale=2.0)
    x = (x.detach() + 0.5).requires_grad_(True)
    w = (1.0 + rnd(C, scale=0.3).detach()).requires_grad_(True)
    b = rnd(C, scale=0.3)
    dout = rnd(N, C).detach()
    y = Fn.layer_norm(x, (C,), w, b, eps=1e-5)
    (y * dout).sum().backward()
    for k, v in [("x", x), ("w", w), ("b", b), ("dout", dout), ("out", y)]:
        put("ln." + k, v)
    put("ln.dx", x.grad), put("ln.dw", w.grad), put("ln.db", b.grad)


# ---------------------------------------------------------------------- linear
def ref_linear():
    N, IC, OC = 5, 6, 7
    x, w, b = rnd(N, IC), rnd(OC, IC, scale=0.5), rnd(OC, scale=0.5)
    dout = rnd(N, OC).detach()
    y = Fn.linear(x, w, b)
    (y * dout).sum().backward()
    for k, v in [("x", x), ("w", w), ("b", b), ("dout", dout), ("out", y)]:
        put("lin." + k, v)
    put("lin.dx", x.grad), put("lin.dw", w.grad), put("lin.db", b.grad)


# ----------------------------------------------------------------- Swin pieces
def relative_position_index(wt, wf):
    coords_h = torch.arange(wt)
    coords_w = torch.arange(wf)
    coords = torch.stack(torch.meshgrid([coords_h, coords_w], indexing="ij"))  # 2, wt, wf
    coords_flatten = torch.flatten(coords, 1)  # 2, L
    relative_coords = coords_flatten[:, :, None] - coords_flatten[:, None, :]  # 2, L, L
    relative_coords = relative_coords.permute(1, 2, 0).contiguous()  # L, L, 2
    relative_coords[:, :, 0] += wt - 1
    relative_coords[:, :, 1] += wf - 1
    relative_coords[:, :, 0] *= 2 * wf - 1
    return relative_coords.sum(-1)  # L, L


def window_partition(x, wt, wf):
    B, H, W, C = x.shape
    x = x.view(B, H // wt, wt, W // wf, wf, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, wt, wf, C)


def window_reverse(windows, wt, wf, H, W):
    B = int(windows.shape[0] / (H * W / wt / wf))
    x = windows.view(B, H // wt, W // wf, wt, wf, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, H, W, -1)


def shift_attn_mask(H, W, wt, wf, s0, s1):
    img_mask = torch.zeros((1, H, W, 1), dtype=DT)
    h_slices = (slice(0, -wt), slice(-wt, -s0), slice(-s0, None))
    w_slices = (slice(0, -wf), slice(-wf, -s1), slice(-s1, None))
    cnt = 0
    for h in h_slices:
        for w in w_slices:
            img_mask[:, h, w, :] = cnt
            cnt += 1
    mask_windows = window_partition(img_mask, wt, wf).view(-1, wt * wf)
    attn_mask = mask_windows.unsqueeze(1) - mask_windows.unsqueeze(2)
    return attn_mask.masked_fill(attn_mask != 0, float(-100.0)).masked_fill(attn_mask == 0, 0.0)


def window_attention(x, p, heads, index, L, mask=None):
    """Swin WindowAttention.forward (qkv, scale, bias table, mask, softmax, proj)."""
    B_, N, C = x.shape
    qkv = Fn.linear(x, p["qkv_w"], p["qkv_b"])
    qkv = qkv.reshape(B_, N, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    q = q * (C // heads) ** -0.5
    attn = q @ k.transpose(-2, -1)
    if p.get("rel_bias_table") is not None:
        bias = p["rel_bias_table"][index.view(-1)].view(L, L, -1).permute(2, 0, 1).contiguous()
        attn = attn + bias.unsqueeze(0)
    if mask is not None:
        nW = mask.shape[0]
        attn = attn.view(B_ // nW, nW, heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.view(-1, heads, N, N)
    attn = attn.softmax(dim=-1)
    x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
    return Fn.linear(x, p["proj_w"], p["proj_b"])


def mlp(x, p):
    return Fn.linear(Fn.gelu(Fn.linear(x, p["fc1_w"], p["fc1_b"])), p["fc2_w"], p["fc2_b"])


PARAM_NAMES = ["ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b", "ln2_w", "ln2_b",
               "fc1_w", "fc1_b", "fc2_w", "fc2_b", "rel_bias_table"]


def make_params(C, H, Hd, R):
    p = {
        "ln1_w": (1.0 + rnd(C, scale=0.2).detach()).requires_grad_(True),
        "ln1_b": rnd(C, scale=0.2),
        "qkv_w": rnd(3 * C, C, scale=0.4), "qkv_b": rnd(3 * C, scale=0.2),
        "proj_w": rnd(C, C, scale=0.4), "proj_b": rnd(C, scale=0.2),
        "ln2_w": (1.0 + rnd(C, scale=0.2).detach()).requires_grad_(True),
        "ln2_b": rnd(C, scale=0.2),
        "fc1_w": rnd(Hd, C, scale=0.4), "fc1_b": rnd(Hd, scale=0.2),
        "fc2_w": rnd(C, Hd, scale=0.4), "fc2_b": rnd(C, scale=0.2),
    }
    if R:
        p["rel_bias_table"] = rnd(R, H, scale=0.5)
    return p


def put_block(prefix, p, x, dout, y):
    put(prefix + ".x", x), put(prefix + ".dout", dout), put(prefix + ".out", y)
    put(prefix + ".dx", x.grad)
    for k in PARAM_NAMES:
        if k in p:
            put(prefix + "." + k, p[k])
            put(prefix + ".g." + k, p[k].grad)


# ------------------------------------------------------ attention (bias + mask)
def ref_attention():
    N, wt, wf, C, H, nW = 6, 5, 4, 8, 2, 3
    L, D = wt * wf, C // H
    qkv = rnd(N, L, 3 * C)
    table = rnd((2 * wt - 1) * (2 * wf - 1), H, scale=0.5)
    index = relative_position_index(wt, wf)
    # additive mask: -100 on a random third of entries (never a whole row), random elsewhere
    m = torch.rand(nW, L, L)
    mask = torch.where(m < 0.33, torch.full_like(m, -100.0), torch.randn(nW, L, L))
    for w in range(nW):
        mask[w].fill_diagonal_(0.0)
    mask = mask.to(torch.float32).to(DT)
    dout = rnd(N, L, C).detach()
    t = qkv.reshape(N, L, 3, H, D).permute(2, 0, 3, 1, 4)
    q, k, v = t[0], t[1], t[2]
    att = (q @ k.transpose(-2, -1)) * D ** -0.5
    att = att + table[index.view(-1)].view(L, L, H).permute(2, 0, 1).unsqueeze(0)
    att = (att.view(N // nW, nW, H, L, L) + mask.unsqueeze(1).unsqueeze(0)).view(N, H, L, L)
    att = att.softmax(-1)
    y = (att @ v).transpose(1, 2).reshape(N, L, C)
    (y * dout).sum().backward()
    put("att.qkv", qkv), put("att.table", table), put("att.index", index.to(DT))
    put("att.mask", mask), put("att.dout", dout), put("att.out", y), put("att.probs", att)
    put("att.dqkv", qkv.grad), put("att.dtable", table.grad)


# ------------------------------------------------------- plain transformer block
def ref_tblock():
    N, L, C, H, Hd = 3, 7, 8, 2, 16
    p = make_params(C, H, Hd, 0)
    x = rnd(N, L, C)
    dout = rnd(N, L, C).detach()
    x1 = x + window_attention(Fn.layer_norm(x, (C,), p["ln1_w"], p["ln1_b"], 1e-5), p, H, None, L)
    y = x1 + mlp(Fn.layer_norm(x1, (C,), p["ln2_w"], p["ln2_b"], 1e-5), p)
    (y * dout).sum().backward()
    put_block("tb", p, x, dout, y)


# ------------------------------------------- Swin W-MSA / SW-MSA (official form)
def ref_swin(prefix, shift):
    B, T, F, C, H, wt, wf, Hd = 2, 10, 8, 8, 2, 5, 4, 16
    L = wt * wf
    s0, s1 = (wt // 2, wf // 2) if shift else (0, 0)
    index = relative_position_index(wt, wf)
    mask = shift_attn_mask(T, F, wt, wf, s0, s1) if shift else None
    p = make_params(C, H, Hd, (2 * wt - 1) * (2 * wf - 1))
    x = rnd(B, T * F, C)
    dout = rnd(B, T * F, C).detach()
    # SwinTransformerBlock.forward
    shortcut = x
    h = Fn.layer_norm(x, (C,), p["ln1_w"], p["ln1_b"], 1e-5).view(B, T, F, C)
    if shift:
        h = torch.roll(h, shifts=(-s0, -s1), dims=(1, 2))
    xw = window_partition(h, wt, wf).view(-1, L, C)
    aw = window_attention(xw, p, H, index, L, mask).view(-1, wt, wf, C)
    h = window_reverse(aw, wt, wf, T, F)
    if shift:
        h = torch.roll(h, shifts=(s0, s1), dims=(1, 2))
    x1 = shortcut + h.reshape(B, T * F, C)
    y = x1 + mlp(Fn.layer_norm(x1, (C,), p["ln2_w"], p["ln2_b"], 1e-5), p)
    (y * dout).sum().backward()
    put_block(prefix, p, x, dout, y)
    if shift:
        put(prefix + ".mask", mask)
    put(prefix + ".index", index.to(DT))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: nn_attn_ref.py OUT.bin")
    ref_layernorm()
    ref_linear()
    ref_attention()
    ref_tblock()
    ref_swin("wmsa", False)
    ref_swin("swmsa", True)
    with open(sys.argv[1], "wb") as f:
        f.write(b"TFNNREF1")
        f.write(struct.pack("<I", len(out_tensors)))
        for name, t in out_tensors:
            nb = name.encode("ascii")
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main()
