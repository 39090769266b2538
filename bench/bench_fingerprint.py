"""Benchmark: adding one image to a camera fingerprint (FingerprintAccumulator.add), one core (issue 16).

Prints seconds per add (minimum over --repeat, after one warm-up add that pays the page faults of the
running sums) and where they go: the three per-channel residuals as the add computes them
(``denoise_image(..., split_cols=True, gemm=True)``: per channel a 4-level wavelet analysis with the
adaptive Wiener shrinkage, then an inverse transform), split into analyses and inverse transforms by also
timing the gray residual (three analyses, one inverse transform); the adaptive Wiener window rule alone
(the shrinkage of every detail band, in the analysis's strips); and the rest (IntenScale, saturation
mask, running sums). One core: cv2.setNumThreads(1),
OMP/MKL/OPENBLAS threads 1, the process pinned to one CPU. The goal of issue 16 is 0.4 s at 24 MP.

    python bench/bench_fingerprint.py                      # 24 MP (4000x6000), 3 repeats
    python bench/bench_fingerprint.py --sizes 1000x1500 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_residual import natural_image, one_core  # noqa: E402

GOAL_S = 0.4


def shots(h: int, w: int, n: int) -> list[np.ndarray]:
    """``n`` natural-looking uint8 RGB shots of one scene with independent noise."""
    base = natural_image(h, w).astype(np.int16)
    return [np.clip(base + np.random.default_rng(i + 1).integers(-4, 5, base.shape, dtype=np.int16), 0, 255)
            .astype(np.uint8) for i in range(n)]


def best(fn, args_list) -> float:
    """Minimum CPU seconds of ``fn(*args)`` over ``args_list`` (the first call, a warm-up, not counted)."""
    times = []
    for args in args_list:
        start = time.process_time()
        fn(*args)
        times.append(time.process_time() - start)
    return min(times[1:])


def band_sizes(h: int, w: int) -> list[tuple[int, int, int]]:
    """(rows, columns, input width) of the detail bands of every level of the transform of an h x w image."""
    from spnrestore.spn import wavelet_denoise as wd

    f = wd.filters()
    return [(f.ncoef(lh), f.ncoef(lw), lw) for lh, lw in wd._level_sizes((h, w), f, wd.LEVELS)]


def window_rule(bands) -> None:
    """The adaptive Wiener shrinkage of the 3 detail bands of 3 channels at every level, in the strips of
    the analysis (halo rows included). ``bands``: one (band, destination, input width) per level."""
    from spnrestore.spn import wavelet_denoise as wd

    r = max(wd.WINDOWS) // 2
    f = wd.filters()
    for band, dst, lw in bands:
        nr = band.shape[0]
        step = max(wd._ANALYSIS_ROWS, wd._strip_rows(2 * (lw + 2 * f.flen), 16))
        for _ in range(9):  # 3 bands x 3 channels
            for o0 in range(0, nr, step):
                o1 = min(nr, o0 + step)
                a, b = max(0, o0 - r), min(nr, o1 + r)
                wd._shrink_into(band[a:b], o0 - a, o1 - a, 25.0, wd.WINDOWS, 1.0, dst[o0:o1], False)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=["4000x6000"], help="H x W of the images")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls of each (after one warm-up)")
    args = ap.parse_args(argv)
    pinned = one_core()

    from spnrestore.spn import FingerprintAccumulator
    from spnrestore.spn.wavelet_denoise import GRAY_WEIGHTS, denoise_image

    print(f"# FingerprintAccumulator.add, one core ({pinned}); CPU seconds, minimum of {args.repeat}")
    print("| image | add | 3 residuals | of which 3 analyses | (of which window rule) | 3 inverse transforms | rest "
          "| goal | add / goal |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in args.sizes:
        h, w = map(int, size.lower().split("x"))
        images = shots(h, w, args.repeat + 1)
        acc, ws = FingerprintAccumulator(), {}
        add = best(acc.add, [(img,) for img in images])
        three = best(lambda im: denoise_image(im, 5.0, workspace=ws, split_cols=True, gemm=True),
                     [(img,) for img in images])
        gray = best(lambda im: denoise_image(im, 5.0, weights=GRAY_WEIGHTS, workspace=ws, gemm=True),
                    [(img,) for img in images])
        synthesis = max(0.0, (three - gray) / 2)
        rng = np.random.default_rng(0)
        bands = [(rng.normal(0, 6, (nr, nc)).astype(np.float32), np.empty((nr, nc), np.float32), lw)
                 for nr, nc, lw in band_sizes(h, w)]
        rule = best(window_rule, [(bands,)] * len(images))
        goal = GOAL_S * h * w / 24e6
        print(f"| {h}x{w} ({h * w / 1e6:.1f} MP) | {add:.3f} | {three:.3f} | {gray - synthesis:.3f} | ({rule:.3f}) | "
              f"{3 * synthesis:.3f} | {add - three:.3f} | {goal:.2f} | {add / goal:.2f}x |", flush=True)
        del acc, ws


if __name__ == "__main__":
    main()
