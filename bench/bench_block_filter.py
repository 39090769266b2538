"""Benchmark: the restorer's block filter (fit on training patches, apply to a whole image) against the
residual extraction it follows, in the same process on CPU.

Prints the seconds to fit the filter on N synthetic 128 x 128 patches, and the seconds per megapixel to
apply it to a whole image beside ``extract_residual`` on the same image (the ratio is what matters:
the filter must stay a small fraction of the residual's cost).

    python bench/bench_block_filter.py                 # 24 MP image, 4,000 patches
    python bench/bench_block_filter.py --size 3000x4000 --patches 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spnrestore.model.block_filter import BlockFilter  # noqa: E402
from spnrestore.spn import extract_residual  # noqa: E402


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def patches(n: int, chunk: int = 256, seed: int = 0):
    """``n`` random training examples (128 x 128) in batches, re-iterable."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for start in range(0, n, chunk):
        b = min(chunk, n - start)
        batches.append({"rgb": torch.randint(0, 256, (b, 3, 128, 128), generator=g, dtype=torch.uint8),
                        "residual": torch.randn(b, 1, 128, 128, generator=g),
                        "target": torch.randn(b, 1, 128, 128, generator=g),
                        "quality": torch.tensor([30, 60, 90])[torch.randint(0, 3, (b,), generator=g)]})
    return batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="4000x6000", help="image height x width (default 24 MP)")
    ap.add_argument("--patches", type=int, default=4000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    h, w = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mp = h * w / 1e6

    block_filter = BlockFilter(10)
    data = patches(args.patches)
    fit_s = best_of(1, lambda: block_filter.fit(data))
    residual = extract_residual(rgb)
    t_rgb = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255.0)
    t_res = torch.from_numpy(residual)[None, None]
    with torch.inference_mode():
        apply_s = best_of(args.repeat, lambda: block_filter(t_rgb, t_res, torch.tensor([30])))
    residual_s = best_of(args.repeat, lambda: extract_residual(rgb))
    print(f"CPU, {args.threads} thread(s), torch {torch.__version__}")
    print("| figure | value |")
    print("| --- | ---: |")
    print(f"| fit on {args.patches:,} patches of 128 x 128 (s) | {fit_s:.2f} |")
    print(f"| fit per 1,000 patches (s) | {1000 * fit_s / args.patches:.2f} |")
    print(f"| apply, per MP ({h}x{w}) (s) | {apply_s / mp:.4f} |")
    print(f"| extract_residual, per MP, same image (s) | {residual_s / mp:.4f} |")
    print(f"| apply / extract_residual | {apply_s / residual_s:.2f} |")


if __name__ == "__main__":
    main()
