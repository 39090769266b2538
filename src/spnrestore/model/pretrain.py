"""Pretraining of the restorer on synthetic sensors: the model shipped with the package (:mod:`.pretrained`).

Not a loop of its own: the one training engine (:func:`.train.train`, :class:`.train.Trainer`) on the
synthetic-sensor source (:class:`.sources.SyntheticSource`: a new camera per example, exact PRNU targets),
with a training configuration of the one schema (``training_schema.yaml``: its ``synthetic`` section for
the generator, the engine's keys for the rest; validated by :func:`.train_config.resolve_config`).
``config/pretrain.yaml`` holds the shipped recipe::

    spnrestore pretrain --settings config/pretrain.yaml -o OUT      # OUT/restorer.pt: the selected model

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
from .sources import SyntheticSource
from .train import train
from .train_config import resolve_config

#: The selected model's file in the output folder (the shipped model is this file of the shipped run).
MODEL_FILE = "restorer.pt"


def pretrain(out_dir: str | os.PathLike, settings: Mapping | None = None) -> dict:
    """Train the restorer on synthetic sensors with the training ``settings`` (``training_schema.yaml``);
    writes ``<out_dir>/restorer.pt`` (:data:`MODEL_FILE`, recording the stream's settings as ``pretrain`` and
    the residual's as ``residual``) and the work files beside it; returns the training metrics."""
    cfg = resolve_config(settings)
    out_dir = Path(out_dir)
    return train(SyntheticSource(cfg), out_dir / MODEL_FILE, out_dir, cfg,
                 residual=residual_settings(cfg["synthetic"]["sigma"]))
