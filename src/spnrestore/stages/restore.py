"""Rule ``restore``: the restored residual of every JPEG of one camera's evaluated images, scored against
every fingerprint (:func:`spnrestore.spn.score_residual`). One job per camera: the model is loaded once."""

from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping

import pandas as pd

from ..atomic import save_csv
from ..jpeg import read_rgb
from ..paths import DrivePaths
from ..residual_files import keeps_residuals, save_residual
from ..spn import residual_settings
from .develop import ok_images
from .evaluation import SCORE_COLUMNS
from .roles import EVALUATED_ROLES, subset_of
from .scorer import fingerprint_scorer, load_fingerprints
from .spn import jpeg_residual


def restore_camera(
    develop_tables: Iterable[str | os.PathLike],
    roles: Mapping[str, str],
    qualities: Iterable[int],
    drive: DrivePaths | Mapping,
    cameras: Iterable[str],
    checkpoint: str | os.PathLike,
    sigma: float,
    table: str | os.PathLike,
    device: str | None = None,
    log: Callable[[str], None] = print,
    storage: Mapping | None = None,
) -> pd.DataFrame:
    """Restore the residual of every JPEG of one camera's test/holdout images and score it.

    Writes a table with the SCORE_COLUMNS of the ``restored`` method, scored against the fingerprints of
    ``cameras``, and, when ``storage`` keeps residuals, ``SPN/<camera>/restored/<Q>/<image>.npy`` (the plain
    residual is then read from the drive; otherwise it is computed from the JPEG, :func:`.spn.jpeg_residual`).
    A checkpoint trained on residuals of other settings than ``sigma`` is refused, naming both values.
    """
    from ..model.inference import load_restorer, restore_residual

    drive = DrivePaths.of(drive)
    restorer = load_restorer(checkpoint, device, residual=residual_settings(sigma))
    score = fingerprint_scorer(load_fingerprints(drive, cameras), log)
    rows, keep = [], keeps_residuals(storage)
    images = pd.concat([ok_images(t) for t in develop_tables], ignore_index=True)
    for item in images.itertuples():
        role = roles[item.image]
        if role not in EVALUATED_ROLES:
            continue
        for quality in qualities:
            rgb = read_rgb(drive.jpeg(item.camera, quality, item.image))
            plain, name = jpeg_residual(drive, item.camera, quality, item.image, sigma, storage, rgb)
            restored = restore_residual(restorer, rgb, plain, quality)
            target = drive.restored(item.camera, quality, item.image)
            if keep:
                save_residual(target, restored, storage)
            for row in score(restored, rgb, str(target) if keep else f"{name} (restored)", log):
                rows.append({"camera": item.camera, "image": item.image, "role": role, "subset": subset_of(role),
                             "quality": quality, "method": "restored", **row,
                             "match": row["fingerprint"] == item.camera})
        log(f"restored {item.camera}/{item.image} ({role})")
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    save_csv(table, frame)
    return frame
