"""Benchmark: PRNU residual extraction, reference-style (pywt + scipy) vs the fast path, one core.

Prints a table per image size: seconds per megapixel on ONE core (cv2, BLAS and
scipy.fft limited to one thread, and the process pinned to one CPU), the
speed-up, NCC between the two residuals, peak extra memory in bytes per pixel
(tracemalloc, i.e. numpy/cv2 arrays), a per-step breakdown of the fast path,
and the timings of adding a 24 MP image to a fingerprint, finalizing it, PCE
and NCC.

    python bench/bench_residual.py                    # 24 MP (4000x6000) and 1.5 MP
    python bench/bench_residual.py --sizes 1000x1500 --repeat 5
    python bench/bench_residual.py --skip-reference   # fast path only (no PyWavelets needed)

Timings are the minimum over --repeat runs (the machine may be shared); the
first (cold) run is shown separately: it pays page faults of fresh memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def one_core():
    import cv2

    cv2.setNumThreads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # BLAS is not used by the fast path; scipy.fft runs with workers=1
        pass
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned"


def natural_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A natural-looking uint8 RGB test image: a skimage sample scaled up, plus sensor-like noise."""
    import cv2

    try:
        from skimage import data

        base = data.astronaut()
    except Exception:  # no scikit-image: smooth random texture
        rng = np.random.default_rng(seed)
        base = cv2.GaussianBlur(rng.integers(0, 256, (256, 256, 3)).astype(np.uint8), (0, 0), 3)
    big = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    rng = np.random.default_rng(seed)
    big += rng.normal(0, 2.0, big.shape).astype(np.float32)
    return np.clip(big, 0, 255).astype(np.uint8)


