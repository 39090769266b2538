"""Validation of the model being trained and the choice of the checkpoint kept.

Patches: the NCC of the plain and the restored residual with the target and with another camera's
fingerprint term (:func:`patch_row`). Whole images, when fingerprints are given: the PCE of restored
validation JPEGs against the training cameras' fingerprints (:mod:`.image_validation`, restored by the
whole-image pass of :mod:`.whole_image`; :func:`image_row`). :func:`selection_key` orders the rows.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..dataset.shard_reader import read_manifest
from .image_validation import ImageValidation, load_image_validation
from .networks import Generator
from .whole_image import restore_image

logger = logging.getLogger(__name__)


def patch_row(ncc: Mapping[str, np.ndarray], tolerance_se: float) -> dict:
    """Validation-row fields from per-patch arrays (float64): ``plain`` / ``restored`` NCC with the target,
    ``nm_plain`` / ``nm_restored`` with another camera's term, ``q`` the JPEG quality. ``eligible``: the
    restored residual raises the non-match NCC by at most ``tolerance_se`` standard errors; per quality the
    mean NCC (``ncc_plain_q<Q>``, ``ncc_restored_q<Q>``)."""
    raise_ = ncc["nm_restored"] - ncc["nm_plain"]
    se = float(raise_.std(ddof=1) / math.sqrt(len(raise_))) if len(raise_) > 1 else 0.0
    plain, restored = float(ncc["plain"].mean()), float(ncc["restored"].mean())
    row = {
        "n": int(len(raise_)), "ncc_plain": plain, "ncc_restored": restored, "gain": restored - plain,
        "gain_ratio": restored / plain if plain > 0 else float("nan"),
        "nonmatch_plain": float(ncc["nm_plain"].mean()), "nonmatch_restored": float(ncc["nm_restored"].mean()),
        "nonmatch_raise": float(raise_.mean()), "nonmatch_raise_se": se,
    }
    row["eligible"] = bool(row["nonmatch_raise"] <= tolerance_se * se)
    for q in np.unique(ncc["q"]).astype(int).tolist():
        m = ncc["q"] == q
        row[f"ncc_plain_q{q}"], row[f"ncc_restored_q{q}"] = float(ncc["plain"][m].mean()), float(ncc["restored"][m].mean())
    return row


def load_validation_images(dataset_dir: Path, fingerprints: Mapping[str, str | os.PathLike], cfg: Mapping,
                           sigma: float | None = None) -> ImageValidation | None:
    """Whole validation images of ``dataset_dir``'s val split, scored against the fingerprints of the
    training cameras only (the holdout camera's fingerprint takes no part in training or selection); None
    without fingerprints, val split or images. ``sigma``: the residuals' denoiser setting, for the JPEGs
    whose residual the data set does not store."""
    val = dataset_dir / "val" / "manifest.csv"
    if not fingerprints or not val.exists():
        return None
    trained = set(read_manifest(dataset_dir / "train" / "manifest.csv")["camera"].astype(str))
    found = load_image_validation(read_manifest(val), {c: p for c, p in fingerprints.items() if c in trained},
                                  cfg["val_images_per_camera"], cfg["val_image_crop"], sigma)
    if found is not None:
        logger.info(f"image validation: {len(found)} validation JPEGs (crops of at most {cfg['val_image_crop']} "
                    f"px), {len(found.plain)} pairs with {len(trained)} training cameras' fingerprints")
    return found


def image_row(images: ImageValidation, model: Generator, device: torch.device, cfg: Mapping) -> dict:
    """Validation-row fields of the whole images restored by ``model`` (:meth:`ImageValidation.summary`)."""
    scores = images.scores(lambda rgb, residual, quality: restore_image(model, device, rgb, residual, quality))
    return images.summary(scores, cfg["pce_threshold"], cfg["nonmatch_pce_margin"])


def selection_key(row: Mapping, nonmatch_guard: bool = True) -> tuple:
    """Order of validation rows for the best checkpoint. With whole-image validation (``pce_gain`` in the row):
    first the rows that neither raise the patches' non-match NCC nor widen the images' non-match PCE
    (:mod:`.image_validation`), by PCE gain; the others by the smaller largest non-match PCE. Without it:
    first the rows that do not raise the non-match NCC (raise <= tolerance x its standard error), by NCC
    gain; the others by the smaller raise. ``nonmatch_guard`` False (synthetic sensors, whose every example
    is a new camera: :class:`.sources.SyntheticSource`): by the mean NCC with the exact target alone
    (``ncc_restored``), the non-match fields logged but not used."""
    if not nonmatch_guard:
        return (True, row["ncc_restored"])
    if "pce_gain" in row:
        eligible = row["eligible"] and row["pce_eligible"]
        return (True, row["pce_gain"]) if eligible else (False, -row["pce_nonmatch_restored"])
    return (True, row["gain"]) if row["eligible"] else (False, -row["nonmatch_raise"])
