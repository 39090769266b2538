"""Benchmark: whole-image restoration of a 24 MP image on a GPU with each checkpoint given (bf16 autocast, the
inference path of spnrestore.model.whole_image), seconds per image after one warm-up.

    python bench/bench_restore_gpu.py OUT/small.pt OUT/default.pt [--size 4000x6000 --repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spnrestore.model.inference import load_restorer, restore_residual  # noqa: E402
from spnrestore.model.networks import count_parameters  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--size", default="4000x6000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    h, w = map(int, args.size.split("x"))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    residual = rng.normal(0, 2, (h, w)).astype(np.float32)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"restore_residual, {h}x{w} ({h * w / 1e6:.1f} MP), {name}, median of {args.repeat} after a warm-up")
    print(f"{'checkpoint':<28} {'parameters':>10} {'s/image':>8} {'MP/s':>7}")
    for path in args.checkpoints:
        r = load_restorer(path, args.device)
        restore_residual(r, rgb, residual, 30)
        times = []
        for _ in range(args.repeat):
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            restore_residual(r, rgb, residual, 30)
            times.append(time.perf_counter() - start)
        t = float(np.median(times))
        print(f"{Path(path).name:<28} {count_parameters(r.model):>10,} {t:>8.2f} {h * w / 1e6 / t:>7.1f}")


if __name__ == "__main__":
    main()