def reference_style_residual(im: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """The usual pure Python implementation (prnu-python's extract_single, with db4):
    pywt wavedec2/waverec2 on float32, scipy uniform_filter for each window, numpy fft2."""
    import pywt
    from scipy.ndimage import uniform_filter

    def wiener_adaptive(x, noise_var):
        energy = x**2
        avg = np.zeros(x.shape + (4,))
        for i, ws in enumerate((3, 5, 7, 9)):
            avg[:, :, i] = uniform_filter(energy, ws, mode="constant")
        v = np.min((avg - noise_var + np.abs(avg - noise_var)) / 2, axis=2)
        return x * noise_var / (v + noise_var)

    im = im.astype(np.float32)
    w = np.zeros(im.shape, np.float32)
    for ch in range(im.shape[2]):
        c = pywt.wavedec2(im[:, :, ch], "db4", level=4)
        c[0][...] = 0
        c[1:] = [tuple(wiener_adaptive(b, sigma**2) for b in lev) for lev in c[1:]]
        w[:, :, ch] = pywt.waverec2(c, "db4")[: im.shape[0], : im.shape[1]]
    g = (w.reshape(-1, 3) @ np.float32([0.29893602, 0.58704307, 0.11402090])).reshape(im.shape[:2])
    for a in (0, 1):
        for b in (0, 1):
            v = g[a::2, b::2]
            v -= v.mean()
            v -= v.mean(axis=1, keepdims=True)
            v -= v.mean(axis=0, keepdims=True)
    s = g.std(ddof=1)
    f = np.fft.fft2(g)
    mag = np.abs(f / np.sqrt(g.size))
    magf = wiener_adaptive(mag, s**2)
    zero = mag == 0
    mag[zero] = 1
    magf[zero] = 0
    return np.real(np.fft.ifft2(f * magf / mag)).astype(np.float32)


CLOCK = time.perf_counter  # --cpu-time switches to time.process_time (excludes time preempted on a busy machine)


def timed(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        out = None
        t = CLOCK()
        out = fn()
        times.append(CLOCK() - t)
    return out, times


def peak_bytes(fn) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def breakdown(img, sigma=5.0):
    """Seconds of each step of the fast path (one warm run), following extract_residual."""
    import scipy.fft as sfft

    from spnrestore.spn._checks import as_image, check_not_constant
    from spnrestore.spn.residual import _std_from_spectrum, _wiener_spectrum, _zero_mean_spectrum, irfft2
    from spnrestore.spn.wavelet_denoise import GRAY_WEIGHTS, denoise_image

    steps = {}
    t = CLOCK()
    a = as_image(img)
    check_not_constant(a, "image")
    steps["input checks (dtype, size, constant)"] = CLOCK() - t
    t = CLOCK()
    w = denoise_image(a, sigma, weights=GRAY_WEIGHTS)[0]
    steps["wavelet: 3 x (4-level DWT + window rule), 1 inverse DWT"] = CLOCK() - t
    h, wd = w.shape
    t = CLOCK()
    F = sfft.rfft2(w, workers=1, overwrite_x=True)
    steps["rfft2"] = CLOCK() - t
    t = CLOCK()
    _zero_mean_spectrum(F, wd)
    std = _std_from_spectrum(F, wd)
    steps["zero-mean (on the spectrum) + std (Parseval)"] = CLOCK() - t
    t = CLOCK()
    _wiener_spectrum(F, wd, std)
    steps["Wiener window rule on the half spectrum"] = CLOCK() - t
    t = CLOCK()
    irfft2(F, wd)
    steps["irfft2 (ifft axis 0 in place + irfft axis 1)"] = CLOCK() - t
    return steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4000x6000,1000x1500", help="HxW list (default: 24 MP and 1.5 MP)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-reference", action="store_true", help="do not time the pywt/scipy implementation")
    ap.add_argument("--skip-fingerprint", action="store_true")
    ap.add_argument("--cpu-time", action="store_true",
                    help="measure process CPU time instead of wall time (for a machine shared with other jobs)")
    args = ap.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    pin = one_core()
    from spnrestore.spn import (
        FingerprintAccumulator,
        extract_residual,
        fingerprint_term,
        ncc,
        pce,
    )

    clock = "process CPU time" if args.cpu_time else "wall time"
    print(f"one core ({pin}); cv2, BLAS and scipy.fft single-threaded; {clock}, min of {args.repeat} runs")
    rows = []
    for size in args.sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        mp = h * w / 1e6
        img = natural_image(h, w)
        extract_residual(img[:256, :256])  # warm-up of code paths
        fast, t_fast = timed(lambda: extract_residual(img), args.repeat)
        mem_fast = peak_bytes(lambda: extract_residual(img)) / (h * w)
        row = {"size": f"{h}x{w}", "mp": mp, "fast": min(t_fast), "fast_cold": t_fast[0], "mem_fast": mem_fast}
        if not args.skip_reference:
            refr, t_ref = timed(lambda: reference_style_residual(img), 1)
            row["ref"] = min(t_ref)
            row["ncc"] = ncc(fast, refr)
            del refr
        rows.append(row)
        steps = breakdown(img)
        print(f"\n{h}x{w} ({mp:.1f} MP) fast path, per step (warm run):")
        for k, v in steps.items():
            print(f"  {k:58s} {v:7.3f} s  {v / mp * 1000:6.1f} ms/MP")
        print(f"  {'total (min of runs)':58s} {min(t_fast):7.3f} s  {min(t_fast) / mp * 1000:6.1f} ms/MP")
        print(f"  all runs: {', '.join(f'{t / mp * 1000:.1f}' for t in t_fast)} ms/MP")
    print("\n| size | MP | reference s/MP | fast s/MP (min) | fast s/MP (first run) | speed-up | NCC | peak B/px |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref = f"{r['ref'] / r['mp']:.3f}" if "ref" in r else "-"
        sp = f"{r['ref'] / r['fast']:.1f}x" if "ref" in r else "-"
        nc = f"{r['ncc']:.6f}" if "ncc" in r else "-"
        print(f"| {r['size']} | {r['mp']:.1f} | {ref} | {r['fast'] / r['mp']:.4f} | {r['fast_cold'] / r['mp']:.4f} | "
              f"{sp} | {nc} | {r['mem_fast']:.1f} |")

    if args.skip_fingerprint:
        return 0
    h, w = (int(v) for v in args.sizes.split(",")[0].lower().split("x"))
    mp = h * w / 1e6
    imgs = [natural_image(h, w, seed=s) for s in (1, 2)]
    acc = FingerprintAccumulator()
    acc.add(imgs[0])  # allocates the running sums
    _, t_add = timed(lambda: acc.add(imgs[1]), args.repeat)
    k, t_fin = timed(acc.finalize, 1)
    res = extract_residual(imgs[0])
    term, t_term = timed(lambda: fingerprint_term(k, imgs[0]), args.repeat)
    _, t_pce = timed(lambda: pce(res, term), args.repeat)
    _, t_ncc = timed(lambda: ncc(res, term), args.repeat)
    mem_pce = peak_bytes(lambda: pce(res, term)) / (h * w)
    print(f"\nfingerprint / detection on {h}x{w} ({mp:.1f} MP), one core:")
    print("| operation | seconds | ms/MP |")
    print("|---|---|---|")
    for name, t in [("FingerprintAccumulator.add (per image)", min(t_add)), ("finalize", min(t_fin)),
                    ("fingerprint_term", min(t_term)), ("pce (zero shift)", min(t_pce)), ("ncc", min(t_ncc))]:
        print(f"| {name} | {t:.3f} | {t / mp * 1000:.1f} |")
    print(f"accumulator state: {2 * 8 * 3 * h * w / 1e9:.2f} GB (float64 sums); pce peak extra memory "
          f"{mem_pce:.1f} B/px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
