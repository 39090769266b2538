"""Benchmark: batched PRNU residuals with torch (spnrestore.spn.torch_residual), in MP/s.

    python bench/bench_residual_torch.py                       # cuda if available, else cpu
    python bench/bench_residual_torch.py --device cpu --size 1000x1500 --batch 2
    python bench/bench_residual_torch.py --size 4000x6000 --batch 4 --check

Times the whole call (upload of the uint8 batch, residuals, synchronisation),
minimum over --repeat runs after one warm-up; --check compares one image with
the CPU fast path (NCC). Target on one H100: >= 100 MP/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main(argv=None):
    import torch

    from bench_residual import natural_image  # same test images as the CPU benchmark
    from spnrestore.spn.torch_residual import TorchResidual

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="4000x6000", help="HxW (default 24 MP)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="compare image 0 with the CPU path (NCC)")
    args = ap.parse_args(argv)
    h, w = (int(v) for v in args.size.lower().split("x"))
    base = [natural_image(h, w, seed=s) for s in range(min(args.batch, 2))]
    batch = np.stack([base[i % len(base)] for i in range(args.batch)])
    dev = torch.device(args.device)
    pinned = torch.from_numpy(batch)
    if dev.type == "cuda":
        pinned = pinned.pin_memory()
    tr = TorchResidual(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def run():
        out = tr(pinned)
        sync()
        return out

    out = run()  # warm-up (cuDNN algorithm choice, allocator)
    times = []
    for _ in range(args.repeat):
        del out
        t = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t)
    mp = args.batch * h * w / 1e6
    best = min(times)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"device {name}; batch {args.batch} x {h}x{w} ({mp:.1f} MP); torch {torch.__version__}")
    print(f"runs: {', '.join(f'{t:.3f}' for t in times)} s; best {best:.3f} s -> {mp / best:.1f} MP/s "
          f"({best / mp * 1000:.2f} ms/MP)")
    if dev.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(dev) / 1e9:.1f} GB "
              f"({torch.cuda.max_memory_allocated(dev) / (args.batch * h * w):.0f} B/px)")
    if args.check:
        from spnrestore.spn import extract_residual, ncc

        cpu = extract_residual(batch[0])
        print(f"NCC(torch, CPU fast path) image 0: {ncc(out[0].cpu().numpy(), cpu):.6f}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
