"""The sensor-noise stages: JPEG residuals per batch, fingerprints per camera, scores per batch.

Called by the workflow's scripts; each writes its table (CSV) last, atomically,
as the job's tracked output.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from .atomic import save_csv
from .batch_develop import intensity_path, jpeg_path, read_develop_table
from .developed import load_original, original_size
from .errors import BadImageError, SpnRestoreError
from .jpeg import read_gray, read_rgb
from .residual_files import ORIGINAL, load_residual, residual_path, save_residual
from .roles import UNSCORED_ROLES
from .spn import FingerprintAccumulator, extract_residual, fingerprint_term, ncc, pce


def ok_images(table: str | os.PathLike) -> pd.DataFrame:
    """Rows of a develop batch table whose original developed correctly."""
    frame = read_develop_table(table)
    return frame[frame["status"] == "ok"]


def residual_batch(
    develop_table: str | os.PathLike,
    compressed: str | os.PathLike,
    spn: str | os.PathLike,
    qualities: Iterable[int],
    sigma: float,
    table: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Residual (+ PNG preview) of every JPEG of one batch, at every quality."""
    rows = []
    for item in ok_images(develop_table).itertuples():
        for quality in qualities:
            source = jpeg_path(compressed, item.camera, quality, item.image)
            residual = extract_residual(read_rgb(source), sigma=sigma, name=source)
            target = residual_path(spn, item.camera, quality, item.image)
            save_residual(target, residual)
            rows.append({"camera": item.camera, "image": item.image, "quality": quality, "residual": str(target)})
            log(f"residual {source} -> {target}")
    frame = pd.DataFrame(rows, columns=["camera", "image", "quality", "residual"])
    save_csv(table, frame)
    return frame


def fingerprint_camera(
    camera: str,
    images: Iterable[Mapping],
    develop_settings: Mapping,
    sigma: float,
    out: str | os.PathLike,
    table: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Estimate ``camera``'s fingerprint from its fingerprint images (RAW files developed here, or
    developed originals loaded).

    ``images``: mappings with keys image, path and format; ``out``: the fingerprint file
    (``SPN/<camera>/fingerprint.npy``, PNG preview beside it). Originals that cannot be
    read, and those whose size differs from the most common size among them, are
    left out and listed with the reason; among them an image of the transposed
    size (turned by the camera, no orientation tag), whose direction of rotation
    is unknown: a wrong guess would add a misaligned noise pattern. Memory does
    not grow with the number of images (running sums). Raises SpnRestoreError
    when fewer than two usable images remain.
    """
    rows, sizes = [], {}
    for item in sorted(images, key=lambda i: i["image"]):
        try:
            sizes[item["image"]] = (item, original_size(item["path"], item["format"]))
        except BadImageError as exc:
            rows.append({"image": item["image"], "used": False, "reason": exc.problem})
    counts = pd.Series([size for _, size in sizes.values()], dtype=object).value_counts()
    size = counts.index[0] if len(counts) else None
    accumulator = FingerprintAccumulator(sigma=sigma)
    for name, (item, shape) in sizes.items():
        if shape != size:
            turned = " (turned by the camera, no orientation tag: rotation unknown)" if shape == size[::-1] else ""
            rows.append({"image": name, "used": False,
                         "reason": f"size {shape[0]}x{shape[1]} differs from the camera's {size[0]}x{size[1]}{turned}"})
            continue
        try:
            accumulator.add(load_original(item["path"], item["format"], develop_settings).rgb)
        except BadImageError as exc:
            rows.append({"image": name, "used": False, "reason": exc.problem})
            continue
        rows.append({"image": name, "used": True, "reason": ""})
        log(f"fingerprint {camera}: added {item['path']}")
    if accumulator.count < 2:
        raise SpnRestoreError(
            f"camera {camera!r}: only {accumulator.count} usable fingerprint image(s); a fingerprint needs at "
            "least 2 (20 or more for reliable identification). Add images of this camera or remove its folder."
        )
    save_residual(out, accumulator.finalize())
    result = pd.DataFrame(rows, columns=["image", "used", "reason"]).assign(camera=camera)
    save_csv(table, result[["camera", "image", "used", "reason"]])
    return result


def load_fingerprints(fingerprints: Mapping[str, str | os.PathLike]) -> dict[str, np.ndarray]:
    """Fingerprint arrays by camera, each checked like a stored residual."""
    return {camera: load_residual(path) for camera, path in fingerprints.items()}


def score_residual(
    residual: np.ndarray, image: np.ndarray, fingerprints: Mapping[str, np.ndarray], name: str,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """PCE and NCC of ``residual`` against each fingerprint's term K * I(image).

    ``image`` is the tested image (uint8 RGB or gray). A residual of the
    transposed size (an image turned by the camera without an orientation tag)
    is turned a quarter turn each way and the higher PCE is kept, as the
    direction is unknown; this doubles the chances of a chance non-match peak
    for those images only. Fingerprints of another size are not scored; the
    mismatch is logged with the file ``name``.
    """
    rows = []
    for camera, k in fingerprints.items():
        if k.shape == residual.shape:
            turns = (0,)
        elif k.shape == residual.shape[::-1]:
            turns = (1, -1)
        else:
            log(f"not scored: {name} is {residual.shape[1]}x{residual.shape[0]}, the fingerprint of {camera!r} is "
                f"{k.shape[1]}x{k.shape[0]} (crop or rotate the image to the sensor size)")
            continue
        scores = []
        for turn in turns:
            w, term = np.rot90(residual, turn), fingerprint_term(k, np.rot90(image, turn))
            scores.append({"fingerprint": camera, "pce": pce(w, term), "ncc": ncc(w, term)})
        rows.append(max(scores, key=lambda s: s["pce"]))
    return rows


def score_batch(
    develop_table: str | os.PathLike,
    roles: Mapping[str, str],
    qualities: Iterable[int],
    compressed: str | os.PathLike,
    spn: str | os.PathLike,
    intensity_dir: str | os.PathLike,
    fingerprints: Mapping[str, str | os.PathLike],
    table: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Score the residuals (original and every quality) of a batch's images against every fingerprint.

    Images with role ``fingerprint`` (they built their camera's fingerprint) or
    ``no_fingerprint`` (their camera has none) are not scored. Writes one row
    per (image, source, fingerprint camera) with columns camera, image, role,
    quality ("original" or the JPEG quality), fingerprint, pce, ncc, match.
    """
    arrays = load_fingerprints(fingerprints)
    rows = []
    for item in ok_images(develop_table).itertuples():
        role = roles[item.image]
        if role in UNSCORED_ROLES:
            continue
        sources = [(ORIGINAL, read_gray(intensity_path(intensity_dir, item.camera, item.image)))]
        sources += [(q, read_rgb(jpeg_path(compressed, item.camera, q, item.image))) for q in qualities]
        for source, image in sources:
            path = residual_path(spn, item.camera, source, item.image)
            for score in score_residual(load_residual(path), image, arrays, str(path), log):
                rows.append({"camera": item.camera, "image": item.image, "role": role, "quality": str(source),
                             **score, "match": score["fingerprint"] == item.camera})
        log(f"scored {item.camera}/{item.image} ({role})")
    frame = pd.DataFrame(rows, columns=["camera", "image", "role", "quality", "fingerprint", "pce", "ncc", "match"])
    save_csv(table, frame)
    return frame
