"""The shipped model's fine-tune on real cameras, judged leave-one-device-out.

The shipped restorer is its synthetic base fine-tuned on the real cameras of the development set
(``config/pretrain-real.yaml``; data: :mod:`spnrestore.dataset.real`, :class:`spnrestore.model.sources.RealSource`).
A model trained on every device has no honest figure on those devices; this script gives the figures a camera
the model never saw would get. For each camera whose plain fingerprint identifies its own images (the others
are neither trained on nor counted), the synthetic base is fine-tuned with the recipe's settings on the other
usable cameras only and tested on the held-out one, with the protocol of ``bench/published_extractor.py``
(fingerprint from the flat fields, else from the first half of the natural images; tested on the other natural
images as the workflow's JPEG copies). Methods: ``plain``, ``synthetic`` (the base), ``shipped``, ``fused``
and the fold's model alone (``real``) and fused with plain (``real_fused``); ``shipped`` and ``fused`` saw the
held-out camera in training, ``real`` and ``real_fused`` did not.

    python bench/real_finetune.py /tmp/realcrop/drive/Images/Original --out /tmp/rft
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

from published_extractor import report, score
from scene_residue import Residuals
from spnrestore.config import load_yaml
from spnrestore.methods.models import fused_compute, model_compute
from spnrestore.methods.registry import MODEL, Method, register, registered
from spnrestore.model.sources import RealSource, real_examples
from spnrestore.model.train import train
from spnrestore.model.train_config import resolve_config
from spnrestore.spn import residual_settings

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "config" / "pretrain-real.yaml"  # the shipped model's fine-tune: every fold uses its settings


def fold_settings(folder: Path, steps: int | None, lr: float | None, seed: int | None,
                  synthetic_share: float | None) -> dict:
    """The shipped model's fine-tune settings (config/pretrain-real.yaml: from the synthetic base, correlation
    loss) on the cameras of ``folder``, with the steps, learning rate, seed and synthetic share given (None keeps
    the recipe's)."""
    cfg = load_yaml(RECIPE)
    cfg.update({k: v for k, v in (("steps", steps), ("lr", lr), ("seed", seed)) if v is not None})
    real = {**cfg.get("real", {}), "folder": str(folder)}
    cfg["real"] = real if synthetic_share is None else {**real, "synthetic_share": synthetic_share}
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
    parser.add_argument("--eval-qualities", nargs="*", default=["90", "60", "30"])
    parser.add_argument("--steps", type=int, help="optimiser steps (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--seed", type=int, help="seed (default: the recipe's)")
    parser.add_argument("--synthetic-share", type=float, help="real.synthetic_share (default: the recipe's)")
    parser.add_argument("--compare", nargs="*", default=["plain", "synthetic", "shipped", "fused"],
                        help="methods scored beside the folds' models (plain at least)")
    parser.add_argument("--cameras", nargs="*", default=None, help="held-out cameras to run (default: every usable)")
    args = parser.parse_args(argv)
    cfg = fold_settings(args.originals, args.steps, args.lr, args.seed, args.synthetic_share)
    torch.set_num_threads(cfg["threads"] or 2)
    examples, usable = real_examples(cfg, args.out / "examples")
    for name, arrays in examples.items():
        print(f"{name}: {len(arrays.get('quality', []))} patches, halves' plain PCE {float(arrays['own_pce']):.0f}",
              file=sys.stderr, flush=True)
    print(f"usable (trained on and held out): {', '.join(usable)}", file=sys.stderr)
    tables = []
    for held in args.cameras or usable:
        fold = args.out / f"fold-{held}"
        model = fold / "restorer.pt"
        if not model.exists():
            source = RealSource.from_config(cfg, {n: examples[n] for n in usable if n != held})
            train(source, model, fold, cfg, residual=residual_settings(cfg["synthetic"]["sigma"]))
        methods = {**{m: m for m in ["plain", *args.compare]},
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
