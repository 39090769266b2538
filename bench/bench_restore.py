"""Benchmark: whole-image restoration on the CPU by the shipped model, torch against OpenVINO, same image, model
and threads in the same run, the runs alternated.

Prints seconds per image and per megapixel for each runtime (each with its default tiles: torch 512 px four at a
time, OpenVINO 1024 px one at a time), the first call apart (OpenVINO converts and compiles the model then), the
ratio of the medians, and how far the outputs differ: their NCC and the NCC of each with the input residual.

    python bench/bench_restore.py                          # 12 MP (3000 x 4000) synthetic image, 2 threads
    python bench/bench_restore.py --image some.jpg --threads 1 --repeat 3
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from spnrestore.jpeg import read_rgb  # noqa: E402
from spnrestore.model.inference import load_restorer, restore_residual  # noqa: E402
from spnrestore.model.pretrained import pretrained_checkpoint  # noqa: E402
from spnrestore.spn import extract_residual  # noqa: E402


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3000x4000", help="H x W of the synthetic image (default 12 MP)")
    parser.add_argument("--image", help="a JPEG to restore instead (its plain residual is the input)")
    parser.add_argument("--quality", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.image:
        rgb = read_rgb(args.image)
        residual = extract_residual(rgb)
    else:
        h, w = map(int, args.size.split("x"))
        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        residual = rng.normal(0, 2, (h, w)).astype(np.float32)
    restorers = {rt: load_restorer(pretrained_checkpoint(), "cpu", runtime=rt) for rt in ("torch", "openvino")}
    first, times, outputs = {}, {rt: [] for rt in restorers}, {}
    for rt, r in restorers.items():
        start = time.perf_counter()
        outputs[rt] = restore_residual(r, rgb, residual, args.quality)
        first[rt] = time.perf_counter() - start
    for _ in range(args.repeat):
        for rt, r in restorers.items():
            start = time.perf_counter()
            restore_residual(r, rgb, residual, args.quality)
            times[rt].append(time.perf_counter() - start)
    mp = residual.size / 1e6
    print(f"restore_residual, {residual.shape[0]}x{residual.shape[1]} ({mp:.1f} MP), shipped model, Q{args.quality}, "
          f"{args.threads} thread(s), median of {args.repeat} after a first call")
    print(f"{'runtime':<9} {'first s':>8} {'s/image':>8} {'s/MP':>6}")
    med = {rt: float(np.median(t)) for rt, t in times.items()}
    for rt in restorers:
        print(f"{rt:<9} {first[rt]:>8.2f} {med[rt]:>8.2f} {med[rt] / mp:>6.3f}")
    print(f"speed-up openvino/torch: {med['torch'] / med['openvino']:.2f}x; NCC(torch, openvino) = "
          f"{ncc(outputs['torch'], outputs['openvino']):.7f}; NCC with the input: torch "
          f"{ncc(outputs['torch'], residual):.5f}, openvino {ncc(outputs['openvino'], residual):.5f}")


if __name__ == "__main__":
    main()
