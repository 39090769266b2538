"""The role of every original: fingerprint, train, val, test, holdout or no_fingerprint.

Per camera, its flat-field images (column ``flat``) and then the images with the
smallest stable hash, up to ``n_fingerprint`` in all, build the camera's
fingerprint: they are never scored or used as training examples (every
flat-field image has this role, even beyond ``n_fingerprint``). The others are
split train/val/test by another stable hash (:mod:`spnrestore.dataset.split`).
Whole cameras can be held out of training (role ``holdout``) to measure
generalisation to unseen sensors. A camera with fewer than
:data:`MIN_FINGERPRINT_IMAGES` originals can have no fingerprint: its images get
role ``no_fingerprint`` (developed and compressed, never scored, never trained
on). Roles only depend on camera and file names and on which files are flat
fields; adding an image can only move the one it displaces from the
fingerprint set.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import pandas as pd

from .dataset.split import split_images, unit_hash

MIN_FINGERPRINT_IMAGES = 2
NO_FINGERPRINT = "no_fingerprint"
UNSCORED_ROLES = ("fingerprint", NO_FINGERPRINT)


def holdout_cameras(cameras: Iterable[str], names: Iterable[str], count: int) -> list[str]:
    """Cameras held out of training: ``names`` if given, else the ``count`` cameras with the
    smallest stable hash (none when fewer than three cameras would remain for training)."""
    cameras = sorted(set(cameras))
    names = list(names)
    if names:
        return names
    if len(cameras) - count < 2:
        return []
    return sorted(cameras, key=lambda c: unit_hash(c, "", "holdout"))[:count]


def cameras_without_fingerprint(images: pd.DataFrame) -> dict[str, int]:
    """Cameras of ``images`` (column camera) with fewer than MIN_FINGERPRINT_IMAGES originals, with their count."""
    counts = images.groupby("camera").size()
    return {str(c): int(n) for c, n in counts.items() if n < MIN_FINGERPRINT_IMAGES}


def assign_roles(
    images: pd.DataFrame,
    n_fingerprint: int,
    fractions: Mapping[str, float],
    holdout: Iterable[str] = (),
) -> pd.Series:
    """Role of each row of ``images`` (columns camera, image, optional bool flat), aligned with its index."""
    flat = images["flat"].astype(bool) if "flat" in images else pd.Series(False, index=images.index)
    key = pd.Series([unit_hash(c, i, "fingerprint") for c, i in zip(images["camera"], images["image"])],
                    index=images.index)
    rank = key[~flat].groupby(images["camera"][~flat]).rank(method="first").reindex(images.index)
    room = n_fingerprint - flat.groupby(images["camera"]).transform("sum")
    roles = split_images(images, fractions, holdout)
    roles[flat | (rank <= room)] = "fingerprint"
    roles[images["camera"].isin(cameras_without_fingerprint(images))] = NO_FINGERPRINT
    return roles.rename("role")
