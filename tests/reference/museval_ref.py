"""museval reference for the BSS Eval v4 cross-check (tests/test_bsseval.c,
tests/test_eval_track.c, tools/bench_metrics_vs_museval.c).

usage: python museval_ref.py IN OUT    (python = the one tools/pyenv.sh prints)
       python museval_ref.py --json IN OURS.json RATE NAME...

Runs museval.metrics.bss_eval(ref, est, window, hop, compute_permutation=False, filters_len,
framewise_filters=False, bsseval_sources_version=False) on every case of IN and writes the
frame-wise metrics, museval's per-track aggregate and the time bss_eval took to OUT.
Thread counts come from the environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS).

Files (little-endian), written and read by tests/bss_check.c:
  IN:  b"TFBSSIN1", int32 ncases, then per case
       int32 nsrc, nchan, window, hop, filters_len, 0; int64 nsampl;
       float32 ref[nsrc][nchan][nsampl]; float32 est[nsrc][nchan][nsampl]
  OUT: b"TFBSSOU1", int32 ncases, then per case
       int32 nsrc, nwin; float64 seconds;
       float64 sdr[nsrc][nwin], isr[..], sir[..], sar[..];
       float64 median[4][nsrc]  (SDR, ISR, SIR, SAR: museval's TrackStore aggregate,
                                 +-inf -> NaN, then numpy.nanmedian over frames)

--json: evaluates the first case of IN with museval and stores it in museval's TrackStore
(win = window / RATE, hop = hop / RATE seconds, targets NAME...), validates OURS.json (our
per-track file) against musdb.schema.json and checks it holds the same names, times,
durations and quantized metrics (NaN where museval has NaN). Exit status 0 when equal.

museval 0.4.1 catches `np.linalg.linalg.LinAlgError` to fall back to least squares when
the filter system is exactly singular (e.g. dual-mono stems); numpy >= 2 no longer has
`np.linalg.linalg`, so that fallback raises AttributeError. We restore the alias so that
museval's intended fallback (numpy.linalg.lstsq with its default rcond) runs.
"""
import importlib.util
import os
import struct
import sys
import time
import warnings

import numpy as np


def load_metrics():
    # `import museval` imports musdb/stempeg (ffmpeg); load only museval/metrics.py.
    spec = importlib.util.find_spec("museval")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("museval_ref.py: museval is not installed for " + sys.executable)
    path = os.path.join(list(spec.submodule_search_locations)[0], "metrics.py")
    mspec = importlib.util.spec_from_file_location("museval_metrics", path)
    m = importlib.util.module_from_spec(mspec)
    mspec.loader.exec_module(m)
    return m


def load_aggregate():
    # museval.aggregate does `import museval` (musdb, stempeg, ffmpeg): give it a bare
    # package module whose __path__ is museval's directory instead.
    import types

    spec = importlib.util.find_spec("museval")
    pkg = types.ModuleType("museval")
    pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["museval"] = pkg
    return importlib.import_module("museval.aggregate")


def read_cases(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"TFBSSIN1":
        sys.exit("museval_ref.py: %s is not a TFBSSIN1 file" % path)
    (ncases,) = struct.unpack_from("<i", data, 8)
    off = 12
    for _ in range(ncases):
        nsrc, nchan, window, hop, flen, _z, nsampl = struct.unpack_from("<6iq", data, off)
        off += 32
        n = nsrc * nchan * nsampl
        ref = np.frombuffer(data, "<f4", n, off).reshape(nsrc, nchan, nsampl)
        off += 4 * n
        est = np.frombuffer(data, "<f4", n, off).reshape(nsrc, nchan, nsampl)
        off += 4 * n
        # museval layout (nsrc, nsampl, nchan), float64 as soundfile would give
        ref = np.ascontiguousarray(ref.transpose(0, 2, 1), dtype=np.float64)
        est = np.ascontiguousarray(est.transpose(0, 2, 1), dtype=np.float64)
        yield ref, est, window, hop, flen


def run_bss_eval(m, ref, est, window, hop, flen):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        sdr, isr, sir, sar, _ = m.bss_eval(
            ref,
            est,
            window=window,
            hop=hop,
            compute_permutation=False,
            filters_len=flen,
            framewise_filters=False,
            bsseval_sources_version=False,
        )
        return sdr, isr, sir, sar, time.perf_counter() - t0


def check_json(m, args):
    import math

    import simplejson
    from jsonschema import validate

    inp, ours_path, rate, names = args[0], args[1], float(args[2]), args[3:]
    agg = load_aggregate()
    ref, est, window, hop, flen = next(read_cases(inp))
    sdr, isr, sir, sar, _ = run_bss_eval(m, ref, est, window, hop, flen)
    store = agg.TrackStore(track_name="t", win=window / rate, hop=hop / rate)
    for i, name in enumerate(names):
        values = {
            "SDR": sdr[i].tolist(),
            "SIR": sir[i].tolist(),
            "ISR": isr[i].tolist(),
            "SAR": sar[i].tolist(),
        }
        store.add_target(target_name=name, values=values)
    theirs = simplejson.loads(store.json, allow_nan=True, use_decimal=True)
    with open(ours_path) as f:
        ours = simplejson.loads(f.read(), allow_nan=True, use_decimal=True)
    validate(ours, store.schema)
    bad = []

    def same(a, b, where):
        if isinstance(a, dict) and isinstance(b, dict):
            if list(a.keys()) != list(b.keys()):
                bad.append("%s: keys %s vs %s" % (where, list(a), list(b)))
                return
            for k in a:
                same(a[k], b[k], where + "." + k)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                bad.append("%s: length %d vs %d" % (where, len(a), len(b)))
                return
            for i, (x, y) in enumerate(zip(a, b)):
                same(x, y, "%s[%d]" % (where, i))
        elif isinstance(a, str) or isinstance(b, str):
            if a != b:
                bad.append("%s: %r vs %r" % (where, a, b))
        else:
            fa, fb = float(a), float(b)
            if not ((math.isnan(fa) and math.isnan(fb)) or (fa == fb and str(a) == str(b))):
                bad.append("%s: %s vs %s" % (where, a, b))

    same(ours, theirs, "$")
    if bad:
        sys.exit("museval_ref.py --json: differences:\n" + "\n".join(bad[:20]))


def main():
    if not hasattr(np.linalg, "linalg"):
        np.linalg.linalg = np.linalg
    if len(sys.argv) >= 6 and sys.argv[1] == "--json":
        check_json(load_metrics(), sys.argv[2:])
        return
    if len(sys.argv) != 3:
        sys.exit("usage: museval_ref.py IN OUT | --json IN OURS.json RATE NAME...")
    m = load_metrics()
    cases = list(read_cases(sys.argv[1]))
    out = [b"TFBSSOU1", struct.pack("<i", len(cases))]
    for ref, est, window, hop, flen in cases:
        nsrc = ref.shape[0]
        sdr, isr, sir, sar, secs = run_bss_eval(m, ref, est, window, hop, flen)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            med = []
            for x in (sdr, isr, sir, sar):
                x = np.where(np.isinf(x), np.nan, x)
                med.append(
                    [np.nanmedian(r) if np.any(~np.isnan(r)) else np.nan for r in x]
                )
        nwin = sdr.shape[1]
        out.append(struct.pack("<iid", nsrc, nwin, secs))
        for x in (sdr, isr, sir, sar):
            out.append(np.asarray(x, dtype="<f8").tobytes())
        out.append(np.asarray(med, dtype="<f8").tobytes())
    with open(sys.argv[2], "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
