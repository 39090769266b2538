"""Benchmark: scoring one residual against N fingerprints (issue 16), today's loop vs ``score_residual``, one core.

The baseline is what ``score_residual`` did before issue 16, written out below (:func:`baseline_scores`):
per fingerprint ``pce(w, fingerprint_term(k, image))`` (two forward real FFTs, one inverse, the energy of
the whole correlation plane) and ``ncc(w, term)``. The new path computes the residual's spectrum once and,
per fingerprint, one real FFT of the term, Parseval for the energy and an 11 x 11 partial inverse DFT.

Data: a float32 random residual containing the PRNU term of the first fingerprint (one match, PCE in the
thousands; the others are non-matches), float32 random fingerprints, a uint8 RGB random image.

    python bench/bench_score.py                         # 24 MP (4000x6000) and 6 MP (2000x3000), 10 fingerprints
    python bench/bench_score.py --sizes 2000x3000 --fingerprints 4 --repeat 5
    python bench/bench_score.py --turned                 # also a turned shot (fingerprints transposed)

One core: BLAS/OpenMP limited to one thread (environment and threadpoolctl), cv2 to one thread, scipy.fft
runs with workers=1, the process is pinned to one CPU. Times are the median of --repeat runs of each path,
alternating, in the same process; the ratio is baseline / new. Peak memory: the highest tracemalloc
(numpy arrays) above the inputs during one extra, untimed run of each path.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bench_residual import one_core  # noqa: E402  (one thread and one CPU, as the residual benchmark)
from spnrestore.spn import fingerprint_term, ncc, pce, score_residual  # noqa: E402


def baseline_scores(residual, image, fingerprints, with_ncc=True):
    """``score_residual`` before issue 16: per fingerprint (and quarter turn) ``pce`` and ``ncc`` of the
    residual against ``fingerprint_term(k, image)``."""
    rows = []
    for camera, k in fingerprints.items():
        if k.shape not in (residual.shape, residual.shape[::-1]):
            continue
        turns = (0,) if k.shape == residual.shape else (1, -1)
        best = None
        for turn in turns:
            w, term = np.rot90(residual, turn), fingerprint_term(k, np.rot90(image, turn))
            value = float(pce(w, term))
            if best is None or value > best[0]:
                best = (value, float(ncc(w, term)) if with_ncc else float("nan"), turn)
        rows.append({"fingerprint": camera, "pce": best[0], "ncc": best[1]})
    return rows


def make_data(h, w, n, turned, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    fps = {}
    for i in range(n):
        k = rng.standard_normal((h, w), dtype=np.float32)
        k *= np.float32(0.02)
        fps[f"cam{i:02d}"] = k
    residual = fingerprint_term(fps["cam00"], image)
    residual += rng.standard_normal((h, w), dtype=np.float32)
    if turned:  # a shot turned by the camera: its residual and image are the transpose of the sensor's
        residual = np.ascontiguousarray(np.rot90(residual, -1))
        image = np.ascontiguousarray(np.rot90(image, -1))
    return residual, image, fps


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def peak_memory(fn) -> float:
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def compare(rows_a, rows_b):
    assert [r["fingerprint"] for r in rows_a] == [r["fingerprint"] for r in rows_b]
    rel = max(abs(a["pce"] - b["pce"]) / max(abs(a["pce"]), 1.0) for a, b in zip(rows_a, rows_b))
    dn = max(abs(a["ncc"] - b["ncc"]) for a, b in zip(rows_a, rows_b))
    return rel, dn


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4000x6000,2000x3000", help="HxW list (default: 24 MP and 6 MP)")
    ap.add_argument("--fingerprints", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--turned", action="store_true", help="also score turned shots (transposed fingerprints)")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    args = ap.parse_args(argv)
    pinned = one_core()
    print(f"# bench_score  {datetime.date.today()}  {platform.processor() or platform.machine()}  "
          f"{os.cpu_count()} CPUs, {pinned}; numpy {np.__version__}")
    print(f"# {args.fingerprints} fingerprints, median of {args.repeat} runs, one core")
    header = ("| case | baseline (s) | new (s) | speed-up | per fingerprint, baseline / new (s) "
              "| max rel. PCE diff | max NCC diff | peak mem. baseline / new (MiB) |")
    print(header)
    print("|" + " --- |" * 8)
    cases = [(s, False) for s in args.sizes.split(",")]
    if args.turned:
        cases += [(s, True) for s in args.sizes.split(",")]
    for size, turned in cases:
        h, w = (int(v) for v in size.lower().split("x"))
        residual, image, fps = make_data(h, w, args.fingerprints, turned)
        base_t, new_t = [], []
        for _ in range(args.repeat):
            t, rows_a = timed(lambda: baseline_scores(residual, image, fps))
            base_t.append(t)
            t, rows_b = timed(lambda: score_residual(residual, image, fps))
            new_t.append(t)
        rel, dn = compare(rows_a, rows_b)
        tb, tn = statistics.median(base_t), statistics.median(new_t)
        if args.no_memory:
            mem = "-"
        else:
            mb = peak_memory(lambda: baseline_scores(residual, image, fps))
            mn = peak_memory(lambda: score_residual(residual, image, fps))
            mem = f"{mb:.0f} / {mn:.0f}"
        name = f"{h}x{w} ({h * w / 1e6:.0f} MP){', turned' if turned else ''}"
        n = len(rows_b)
        print(f"| {name} | {tb:.2f} | {tn:.2f} | {tb / tn:.2f}x | {tb / n:.3f} / {tn / n:.3f} | {rel:.1e} "
              f"| {dn:.1e} | {mem} |", flush=True)
        print(f"#   runs baseline {[round(t, 2) for t in base_t]}, new {[round(t, 2) for t in new_t]}; "
              f"match PCE {rows_b[0]['pce']:.1f}, non-match max |PCE| "
              f"{max(abs(r['pce']) for r in rows_b[1:]) if n > 1 else float('nan'):.2f}", flush=True)
        del residual, image, fps


if __name__ == "__main__":
    main()
