"""Rule ``shards``: the training pairs of one split, from the workflow's tables, by the shard writer of
:mod:`spnrestore.dataset`."""

from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping

import pandas as pd

from ..dataset import build_split
from ..paths import ORIGINAL, DrivePaths
from .develop import ok_images


def split_examples(
    split: str,
    develop_tables: Iterable[str | os.PathLike],
    roles: Mapping[str, Mapping[str, str]],
    qualities: Iterable[int],
    drive: DrivePaths | Mapping,
) -> pd.DataFrame:
    """One row per (camera, image, quality) of the usable originals whose role is ``split``.

    Columns: camera, image, quality, split, jpeg, residual, original_residual (paths).
    """
    drive = DrivePaths.of(drive)
    images = pd.concat([ok_images(t) for t in develop_tables], ignore_index=True)
    images = images[[roles[c][i] == split for c, i in zip(images["camera"], images["image"])]]
    rows = [
        {"camera": r.camera, "image": r.image, "quality": q, "split": split,
         "jpeg": str(drive.jpeg(r.camera, q, r.image)),
         "residual": str(drive.residual(r.camera, q, r.image)),
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
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Shards of ``split`` under ``<out_dir>/<split>/`` with the ``dataset`` config section ``settings``; the
    targets are built from the fingerprints of ``cameras``."""
    drive = DrivePaths.of(drive)
    examples = split_examples(split, develop_tables, roles, qualities, drive)
    return build_split(
        examples, {camera: drive.fingerprint(camera) for camera in cameras}, out_dir, split,
        target=settings["target"], patch=settings["patch"], stride=settings["stride"],
        shard_size=settings["shard_size"], rule=settings["patch_rule"],
        max_patches_per_image=settings["max_patches_per_image"], log=log,
    )
