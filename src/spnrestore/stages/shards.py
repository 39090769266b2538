"""Rule ``shards``: the training pairs of one camera of one split, from the workflow's tables, by the shard
writer of :mod:`spnrestore.dataset`."""

from __future__ import annotations

import os
from typing import Iterable, Mapping

import pandas as pd

from ..dataset import build_split
from ..paths import ORIGINAL, DrivePaths
from ..residual_files import keeps_residuals
from .develop import ok_images


def split_examples(
    split: str,
    develop_tables: Iterable[str | os.PathLike],
    roles: Mapping[str, Mapping[str, str]],
    qualities: Iterable[int],
    drive: DrivePaths | Mapping,
    camera: str | None = None,
    storage: Mapping | None = None,
) -> pd.DataFrame:
    """One row per (camera, image, quality) of the usable originals whose role is ``split`` (of ``camera``
    only, when given).

    Columns: camera, image, quality, split, jpeg, residual, original_residual (paths). ``residual`` is the
    stored residual's path when the ``storage`` settings keep the residuals
    (:func:`spnrestore.residual_files.keeps_residuals`; None: they do), else "" (computed from the JPEG).
    """
    drive = DrivePaths.of(drive)
    keep = keeps_residuals(storage)
    tables = [ok_images(t) for t in develop_tables]
    images = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["camera", "image"])
    images = images[[roles[c][i] == split and (camera is None or c == camera)
                     for c, i in zip(images["camera"], images["image"])]]
    rows = [
        {"camera": r.camera, "image": r.image, "quality": q, "split": split,
         "jpeg": str(drive.jpeg(r.camera, q, r.image)),
         "residual": str(drive.residual(r.camera, q, r.image)) if keep else "",
         "original_residual": str(drive.residual(r.camera, ORIGINAL, r.image))}
        for r in images.itertuples() for q in qualities
    ]
    return pd.DataFrame(rows, columns=["camera", "image", "quality", "split", "jpeg", "residual", "original_residual"])


def write_split_shards(
    split: str,
    develop_tables: Iterable[str | os.PathLike],
    roles: Mapping[str, Mapping[str, str]],
    qualities: Iterable[int],
    drive: DrivePaths | Mapping,
    cameras: Iterable[str],
    settings: Mapping,
    out_dir: str | os.PathLike,
    camera: str | None = None,
    storage: Mapping | None = None,
    sigma: float | None = None,
) -> pd.DataFrame:
    """Shards of ``camera`` in ``split`` under ``<out_dir>/<split>/<camera>/`` (every camera of the split when
    None) with the ``dataset`` config section ``settings``; the targets are built from the fingerprints of
    ``cameras`` (all of them: the other camera of an example is picked among all). Residuals that the
    ``storage`` settings do not keep are computed from the JPEGs with the denoiser's ``sigma``."""
    drive = DrivePaths.of(drive)
    examples = split_examples(split, develop_tables, roles, qualities, drive, camera=camera, storage=storage)
    return build_split(
        examples, {c: drive.fingerprint(c) for c in cameras}, out_dir, split,
        target=settings["target"], patch=settings["patch"], stride=settings["stride"],
        shard_size=settings["shard_size"], rule=settings["patch_rule"],
        max_patches_per_image=settings["max_patches_per_image"], camera=camera, sigma=sigma,
    )
