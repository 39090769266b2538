"""Does fine-tuning the shipped restorer on real cameras help an unseen real camera? Leave-one-device-out.

Issue 25's diagnosis found that the model misreads what phones leave of their sensor noise, and that the
generator's phone steps do not reproduce it (docs/model.md). This experiment trains on real cameras instead,
in the manner of Zeng et al.'s extractor (a correlation loss against camera fingerprints), with the one
training engine (:func:`spnrestore.model.train.train`) and a data source of real JPEGs (:class:`RealSource`):

* **Targets.** Per camera the images (natural images in capture order, then flat fields) are cut into two
  halves, and each half's images take their target from the other half's fingerprint: ``I * K`` with a ``K``
  estimated without the image, whose own noise is independent of the target's. A target from a
  fingerprint of 5-20 images is noisy, but its noise is independent of the input, so the correlation loss
  (the engine's ``corr``) still pulls towards the camera's term.
* **Examples.** Each image is written as the workflow's JPEG copies at ``--qualities``; of each copy the plain
  residual (the workflow's) and the target are computed on the whole image, then ``--patches`` patches of
  ``--patch`` px are cut on the 8 px grid (the JPEG blocks stay aligned). Every tenth patch of each camera is
  kept for validation (the step kept is the engine's choice on them, with the non-match guard on).
* **Folds.** For each camera whose plain fingerprint identifies its own images (the other half's PCE above
  the threshold in median; the others are neither trained on nor counted), the shipped model is fine-tuned on
  the other usable cameras only and tested on the held-out one, with the protocol of
  ``bench/published_extractor.py`` (fingerprint from the flat fields, else from the first half; tested on the
  other natural images at every quality). Methods: ``plain``, ``shipped``, ``fused`` and the fold's model
  alone (``real``) and fused with plain (``real_fused``).

    python bench/real_finetune.py /tmp/realcrop/drive/Images/Original --out /tmp/rft [--steps 150]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from published_extractor import report, score
from scene_residue import Residuals, images_of
from spnrestore.jpeg import decode_rgb, encode_jpeg, read_rgb
from spnrestore.methods.models import fused_compute, model_compute
from spnrestore.methods.registry import MODEL, Method, register, registered
from spnrestore.model.data import batch_scales
from spnrestore.model.sources import Examples, with_other
from spnrestore.model.train import train
from spnrestore.model.train_config import resolve_config
from spnrestore.spn import residual_settings
from spnrestore.spn.detection import pce
from spnrestore.spn.fingerprint import estimate_fingerprint, fingerprint_term
from spnrestore.spn.residual import extract_residual
from spnrestore.spn.roc import PCE_THRESHOLD

SIGMA = 5.0
ROOT = Path(__file__).resolve().parents[1]
VAL_EVERY = 10  # every tenth patch of a camera validates


def halves(cam: Path) -> tuple[list[Path], list[Path]]:
    """The camera's images in two halves (natural images in capture order, then flat fields, each cut in two)."""
    natural = images_of(cam)
    flat = images_of(cam / "flat") if (cam / "flat").is_dir() else []
    a = natural[:len(natural) // 2] + flat[:len(flat) // 2]
    b = natural[len(natural) // 2:] + flat[len(flat) // 2:]
    return a, b


def fingerprint(paths: list[Path]) -> np.ndarray:
    return estimate_fingerprint((read_rgb(p) for p in paths), SIGMA, names=[p.name for p in paths])


def camera_examples(cam: Path, qualities: list[int], patch: int, per_version: int, seed: int,
                    cache: Path) -> dict:
    """The training examples of one camera (cached): arrays ``rgb``, ``residual``, ``target``, ``quality``,
    and ``own_pce``: the median plain PCE of half B's natural images against half A's fingerprint."""
    key = hashlib.sha256(json.dumps([str(cam.resolve()), qualities, patch, per_version, seed, SIGMA]).encode())
    path = cache / f"{cam.name}-{key.hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path) as data:
            return dict(data)
    a, b = halves(cam)
    Ka, Kb = fingerprint(a), fingerprint(b)
    natural_b = [p for p in b if p.parent == cam]
    own = [pce(extract_residual(rgb, SIGMA), fingerprint_term(Ka, rgb)) for rgb in map(read_rgb, natural_b)]
    rng = np.random.default_rng([seed, int(hashlib.sha256(cam.name.encode()).hexdigest()[:8], 16)])
    out = {"rgb": [], "residual": [], "target": [], "quality": []}
    for image, K in [(p, Kb) for p in a] + [(p, Ka) for p in b]:
        rgb = read_rgb(image)
        h, w = rgb.shape[:2]
        for q in qualities:
            version = decode_rgb(encode_jpeg(rgb, q))
            w_plain = extract_residual(version, SIGMA)
            term = fingerprint_term(K, version)
            ys = rng.integers(0, (h - patch) // 8 + 1, per_version) * 8
            xs = rng.integers(0, (w - patch) // 8 + 1, per_version) * 8
            for y, x in zip(ys, xs):
                out["rgb"].append(version[y:y + patch, x:x + patch].transpose(2, 0, 1))
                out["residual"].append(w_plain[None, y:y + patch, x:x + patch])
                out["target"].append(term[None, y:y + patch, x:x + patch])
                out["quality"].append(q)
    arrays = {k: np.ascontiguousarray(np.stack(v)) for k, v in out.items()}
    arrays["rgb"] = arrays["rgb"].astype(np.uint8)
    arrays["residual"] = arrays["residual"].astype(np.float32)
    arrays["target"] = arrays["target"].astype(np.float32)
    arrays["quality"] = arrays["quality"].astype(np.int64)
    arrays["own_pce"] = np.array(float(np.median(own)))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.rename(path)
    return arrays


class RealSource:
    """Real cameras' patches with fingerprint targets, in memory (see the module's description): a data
    source of the one training engine (:class:`spnrestore.model.sources.DataSource`). Step ``s`` trains on a
    batch drawn with the seed and ``s``; validation is every tenth patch of each camera, in turns across
    cameras, so that each example's non-match term (the one before it) is another camera's."""

    where = "real cameras"
    nonmatch_guard = True

    def __init__(self, per_camera: Mapping[str, dict], patch: int):
        self.cameras, self._patch = sorted(per_camera), patch
        train_parts, val_parts = [], []
        for name in self.cameras:
            arrays = {k: torch.from_numpy(per_camera[name][k]) for k in ("rgb", "residual", "target", "quality")}
            n = len(arrays["quality"])
            val = torch.arange(0, n, VAL_EVERY)
            keep = torch.ones(n, dtype=torch.bool)
            keep[val] = False
            train_parts.append({k: v[keep] for k, v in arrays.items()})
            val_parts.append({k: v[val] for k, v in arrays.items()})
        self.train_arrays = {k: torch.cat([p[k] for p in train_parts]) for k in train_parts[0]}
        turns = min(len(p["quality"]) for p in val_parts)  # round-robin across cameras
        self.val_arrays = {k: torch.stack([p[k][:turns] for p in val_parts], 1).flatten(0, 1)
                           for k in val_parts[0]}

    def open(self, cfg: Mapping, device: torch.device) -> None:
        self.cfg, self.device = cfg, device

    @property
    def patch(self) -> int:
        return self._patch

    @property
    def train_examples(self) -> None:
        return None

    @property
    def val_set(self) -> Examples:
        return Examples(with_other(self.val_arrays))

    def describe(self) -> str:
        return (f"real cameras {', '.join(self.cameras)}: {len(self.train_arrays['quality'])} train and "
                f"{len(self.val_arrays['quality'])} val patches of {self._patch} px")

    def identity(self) -> dict:
        return {"real_cameras": self.cameras}

    def record(self) -> dict:
        return {"real_finetune": {"cameras": self.cameras, "patch": self._patch}}

    def train_batches(self, start: int, stop: int):
        n, size = len(self.train_arrays["quality"]), self.cfg["batch_size"]
        for step in range(start, stop):
            idx = torch.from_numpy(np.random.default_rng([self.cfg["seed"], step]).choice(n, size, replace=False))
            yield with_other({k: v[idx] for k, v in self.train_arrays.items()})

    def val_batches(self):
        return self.val_set.batches(self.cfg["batch_size"])

    def filter_batches(self):
        raise RuntimeError("real_finetune starts from the shipped model (init: pretrained): its block filter is kept")

    def scales(self, prefilter: Callable | None) -> tuple[float, float]:
        sample = {k: v[:1024] for k, v in self.train_arrays.items()}
        return batch_scales([sample], prefilter, self.where)

    def image_validation(self, sigma):
        return None


def fold_settings(steps: int, lr: float, seed: int) -> dict:
    """The phone fine-tune's settings (config/pretrain-phone.yaml: from the shipped model, correlation loss)
    with the fold's steps, learning rate and seed; validation every quarter of the run."""
    import yaml

    cfg = yaml.safe_load((ROOT / "config" / "pretrain-phone.yaml").read_text())
    cfg.update(steps=steps, lr=lr, seed=seed, warmup_steps=max(1, steps // 10), val_every=max(1, steps // 4),
               checkpoint_every=max(1, steps // 4), num_workers=0, progress=False)
    return resolve_config(cfg)


def fold_method(name: str, checkpoint: Path, fused: bool) -> str:
    if name not in registered():
        compute = fused_compute(str(checkpoint)) if fused else model_compute(str(checkpoint))
        register(Method(name, "real fine-tune" + (", fused with plain" if fused else ""), MODEL, compute,
                        str(checkpoint)))
    return name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("originals", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="work folder (examples, fold models)")
    parser.add_argument("--qualities", nargs="*", type=int, default=[30, 50, 70, 90],
                        help="JPEG qualities of the training copies")
    parser.add_argument("--eval-qualities", nargs="*", default=["90", "60", "30"])
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--patches", type=int, default=16, help="patches per image and quality")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--min-pce", type=float, default=PCE_THRESHOLD,
                        help="a camera is usable when its halves' plain PCE is above this in median")
    parser.add_argument("--cameras", nargs="*", default=None, help="held-out cameras to run (default: every usable)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    cams = sorted(p for p in args.originals.iterdir() if p.is_dir())
    examples = {}
    for cam in cams:
        examples[cam.name] = camera_examples(cam, args.qualities, args.patch, args.patches, args.seed,
                                             args.out / "examples")
        print(f"{cam.name}: {len(examples[cam.name]['quality'])} patches, halves' plain PCE "
              f"{float(examples[cam.name]['own_pce']):.0f}", file=sys.stderr, flush=True)
    usable = [name for name, e in examples.items() if float(e["own_pce"]) > args.min_pce]
    print(f"usable (trained on and held out): {', '.join(usable)}", file=sys.stderr)
    tables = []
    for held in args.cameras or usable:
        fold = args.out / f"fold-{held}"
        model = fold / "restorer.pt"
        if not model.exists():
            source = RealSource({n: examples[n] for n in usable if n != held}, args.patch)
            train(source, model, fold, fold_settings(args.steps, args.lr, args.seed),
                  residual=residual_settings(SIGMA))
        methods = {"plain": "plain", "shipped": "shipped", "fused": "fused",
                   "real": fold_method(f"real-{held}", model, False),
                   "real_fused": fold_method(f"real_fused-{held}", model, True)}
        res = Residuals(fold / "residuals", methods)  # a fold's own: its model's residuals are keyed by name
        tables.append(score(args.originals, args.eval_qualities, res, list(methods), only=held))
        print(f"fold {held}: done", file=sys.stderr, flush=True)
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(args.out / "pairs.csv", index=False)
    report(table, list(methods), usable)
    return 0


if __name__ == "__main__":
    sys.exit(main())
