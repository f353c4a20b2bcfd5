#!/usr/bin/python3
"""Reference data for tests/test_stft.c, computed by PyTorch in float64 from
inputs drawn in float32 (so the C side sees exactly the same inputs).

Usage: stft_ref.py OUT_FILE

For each case (n_fft, hop, N, S) it writes, under the prefix "caseI/":
  params            [n_fft, hop, N, S]
  x (S, N)          random signal, uniform in [-1, 1)
  X_re, X_im        torch.stft(x, n_fft, hop, window=hann_window(n_fft), center=True,
                    return_complex=True)                                      (S, F, T)
  Z_re, Z_im        random spectrogram (not the STFT of anything)             (S, F, T)
  y                 torch.istft(Z, n_fft, hop, window=hann, center=True, length=N) (S, N)
  g                 random upstream gradient                                  (S, N)
  gZ_re, gZ_im      d sum(istft(Z) * g) / d (Re Z, Im Z)                      (S, F, T)
  G_re, G_im        random upstream gradient                                  (S, F, T)
  gx                d sum(Re stft(x) * G_re + Im stft(x) * G_im) / dx        (S, N)

File format (little endian): magic b"TFREF001", then records until end of file:
  u32 name length, name bytes (ASCII), u32 ndim, i64 shape[ndim], float32 data.
"""
import struct
import sys

import torch

CASES = [
    (2048, 441, 60417, 2),  # 1.37 s at 44.1 kHz, the paper's STFT
    (2048, 512, 60417, 2),
    (16, 4, 37, 3),
    (16, 4, 9, 2),  # shortest signal torch can reflect-pad (N = n_fft/2 + 1)
    (16, 3, 23, 2),  # hop that does not divide n_fft
    (16, 8, 40, 2),  # hop = n_fft/2
]


def main():
    out = open(sys.argv[1], "wb")
    out.write(b"TFREF001")

    def put(name, t):
        a = t.detach().to(torch.float32).contiguous().numpy()
        nb = name.encode()
        out.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", a.ndim))
        out.write(struct.pack("<%dq" % a.ndim, *a.shape))
        out.write(a.astype("<f4").tobytes())

    torch.manual_seed(1234)
    dt = torch.float64
    for i, (n_fft, hop, n, s) in enumerate(CASES):
        p = "case%d/" % i
        win = torch.hann_window(n_fft, dtype=dt)

        def stft(x):
            return torch.stft(x, n_fft, hop, window=win, center=True, return_complex=True)

        def istft(z):
            return torch.istft(z, n_fft, hop, window=win, center=True, length=n)

        x = (torch.rand(s, n) * 2 - 1).to(dt).requires_grad_(True)
        X = stft(x)
        f, t = X.shape[1], X.shape[2]
        Zr = torch.randn(s, f, t).to(dt).requires_grad_(True)
        Zi = torch.randn(s, f, t).to(dt).requires_grad_(True)
        y = istft(torch.complex(Zr, Zi))
        g = torch.randn(s, n).to(dt)
        (y * g).sum().backward()
        Gr = torch.randn(s, f, t).to(dt)
        Gi = torch.randn(s, f, t).to(dt)
        (X.real * Gr + X.imag * Gi).sum().backward()

        put(p + "params", torch.tensor([n_fft, hop, n, s], dtype=dt))
        for name, v in [("x", x), ("X_re", X.real), ("X_im", X.imag), ("Z_re", Zr),
                        ("Z_im", Zi), ("y", y), ("g", g), ("gZ_re", Zr.grad),
                        ("gZ_im", Zi.grad), ("G_re", Gr), ("G_im", Gi), ("gx", x.grad)]:
            put(p + name, v)
    out.close()


if __name__ == "__main__":
    main()
