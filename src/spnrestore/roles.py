"""The role of every original: fingerprint, train, val, test or holdout.

Per camera, the ``n_fingerprint`` images with the smallest stable hash build the
camera's fingerprint and are never scored against it or used as training
examples; the others are split train/val/test by another stable hash
(:mod:`spnrestore.dataset.split`). Whole cameras can be held out of training
(role ``holdout``) to measure generalisation to unseen sensors. Roles only
depend on camera and file names, so adding an image never changes another's.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import pandas as pd

from .dataset.split import split_images, unit_hash


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


def assign_roles(
    images: pd.DataFrame,
    n_fingerprint: int,
    fractions: Mapping[str, float],
    holdout: Iterable[str] = (),
) -> pd.Series:
    """Role of each row of ``images`` (columns camera, image), aligned with its index."""
    key = pd.Series([unit_hash(c, i, "fingerprint") for c, i in zip(images["camera"], images["image"])],
                    index=images.index)
    rank = key.groupby(images["camera"]).rank(method="first")
    roles = split_images(images, fractions, holdout)
    roles[rank <= n_fingerprint] = "fingerprint"
    return roles.rename("role")
