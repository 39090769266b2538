"""Benchmark: whole-image restoration on the CPU, the model's weights contiguous (the training layout) against
channels-last (the layout inference keeps), one thread, same image and model in the same run.

Prints seconds per image and per megapixel for each layout, the ratio, and the largest difference of the
two outputs (the layout must not change the result).

    python bench/bench_restore.py                   # 8 MP (2448 x 3264), the demo-size model, 3 repeats
    python bench/bench_restore.py --size 4000x6000 --repeat 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spnrestore.model.networks import Generator, GeneratorConfig  # noqa: E402
from spnrestore.model.whole_image import restore_image  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2448x3264", help="H x W of the image (default 8 MP)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    h, w = map(int, args.size.split("x"))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Generator(GeneratorConfig.tiny()).eval()  # the demo's size (config.yaml demo_train.model)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    residual = rng.normal(0, 2, (h, w)).astype(np.float32)
    rows, outputs = [], {}
    for name, fmt in (("contiguous", torch.contiguous_format), ("channels-last", torch.channels_last)):
        model.to(memory_format=fmt)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            outputs[name] = restore_image(model, torch.device("cpu"), rgb, residual, 30)
            times.append(time.perf_counter() - start)
        rows.append((name, float(np.median(times))))
    mp = h * w / 1e6
    print(f"restore_image, {h}x{w} ({mp:.1f} MP), tiny model, 1 thread, median of {args.repeat}")
    print(f"{'layout':<14} {'s/image':>8} {'s/MP':>6}")
    for name, seconds in rows:
        print(f"{name:<14} {seconds:>8.2f} {seconds / mp:>6.3f}")
    print(f"speed-up channels-last: {rows[0][1] / rows[1][1]:.2f}x; largest output difference "
          f"{float(np.abs(outputs['contiguous'] - outputs['channels-last']).max()):.3g}")


if __name__ == "__main__":
    main()
