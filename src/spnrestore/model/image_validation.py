"""Whole-image validation of the restorer: PCE of restored validation images against every fingerprint.

The mean NCC of validation patches does not see one image whose restored
residual correlates with the fingerprint of a camera it does not come from
(invented evidence, docs/model.md). This validation restores whole validation
JPEGs (a centred crop of at most ``crop`` px a side, on the JPEG grid) with the
model being trained and scores each against the fingerprint of every camera of
the same sensor size, as identification does; the plain residuals are scored once.

A checkpoint is *eligible* when its largest non-match PCE over all validation
pairs stays within ``margin`` (relative) of the plain residual's on the same
pairs and below the decision threshold; eligible checkpoints rank by
:func:`pce_gain`, the mean over validation JPEGs of ``log2`` of the ratio of
their match PCE (restored over plain, each floored at 1).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from ..errors import SpnRestoreError
from ..jpeg import read_rgb
from ..residual_files import load_residual
from ..spn import extract_residual, score_residual

logger = logging.getLogger(__name__)

SCORE_COLUMNS = ["camera", "image", "quality", "fingerprint", "match", "pce"]
RestoreFn = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


def crop_window(shape: tuple[int, int], crop: int) -> tuple[slice, slice]:
    """Centred window of at most ``crop`` px a side of an image of ``shape`` (H, W), its origin a multiple
    of 8 so the crop keeps the JPEG block grid."""
    def axis(n: int) -> slice:
        size = min(n, crop)
        start = (n - size) // 2 // 8 * 8
        return slice(start, start + size)
    return axis(shape[0]), axis(shape[1])


@dataclass
class ValidationImage:
    """One validation JPEG's crop: ``rgb`` uint8 (h, w, 3), plain ``residual`` float32 (h, w)."""

    camera: str
    image: str
    quality: int
    rgb: np.ndarray
    residual: np.ndarray
    shape: tuple[int, int]  # full image size (H, W), the key of its fingerprint crops


class ImageValidation:
    """Validation images and the crops of the fingerprints they are scored against.

    ``fingerprint_crops[shape][camera]``: float32 crop of camera's fingerprint for images of ``shape``.
    ``plain``: the plain residuals' scores (SCORE_COLUMNS), computed once.
    """

    def __init__(self, images: list[ValidationImage], fingerprint_crops: dict[tuple, dict[str, np.ndarray]]):
        self.images, self.fingerprint_crops = images, fingerprint_crops
        self.plain = self.scores(lambda rgb, residual, quality: residual)

    def __len__(self) -> int:
        return len(self.images)

    def scores(self, restore: RestoreFn) -> pd.DataFrame:
        """PCE of ``restore(rgb, residual, quality)`` of every image against every fingerprint of its size, by
        the scoring of identification (:func:`spnrestore.spn.score_residual`; NCC is not needed here)."""
        rows = []
        for item in self.images:
            restored = restore(item.rgb, item.residual, item.quality)
            for score in score_residual(restored, item.rgb, self.fingerprint_crops[item.shape],
                                        with_ncc=False):
                rows.append((item.camera, item.image, item.quality, score["fingerprint"],
                             score["fingerprint"] == item.camera, score["pce"]))
        return pd.DataFrame(rows, columns=SCORE_COLUMNS)

    def summary(self, restored: pd.DataFrame, threshold: float, margin: float) -> dict:
        """Validation-row fields comparing ``restored`` scores with the plain ones: per quality the median
        match PCE (``pce_plain_q<Q>``, ``pce_restored_q<Q>``), over all pairs the largest non-match PCE
        (``pce_nonmatch_plain``, ``pce_nonmatch_restored``), ``pce_gain`` and ``pce_eligible``."""
        row: dict = {"pce_pairs": int(len(restored))}
        for name, frame in (("plain", self.plain), ("restored", restored)):
            miss = frame.loc[~frame["match"], "pce"]
            row[f"pce_nonmatch_{name}"] = float(miss.max()) if len(miss) else float("nan")
            for q, median in frame[frame["match"]].groupby("quality")["pce"].median().items():
                row[f"pce_{name}_q{q}"] = float(median)
        row["pce_gain"] = pce_gain(self.plain, restored)
        limit = min(threshold, row["pce_nonmatch_plain"] * (1 + margin))
        row["pce_eligible"] = bool(not row["pce_nonmatch_restored"] > limit)  # no non-match pair: eligible
        return row


def pce_gain(plain: pd.DataFrame, restored: pd.DataFrame) -> float:
    """Mean over validation JPEGs of ``log2(max(1, match PCE restored) / max(1, match PCE plain))``: 0 for the
    identity, 1 when every image's evidence doubles; an image whose evidence the model destroys costs as
    much as another's doubling gains (a median would not see it). nan without match pairs."""
    keys = ["camera", "image", "quality"]
    pair = plain[plain["match"]].merge(restored[restored["match"]], on=keys, suffixes=("_plain", "_restored"))
    ratio = np.log2(pair["pce_restored"].clip(lower=1.0) / pair["pce_plain"].clip(lower=1.0))
    return float(ratio.mean()) if len(ratio) else float("nan")


def load_image_validation(
    val_manifest: pd.DataFrame,
    fingerprints: Mapping[str, str | os.PathLike],
    per_camera: int,
    crop: int,
    sigma: float | None = None,
) -> ImageValidation | None:
    """Validation images of the val split's manifest rows (patch rows with columns camera, image, quality,
    jpeg, residual): the first ``per_camera`` images of each camera (every quality of each), cropped. The
    residual is read from the row's file, or computed from the JPEG with ``sigma`` where the row names none
    (the drive does not keep the JPEGs' residuals).
    ``fingerprints``: fingerprint ``.npy`` by camera (every camera with one, seen in training or not).
    Returns None when there is no image or no fingerprint to score against."""
    if val_manifest.empty or not fingerprints or per_camera <= 0:
        return None
    items = val_manifest.drop_duplicates(["camera", "image", "quality"]).sort_values(["camera", "image", "quality"])
    chosen = {c: sorted(g["image"].unique())[:per_camera] for c, g in items.groupby("camera")}
    items = items[[image in chosen[camera] for camera, image in zip(items["camera"], items["image"])]]
    arrays = {camera: load_residual(path) for camera, path in fingerprints.items()}
    images, crops = [], {}
    for row in items.itertuples():
        for path in filter(None, (row.jpeg, row.residual)):
            if not Path(path).is_file():
                raise SpnRestoreError(f"{path}: a validation file named in the data set's manifest is missing; "
                                      "re-run the workflow so the data set is rebuilt.")
        rgb = read_rgb(row.jpeg)
        if row.residual:
            residual = load_residual(row.residual)
        elif sigma is None:
            raise SpnRestoreError(f"{row.jpeg}: the data set stores no residual for this validation JPEG and the "
                                  "residual settings (sigma) are unknown; train through the workflow, which "
                                  "records them.")
        else:
            residual = extract_residual(rgb, sigma=sigma, name=row.jpeg)
        shape = residual.shape
        window = crop_window(shape, crop)
        if shape not in crops:
            crops[shape] = {c: np.ascontiguousarray(k[window]) for c, k in arrays.items() if k.shape == shape}
        if row.camera not in crops[shape]:
            logger.warning(f"image validation: {row.jpeg} has no fingerprint of its size {shape}; left out")
            continue
        images.append(ValidationImage(str(row.camera), str(row.image), int(row.quality),
                                      np.ascontiguousarray(rgb[window]), np.ascontiguousarray(residual[window]), shape))
    return ImageValidation(images, crops) if images else None
