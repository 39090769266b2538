"""Benchmark: scoring residuals against N fingerprints with torch (``spnrestore.spn.torch_scoring``) vs the
numpy ``score_residual``, in pairs (residual, fingerprint) per second. Issue 16 goal: 500 pairs/s at 24 MP on
one H100.

    python bench/bench_score_gpu.py                          # cuda: 4000x6000, 10 fingerprints; cpu: 1000x1500, 4
    python bench/bench_score_gpu.py --device cpu --sizes 1000x1500 --fingerprints 4 --repeat 3
    python bench/bench_score_gpu.py --sizes 4000x6000,3000x4000 --residuals 8

Data (as bench_score.py): float32 random fingerprints, uint8 RGB random images, residuals holding the PRNU
term of one fingerprint each (one match per residual, PCE in the thousands; the others non-matches).
Paths, in the same process, times the median of --repeat runs after one warm-up (FFT plans, allocator):

* numpy: ``score_residual`` per residual (one core: scipy.fft workers=1), on --numpy-residuals residuals;
* torch score: ``TorchScorer.score`` per residual, numpy inputs (the upload is timed);
* torch batch: ``TorchScorer.score_batch`` of all --residuals, numpy inputs;
* torch batch, resident: the same with residuals and images already on the device (as after
  ``spn.torch_residual``).

The ratio is the best torch path over numpy. Peak device memory: ``torch.cuda.max_memory_allocated`` over
the torch runs (fingerprints included); '-' on CPU. The differences are the torch rows against numpy's
(PCE: ``|d| / max(|PCE|, 60)``; NCC absolute) on the residuals both scored.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spnrestore.spn import fingerprint_term, score_residual  # noqa: E402


def make_data(h, w, n_fps, n_res, seed=0):
    """``n_fps`` fingerprints ``cam00..``, ``n_res`` residuals (residual ``i`` holds the term of camera
    ``i mod n_fps``) and their images."""
    rng = np.random.default_rng(seed)
    fps = {}
    for i in range(n_fps):
        k = rng.standard_normal((h, w), dtype=np.float32)
        k *= np.float32(0.02)
        fps[f"cam{i:02d}"] = k
    residuals, images = [], []
    for i in range(n_res):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        residual = fingerprint_term(fps[f"cam{i % n_fps:02d}"], image)
        residual += rng.standard_normal((h, w), dtype=np.float32)
        residuals.append(residual)
        images.append(image)
    return fps, residuals, images


def median_time(fn, repeat, sync):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def differences(rows_a, rows_b):
    assert [r["fingerprint"] for r in rows_a] == [r["fingerprint"] for r in rows_b]
    rel = max(abs(a["pce"] - b["pce"]) / max(abs(a["pce"]), 60.0) for a, b in zip(rows_a, rows_b))
    dn = max(abs(a["ncc"] - b["ncc"]) for a, b in zip(rows_a, rows_b))
    return rel, dn


def main(argv=None):
    import torch

    from spnrestore.model.device import pick_device
    from spnrestore.spn.torch_scoring import TorchScorer

    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:N")
    ap.add_argument("--sizes", default=None, help="HxW list (default: 4000x6000 on cuda, 1000x1500 on cpu)")
    ap.add_argument("--fingerprints", type=int, default=None, help="default: 10 on cuda, 4 on cpu")
    ap.add_argument("--residuals", type=int, default=4, help="residuals per torch run (default 4)")
    ap.add_argument("--numpy-residuals", type=int, default=1, help="residuals per numpy run (default 1)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    dev = pick_device(args.device, "--device")
    on_cuda = dev.type == "cuda"
    sizes = args.sizes or ("4000x6000" if on_cuda else "1000x1500")
    n_fps = args.fingerprints or (10 if on_cuda else 4)
    name = torch.cuda.get_device_name(dev) if on_cuda else f"cpu ({torch.get_num_threads()} torch threads)"

    def sync():
        if on_cuda:
            torch.cuda.synchronize(dev)

    print(f"# bench_score_gpu  {datetime.date.today()}  {platform.processor() or platform.machine()}; "
          f"torch {torch.__version__}, numpy {np.__version__}; cuda available: {cuda}")
    print(f"# device {name}; {n_fps} fingerprints; torch runs {args.residuals} residuals, numpy "
          f"{args.numpy_residuals}; median of {args.repeat} runs after a warm-up")
    print("| device | size | fingerprints | numpy (pairs/s) | torch score (pairs/s) | torch batch (pairs/s) "
          "| torch batch, resident (pairs/s) | best torch / numpy | peak device mem. (GiB) "
          "| max PCE diff / max(abs PCE, 60) | max NCC diff |")
    print("|" + " --- |" * 11)
    for size in sizes.split(","):
        h, w = (int(v) for v in size.lower().split("x"))
        fps, residuals, images = make_data(h, w, n_fps, max(args.residuals, args.numpy_residuals))
        nr, nn = args.residuals, args.numpy_residuals
        t_np, rows_np = median_time(
            lambda: [score_residual(r, i, fps) for r, i in zip(residuals[:nn], images[:nn])],
            args.repeat, lambda: None)
        if on_cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        scorer = TorchScorer(fps, dev)
        res, ims = residuals[:nr], images[:nr]
        single = lambda: [scorer.score(r, i) for r, i in zip(res, ims)]  # noqa: E731
        batch = lambda: scorer.score_batch(res, ims)  # noqa: E731
        res_d = torch.from_numpy(np.stack(res)).to(dev)
        ims_d = torch.from_numpy(np.stack(ims)).to(dev)
        resident = lambda: scorer.score_batch(res_d, ims_d)  # noqa: E731
        rates, outs = [], []
        for fn in (single, batch, resident):
            fn()  # warm-up
            t, out = median_time(fn, args.repeat, sync)
            rates.append(nr * n_fps / t)
            outs.append(out)
        peak = f"{torch.cuda.max_memory_allocated(dev) / 2**30:.1f}" if on_cuda else "-"
        diffs = [differences(a, b) for out in outs for a, b in zip(rows_np, out)]
        rel, dn = max(d[0] for d in diffs), max(d[1] for d in diffs)
        numpy_rate = nn * n_fps / t_np
        print(f"| {name} | {h}x{w} ({h * w / 1e6:.1f} MP) | {n_fps} | {numpy_rate:.1f} | {rates[0]:.1f} "
              f"| {rates[1]:.1f} | {rates[2]:.1f} | {max(rates) / numpy_rate:.2f}x | {peak} | {rel:.1e} "
              f"| {dn:.1e} |", flush=True)
        del scorer, res_d, ims_d, fps, residuals, images
    return 0


if __name__ == "__main__":
    sys.exit(main())
