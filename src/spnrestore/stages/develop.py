"""Rule ``develop``, one batch of originals: develop each RAW once (or load a developed original: camera
JPEG, TIFF, PNG), write every JPEG quality and score the residual of the uncompressed image against every
fingerprint while it is in memory (the images that are scored only: not those that build fingerprints, which
the fingerprint rule develops again, nor those of a camera without fingerprint). The residual itself is
stored only when asked (``keep_original``: the ``original_residual`` training target, or
``storage.keep_residuals``).

Called by ``workflow/scripts/develop.py``. The batch table it writes (one row
per image: metadata, status, reason) is the job's tracked output; the manifest
rule concatenates the tables of all batches.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..atomic import save_csv
from ..errors import BadImageError
from ..jpeg import write_jpeg
from ..originals import load_original
from ..paths import ORIGINAL, DrivePaths
from ..residual_files import save_residual
from ..spn import check_image, extract_residual, rgb2gray
from .roles import UNSCORED_ROLES
from .scorer import SCORE_TABLE_COLUMNS, fingerprint_scorer, load_fingerprints

logger = logging.getLogger(__name__)

INTEGER_COLUMNS = ["width", "height", "orientation", "source_quality"]
TABLE_COLUMNS = ["camera", "image", "path", "format", "batch", "role", "status", "reason",
                 "width", "height", "make", "model", "raw_pattern", "orientation", "source_quality"]


def read_develop_table(path: str | os.PathLike) -> pd.DataFrame:
    """A develop batch table with its column types (names stay text, sizes nullable integers).

    ``source_quality``: estimated quality of a camera JPEG original (empty for RAW, TIFF and PNG
    originals); its copies at each quality are then double-compressed.
    """
    text = {c: str for c in ("camera", "image", "path", "format", "batch", "role", "status", "reason",
                             "make", "model", "raw_pattern")}
    frame = pd.read_csv(path, dtype={**text, **{c: "Int64" for c in INTEGER_COLUMNS}}, keep_default_na=False,
                        na_values={c: [""] for c in INTEGER_COLUMNS})
    return frame


def ok_images(table: str | os.PathLike) -> pd.DataFrame:
    """Rows of a develop batch table whose original developed correctly."""
    frame = read_develop_table(table)
    return frame[frame["status"] == "ok"]


def gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """Gray intensity (the residual's colour weights) of uint8 RGB, rounded to uint8 H x W."""
    return np.clip(np.rint(rgb2gray(rgb.astype(np.float32))), 0, 255).astype(np.uint8)


def develop_batch(
    images: Iterable[Mapping],
    drive: DrivePaths | Mapping,
    qualities: Iterable[int],
    develop_settings: Mapping,
    subsampling: str,
    on_bad_image: str,
    sigma: float,
    table: str | os.PathLike,
    storage: Mapping | None = None,
    cameras: Iterable[str] = (),
    scores_table: str | os.PathLike | None = None,
    keep_original: bool = True,
) -> pd.DataFrame:
    """Develop (RAW) or load (JPEG, TIFF, PNG) each image of a batch, write its JPEGs at every quality and
    score the residual of the development against the fingerprints of ``cameras``.

    Args:
        images: mappings with keys camera, image, path, format, batch, role.
        drive: the drive's paths (:class:`~spnrestore.paths.DrivePaths`, or its ``as_dict``): JPEGs and
            residuals of the developments (``SPN/<camera>/original/<image>.npy``, with ``keep_original``) are
            written there; the fingerprints are read from there.
        qualities: JPEG qualities.
        develop_settings: the ``develop`` config section (RAW originals).
        subsampling: chroma subsampling, "420", "422" or "444".
        on_bad_image: "skip" records a bad original in the table and goes on; "fail" raises.
        sigma: noise standard deviation of the residual's wavelet denoiser (0..255 units).
        table: CSV written (atomically) at the end, one row per image.
        storage: the ``storage`` config section (residual precision, previews; None: float32 with preview).
        cameras: the cameras with a fingerprint; ``scores_table``: where the scores of the developments go (CSV,
            the columns of the score rule's table, quality ``original``); None scores nothing.
        keep_original: store the residuals of the developments (of the scored images).
    """
    drive = DrivePaths.of(drive)
    images = list(images)
    scored_any = scores_table is not None and any(i["role"] not in UNSCORED_ROLES for i in images)
    score = fingerprint_scorer(load_fingerprints(drive, cameras)) if scored_any else None
    rows, scores = [], []
    for item in images:
        row = {k: item[k] for k in ("camera", "image", "path", "format", "batch", "role")}
        try:
            developed = load_original(item["path"], item["format"], develop_settings)
            scored = item["role"] not in UNSCORED_ROLES
            if scored:
                residual = extract_residual(developed.rgb, sigma=sigma, name=item["path"])
            else:  # the same checks, so that the table's status does not depend on the role
                check_image(developed.rgb, name=item["path"])
        except BadImageError as exc:
            if on_bad_image == "fail":
                raise
            logger.warning(f"skipped: {exc}")
            rows.append({**row, "status": "skipped", "reason": exc.problem})
            continue
        for quality in qualities:
            write_jpeg(drive.jpeg(item["camera"], quality, item["image"]), developed.rgb, quality, subsampling)
        if scored and keep_original:
            save_residual(drive.residual(item["camera"], ORIGINAL, item["image"]), residual, storage)
        if scored and score is not None:
            # the term K * I with I the development's gray rounded to 8 bits, as the original was always scored
            for found in score(residual, gray_uint8(developed.rgb), f"{item['path']} (development)"):
                scores.append({"camera": item["camera"], "image": item["image"], "role": item["role"],
                               "quality": ORIGINAL, **found, "match": found["fingerprint"] == item["camera"]})
        height, width = developed.rgb.shape[:2]
        rows.append({**row, "status": "ok", "reason": "", "width": width, "height": height,
                     "make": developed.make, "model": developed.model,
                     "raw_pattern": developed.raw_pattern, "orientation": developed.orientation,
                     "source_quality": developed.source_quality})
        source = f"pattern {developed.raw_pattern}" if developed.raw_pattern else f"{item['format']} original"
        logger.info(f"developed {item['path']} ({width}x{height}, {source}, orientation tag {developed.orientation})")
    if scores_table is not None:
        save_csv(scores_table, pd.DataFrame(scores, columns=SCORE_TABLE_COLUMNS))
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({c: "Int64" for c in INTEGER_COLUMNS})
    save_csv(table, frame)
    return frame
