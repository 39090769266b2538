"""Training throughput and whole-image inference time of the restoration GAN.

Prints a markdown table. Rows:

* train steps/s of the generator alone with the correlation loss (baseline) and of the full GAN step
  (correlation + LF + VGG-16 HF + adversarial, discriminator update), at 128 x 128, for the default and
  the tiny model, fed by the real memory-mapped shard DataLoader; the ratio column is full / baseline;
* the share of wall time the host waits for the next batch ("data wait"); on CUDA the share of wall time
  inside the steps on the GPU timeline (CUDA events around each step: the rest is the GPU waiting for
  data) and the share spent executing kernels (profiler, 5 extra steps: the rest is launch overhead and
  data); plus the full step on a batch already on the GPU (no data loading) as the loader's reference;
* restoring a whole image (default 6000 x 4000 = 24 MP), against extracting its plain residual
  (``spn.extract_residual``, CPU) in the same process.

The VGG-16 weights are random tensors of the real layout (same compute as the ImageNet file).
Synthetic shards are written to a temporary folder. Usage::

    python bench/bench_train.py [--steps 30] [--batch 32] [--workers 4] [--models default,tiny]
                                [--infer 6000x4000] [--device auto] [--compile] [--threads N]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spnrestore import spn
from spnrestore.atomic import save_npy
from spnrestore.dataset.shard_format import FINGERPRINT_TABLE, FLOAT_DTYPE, PACKED_RGB, pack_patches
from spnrestore.model.checkpoint import model_payload, save_checkpoint
from spnrestore.model.networks import Generator, GeneratorConfig, count_parameters
from spnrestore.model.device import pick_device
from spnrestore.model.inference import load_restorer, restore_residual
from spnrestore.model.train import Trainer
from spnrestore.model.train_config import resolve_config
from spnrestore.model.vgg import DEFAULT_LAYERS, VGG16Features


def write_shards(root: Path, n: int, patch: int, shard: int = 256) -> None:
    """Random training pairs in the shard layout (:mod:`spnrestore.dataset.shard_format`; one camera: a train
    split of ``n`` examples, a small val split): the pixels packed, the targets computed on read from two
    random fingerprints, as training reads the shards the workflow writes."""
    rng = np.random.default_rng(0)
    rows = []
    for split, count in (("train", n), ("val", shard)):
        camera = root / split / "cam0"
        (camera / "fingerprints").mkdir(parents=True)
        prints = [f"fingerprints/{k:04d}.npy" for k in range(2)]
        for name in prints:
            save_npy(camera / name, (0.01 * rng.standard_normal((patch, patch))).astype(np.float32))
        table = pd.DataFrame({"camera": ["cam0", "cam1"], "path": prints, "in_folder": [1, 1]})
        table.to_csv(camera / FINGERPRINT_TABLE, index=False)
        first = len(rows)
        for s, start in enumerate(range(0, count, shard)):
            m = min(shard, count - start)
            folder = camera / f"shard-{s:05d}"
            folder.mkdir()
            pixels = pack_patches(rng.integers(0, 256, (m, 3, patch, patch), dtype=np.uint8))
            for name, array in zip(PACKED_RGB, pixels):
                save_npy(folder / f"{name}.npy", array)
            save_npy(folder / "residual.npy", (3.0 * rng.standard_normal((m, 1, patch, patch))).astype(FLOAT_DTYPE))
            save_npy(folder / "quality.npy", rng.choice(np.array([30, 60], np.uint8), m))
            save_npy(folder / "corner.npy", np.zeros((m, 2), np.int32))
            save_npy(folder / "prints.npy", np.tile(np.array([[0, 1]], np.uint16), (m, 1)))
            rows += [(split, f"cam0/{folder.name}", i) for i in range(m)]
        pd.DataFrame(rows[first:], columns=["split", "shard", "index"]).to_csv(camera / "manifest.csv", index=False)
    pd.DataFrame(rows, columns=["split", "shard", "index"]).to_csv(root / "manifest.csv", index=False)


def vgg_file(root: Path) -> tuple[str, str]:
    """Random VGG-16 feature weights with the torchvision layout, and their SHA-256."""
    torch.manual_seed(0)
    path = root / "vgg16-random.pth"
    torch.save({k: torch.randn(v.shape) * 0.02 for k, v in VGG16Features(DEFAULT_LAYERS).state_dict().items()}, path)
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def kernel_fraction(trainer: Trainer, batch: dict, steps: int, first: int) -> float:
    """Fraction of wall time the GPU spends executing kernels and copies over ``steps`` steps (profiler)."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for i in range(steps):
            trainer.train_step(batch, first + i)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    device_us = sum(e.self_device_time_total for e in prof.key_averages()
                    if e.device_type == torch.autograd.DeviceType.CUDA)  # kernels and copies, not the ops above them
    return device_us / 1e6 / wall


