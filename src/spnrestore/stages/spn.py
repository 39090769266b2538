"""Rules ``residual`` (JPEG residuals per batch), ``fingerprint`` (per camera) and ``score`` (per batch).

Called by the workflow's scripts; each writes its table (CSV) last, atomically,
as the job's tracked output. The ``residual`` rule runs only when the drive keeps the JPEGs' residuals
(``storage.keep_residuals``); otherwise every reader computes them from the JPEG (:func:`jpeg_residual`).
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..atomic import save_csv
from ..errors import BadImageError, SpnRestoreError
from ..jpeg import read_rgb
from ..originals import load_original, original_size
from ..paths import DrivePaths
from ..residual_files import keeps_residuals, load_residual, save_residual
from ..spn import FingerprintAccumulator, extract_residual
from .develop import ok_images
from .roles import UNSCORED_ROLES
from .scorer import SCORE_TABLE_COLUMNS, fingerprint_scorer, load_fingerprints

logger = logging.getLogger(__name__)


def jpeg_residual(
    drive: DrivePaths | Mapping,
    camera: str,
    quality: int,
    image: str,
    sigma: float,
    storage: Mapping | None,
    rgb: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """The residual of one JPEG of the drive and the file it stands for: read back from the drive when the
    ``storage`` settings keep the residuals (the ``residual`` rule wrote it), else computed from the JPEG
    (``rgb`` when the caller has read it already) with the denoiser's ``sigma``, exactly as that rule would
    (:func:`spnrestore.spn.extract_residual`, float32)."""
    drive = DrivePaths.of(drive)
    if keeps_residuals(storage):
        path = drive.residual(camera, quality, image)
        return load_residual(path), str(path)
    source = drive.jpeg(camera, quality, image)
    if rgb is None:
        rgb = read_rgb(source)
    return extract_residual(rgb, sigma=sigma, name=source), str(source)


def residual_batch(
    develop_table: str | os.PathLike,
    drive: DrivePaths | Mapping,
    qualities: Iterable[int],
    sigma: float,
    table: str | os.PathLike,
    storage: Mapping | None = None,
) -> pd.DataFrame:
    """Residual of every JPEG of one batch, at every quality, stored as the ``storage`` config section says
    (:func:`spnrestore.residual_files.save_residual`)."""
    drive = DrivePaths.of(drive)
    rows = []
    for item in ok_images(develop_table).itertuples():
        for quality in qualities:
            source = drive.jpeg(item.camera, quality, item.image)
            residual = extract_residual(read_rgb(source), sigma=sigma, name=source)
            target = drive.residual(item.camera, quality, item.image)
            save_residual(target, residual, storage)
            rows.append({"camera": item.camera, "image": item.image, "quality": quality, "residual": str(target)})
            logger.info(f"residual {source} -> {target}")
    frame = pd.DataFrame(rows, columns=["camera", "image", "quality", "residual"])
    save_csv(table, frame)
    return frame


def fingerprint_camera(
    camera: str,
    images: Iterable[Mapping],
    develop_settings: Mapping,
    sigma: float,
    drive: DrivePaths | Mapping,
    table: str | os.PathLike,
    storage: Mapping | None = None,
    calibration: Mapping | None = None,
) -> pd.DataFrame:
    """Estimate ``camera``'s fingerprint from its fingerprint images (RAW files developed here, or
    developed originals loaded).

    ``images``: mappings with keys image, path and format; the fingerprint is written to
    ``drive.fingerprint(camera)``, always float32 (a preview beside it if ``storage`` asks). Originals that cannot be
    read, and those whose size differs from the most common size among them, are
    left out and listed with the reason; among them an image of the transposed
    size (turned by the camera, no orientation tag), whose direction of rotation
    is unknown: a wrong guess would add a misaligned noise pattern. Memory does
    not grow with the number of images (running sums). Raises SpnRestoreError
    when fewer than two usable images remain.

    The calibration set (:mod:`spnrestore.methods.calibration`) is written beside it: the leave-one-out
    fingerprints and pixels of the known images chosen by ``calibration`` settings (``flat`` in the
    mappings marks flat fields), on the central window.
    """
    from ..methods.calibration import LeaveOneOut, select_images, settings

    cfg = settings(calibration)
    rows, sizes = [], {}
    for item in sorted(images, key=lambda i: i["image"]):
        try:
            sizes[item["image"]] = (item, original_size(item["path"], item["format"]))
        except BadImageError as exc:
            rows.append({"image": item["image"], "used": False, "reason": exc.problem})
    counts = pd.Series([size for _, size in sizes.values()], dtype=object).value_counts()
    size = counts.index[0] if len(counts) else None
    accumulator = FingerprintAccumulator(sigma=sigma)
    usable = [item for name, (item, shape) in sizes.items() if shape == size]
    chosen, how = select_images(usable, cfg)
    loo = LeaveOneOut(accumulator, chosen, cfg["window"])
    for name, (item, shape) in sizes.items():
        if shape != size:
            turned = " (turned by the camera, no orientation tag: rotation unknown)" if shape == size[::-1] else ""
            rows.append({"image": name, "used": False,
                         "reason": f"size {shape[0]}x{shape[1]} differs from the camera's {size[0]}x{size[1]}{turned}"})
            continue
        try:
            loo.add(name, load_original(item["path"], item["format"], develop_settings).rgb, item.get("flat", False))
        except BadImageError as exc:
            rows.append({"image": name, "used": False, "reason": exc.problem})
            continue
        rows.append({"image": name, "used": True, "reason": ""})
        logger.info(f"fingerprint {camera}: added {item['path']}")
    if accumulator.count < 2:
        raise SpnRestoreError(
            f"camera {camera!r}: only {accumulator.count} usable fingerprint image(s); a fingerprint needs at "
            "least 2 (20 or more for reliable identification). Add images of this camera or remove its folder."
        )
    drive = DrivePaths.of(drive)
    save_residual(drive.fingerprint(camera), accumulator.finalize(), storage, dtype="float32")
    loo.finish(camera, how).save(drive.calibration_set(camera))
    result = pd.DataFrame(rows, columns=["image", "used", "reason"]).assign(camera=camera)
    save_csv(table, result[["camera", "image", "used", "reason"]])
    return result


def score_batch(
    develop_table: str | os.PathLike,
    original_scores: str | os.PathLike,
    roles: Mapping[str, str],
    qualities: Iterable[int],
    drive: DrivePaths | Mapping,
    cameras: Iterable[str],
    table: str | os.PathLike,
    sigma: float,
    storage: Mapping | None = None,
) -> pd.DataFrame:
    """Score the residuals of a batch's JPEGs (every quality) against every fingerprint, beside the scores
    of their originals that the develop rule made (``original_scores``).

    Images with role ``fingerprint`` (they built their camera's fingerprint) or
    ``no_fingerprint`` (their camera has none) are not scored. Writes one row
    per (image, source, fingerprint camera) with columns camera, image, role,
    quality ("original" or the JPEG quality), fingerprint, pce, ncc, match, against the fingerprints of
    ``cameras`` (:func:`spnrestore.spn.score_residual`), an image's original first. The JPEGs' residuals are
    read or computed as ``storage`` says (:func:`jpeg_residual`, with ``sigma``).
    """
    drive = DrivePaths.of(drive)
    score = fingerprint_scorer(load_fingerprints(drive, cameras))
    originals = pd.read_csv(original_scores, dtype={"camera": str, "image": str, "role": str, "quality": str,
                                                    "fingerprint": str}, keep_default_na=False)
    originals = {image: group.to_dict("records") for image, group in originals.groupby("image", sort=False)}
    rows = []
    for item in ok_images(develop_table).itertuples():
        role = roles[item.image]
        if role in UNSCORED_ROLES:
            continue
        rows += originals.get(item.image, [])
        for q in qualities:
            rgb = read_rgb(drive.jpeg(item.camera, q, item.image))
            residual, name = jpeg_residual(drive, item.camera, q, item.image, sigma, storage, rgb)
            for found in score(residual, rgb, name):
                rows.append({"camera": item.camera, "image": item.image, "role": role, "quality": str(q),
                             **found, "match": found["fingerprint"] == item.camera})
        logger.info(f"scored {item.camera}/{item.image} ({role})")
    frame = pd.DataFrame(rows, columns=SCORE_TABLE_COLUMNS)
    save_csv(table, frame)
    return frame
