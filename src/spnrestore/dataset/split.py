"""Train / validation / test split of images by a stable hash of camera and image name.

The split of an image depends only on its camera name, its image name and an
optional salt, so it never changes when images are added or removed, is the
same on every machine, and all JPEG qualities of one image fall in the same
split (no quality of a test image can leak into training). Cameras listed in
``holdout_cameras`` go whole into a separate ``holdout`` split, for testing on
cameras the model never saw.
"""

from __future__ import annotations

import hashlib
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import ConfigError

DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
SPLITS = ("train", "val", "test", "holdout")


def unit_hash(camera: str, image: str, salt: str = "") -> float:
    """A number in [0, 1) from SHA-256 of ``salt``, ``camera`` and ``image`` (UTF-8, NUL-separated)."""
    digest = hashlib.sha256(f"{salt}\0{camera}\0{image}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def check_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    """Validate ``{'train': .8, 'val': .1, 'test': .1}``: known names, non-negative, summing to 1."""
    unknown = sorted(set(fractions) - set(DEFAULT_FRACTIONS))
    if unknown:
        raise ConfigError(f"split fractions: unknown split name(s) {unknown}; use only train, val and test.")
    values = {name: float(fractions.get(name, 0.0)) for name in DEFAULT_FRACTIONS}
    if any(v < 0 for v in values.values()) or abs(sum(values.values()) - 1.0) > 1e-6:
        raise ConfigError(
            f"split fractions {values}: each must be >= 0 and together they must sum to 1 "
            "(e.g. train: 0.8, val: 0.1, test: 0.1)."
        )
    return values


def assign_split(
    camera: str,
    image: str,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    holdout_cameras: Iterable[str] = (),
    salt: str = "",
) -> str:
    """Split name (``train``, ``val``, ``test`` or ``holdout``) of one image."""
    if camera in set(holdout_cameras):
        return "holdout"
    values = check_fractions(fractions)
    u = unit_hash(camera, image, salt)
    edges = np.cumsum([values["train"], values["val"]])
    return "train" if u < edges[0] else "val" if u < edges[1] else "test"


def split_images(
    frame: pd.DataFrame,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    holdout_cameras: Iterable[str] = (),
    salt: str = "",
) -> pd.Series:
    """Split names for a table with columns ``camera`` and ``image`` (one row per image or per JPEG).

    Returns a string Series aligned with ``frame.index``. A holdout camera that
    does not occur in ``frame`` is an error (most likely a misspelt name).
    """
    holdout = [str(c) for c in holdout_cameras]
    missing = sorted(set(holdout) - set(frame["camera"].astype(str)))
    if missing:
        cameras = sorted(frame["camera"].astype(str).unique())
        raise ConfigError(
            f"holdout_cameras: {missing} not among the cameras of the data set {cameras}; "
            "check the spelling (names are the camera folder names)."
        )
    values = check_fractions(fractions)
    names = [
        assign_split(str(c), str(i), values, holdout, salt) for c, i in zip(frame["camera"], frame["image"])
    ]
    return pd.Series(names, index=frame.index, name="split", dtype=object)
