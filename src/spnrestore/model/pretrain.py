"""Pretraining of the restorer: the models shipped with the package (:mod:`.pretrained`).

Not a loop of its own: the one training engine (:func:`.train.train`, :class:`.train.Trainer`) on a data
source, with a training configuration of the one schema (``training_schema.yaml``, validated by
:func:`.train_config.resolve_config`): the synthetic-sensor stream (:class:`.sources.SyntheticSource`: a new
camera per example, exact PRNU targets; the ``synthetic`` section), or, with ``real.folder`` set, real
cameras' JPEGs with fingerprint targets (:class:`.sources.RealSource`; the ``real`` section). The shipped
model is made by two recipes in turn, its synthetic base, then the fine-tune on real cameras::

    spnrestore pretrain --settings config/pretrain.yaml -o OUT          # the synthetic base (synthetic.pt)
    spnrestore pretrain --settings config/pretrain-real.yaml -o OUT     # the shipped model (restorer.pt)

``OUT`` is also the work folder (``last.pt``, ``best.pt``, ``train_log.csv``, ``val_log.csv``): a killed run
resumes from it, as a drive's training does. Validation (step 0 included: the block filter alone, or with
``init`` the model started from) is on a fixed set of other new sensors; the step kept is the one with the
highest mean NCC with the exact target over it, and a run that never beats step 0 keeps step 0 and says so.
The stream is a function of the seed (and the batch size), so runs with the same seed see the same data:
generators are compared by separate runs (``--set``, :func:`.train_config.with_overrides`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from ..spn import residual_settings
from .sources import SyntheticSource, real_source
from .train import train
from .train_config import resolve_config

#: The selected model's file in the output folder (the shipped model is this file of the shipped run).
MODEL_FILE = "restorer.pt"


def pretrain(out_dir: str | os.PathLike, settings: Mapping | None = None) -> dict:
    """Train the restorer with the training ``settings`` (``training_schema.yaml``) on synthetic sensors, or on
    the real cameras of ``real.folder`` when it is set (their examples kept in ``<out_dir>/real-examples``);
    writes ``<out_dir>/restorer.pt`` (:data:`MODEL_FILE`, recording the data's settings as ``pretrain`` or
    ``real`` and the residual's as ``residual``) and the work files beside it; returns the training metrics."""
    cfg = resolve_config(settings)
    out_dir = Path(out_dir)
    if cfg["real"]["folder"]:
        source = real_source(cfg, out_dir / "real-examples")
        # the checkpoint records the folder's name, not a path of the machine that trained (the cameras are
        # recorded by name too): a shipped model carries no path
        cfg = {**cfg, "real": {**cfg["real"], "folder": Path(cfg["real"]["folder"]).resolve().name}}
    else:
        source = SyntheticSource(cfg)
    return train(source, out_dir / MODEL_FILE, out_dir, cfg, residual=residual_settings(cfg["synthetic"]["sigma"]))