def time_steps(trainer: Trainer, steps: int, warmup: int, on_gpu_batch: bool) -> dict:
    """Run warmup + steps training steps: throughput, host time waiting for batches and, on CUDA, the
    share of wall time inside the steps on the GPU timeline (CUDA events) and executing kernels (profiler)."""
    cfg = trainer.cfg
    it = iter(trainer.source.train_batches(0, warmup + steps))  # the shards' DataLoader, as training reads them
    cuda = trainer.cuda
    fixed = None
    if on_gpu_batch:
        fixed = {k: v.to(trainer.device) for k, v in next(it).items()}
    events, wait = [], 0.0
    for i in range(warmup + steps):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            start, wait, events = time.perf_counter(), 0.0, []
        t0 = time.perf_counter()
        batch = fixed if fixed is not None else next(it)
        wait += time.perf_counter() - t0
        if cuda:
            events.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
            events[-1][0].record()
        trainer.train_step(batch, i)
        if cuda:
            events[-1][1].record()
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    busy = sum(a.elapsed_time(b) for a, b in events) / 1000 / wall if cuda else None
    kernels = kernel_fraction(trainer, batch, 5, warmup + steps) if cuda else None
    return {"patches_s": steps * cfg["batch_size"] / wall, "busy": busy, "kernels": kernels, "wait": wait / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--models", default="default,tiny")
    ap.add_argument("--infer", default="6000x4000", help="WxH of the inference image, or 'none'")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--rows", default="012", help="training rows: 0 G only, 1 full step, 2 full step on a GPU batch")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = args.batch * (args.steps + args.warmup + 2)  # every timed example is read from the shards once
        write_shards(tmp / "data", n, args.patch)
        vgg, digest = vgg_file(tmp)
        models = {"default": GeneratorConfig(), "tiny": GeneratorConfig.tiny()}
        for name in args.models.split(","):
            model = models[name].as_dict()
            base = dict(model=model, batch_size=args.batch, num_workers=args.workers, device=args.device,
                        compile=args.compile, progress=False, vgg_weights=vgg, vgg_sha256=digest, adv_start_step=0,
                        threads=args.threads)
            variants = [("G only, corr loss", dict(base, loss_weights={"corr": 1, "lf": 0, "hf": 0, "adv": 0}), False),
                        ("full GAN step", base, False), ("full GAN step, batch already on GPU", base, True)]
            device = str(pick_device(args.device))
            variants = [v for i, v in enumerate(variants) if str(i) in args.rows and (device != "cpu" or i < 2)]
            baseline = None
            for label, cfg, on_gpu in variants:
                trainer = Trainer(tmp / "data", tmp / f"w-{name}-{len(rows)}", resolve_config(cfg))
                r = time_steps(trainer, args.steps, args.warmup, on_gpu)
                baseline = baseline or r["patches_s"]
                rows.append({"what": f"train: {label}", "device": device,
                             "model": f"{name} ({count_parameters(trainer.G) / 1e6:.2f} M)",
                             "batch": f"{args.batch} x {args.patch}²", "result": f"{r['patches_s']:.1f} patches/s",
                             "ratio": f"{r['patches_s'] / baseline:.2f}",
                             "GPU in step": "-" if r["busy"] is None else f"{100 * r['busy']:.0f}%",
                             "GPU kernels": "-" if r["kernels"] is None else f"{100 * r['kernels']:.0f}%",
                             "data wait": f"{100 * r['wait']:.0f}%"})
                del trainer
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        if args.infer != "none":
            w, h = (int(v) for v in args.infer.lower().split("x"))
            rng = np.random.default_rng(1)
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            t0 = time.perf_counter()
            residual = spn.extract_residual(rgb)
            t_res = time.perf_counter() - t0
            save_checkpoint(tmp / "m.pt", model_payload(Generator(GeneratorConfig())))
            restorer = load_restorer(tmp / "m.pt", None if args.device == "auto" else args.device)
            restore_residual(restorer, rgb[:512, :512], residual[:512, :512], 30)  # warm-up
            if restorer.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            restore_residual(restorer, rgb, residual, 30, batch=8 if restorer.device.type == "cuda" else 1)
            t_rest = time.perf_counter() - t0
            mp = w * h / 1e6
            rows.append({"what": f"restore whole image {w}x{h} ({mp:.0f} MP), tile 512, overlap 32",
                         "device": str(restorer.device), "model": "default", "batch": "-",
                         "result": f"{t_rest:.2f} s ({t_rest / mp:.3f} s/MP)",
                         "ratio": f"{t_rest / t_res:.2f} x extract_residual ({t_res:.2f} s, CPU)",
                         "GPU in step": "-", "GPU kernels": "-", "data wait": "-"})
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    """A markdown table of dictionaries sharing the same keys."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
