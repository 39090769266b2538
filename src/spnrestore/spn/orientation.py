"""Orientation and size helpers: PRNU comparisons need pixel-aligned, sensor-oriented images."""

from __future__ import annotations

import numpy as np

from spnrestore.errors import SpnRestoreError

from ._checks import check_same_size

__all__ = ["to_sensor_orientation", "from_sensor_orientation", "check_same_size"]

# number of counter-clockwise quarter turns (np.rot90 k) that undo the display rotation of an EXIF orientation
_UNDO_K = {1: 0, 3: 2, 6: 1, 8: -1}


def _k(orientation) -> int:
    if orientation is None or orientation == 0:
        return 0  # missing / "unknown": treated as 1 (no rotation)
    try:
        o = int(orientation)
    except (TypeError, ValueError):
        raise SpnRestoreError(f"EXIF orientation {orientation!r} is not a number 1..8") from None
    if o in _UNDO_K:
        return _UNDO_K[o]
    if o in (2, 4, 5, 7):
        raise SpnRestoreError(
            f"EXIF orientation {o} is a mirrored orientation; PRNU matching cannot use mirrored images"
        )
    raise SpnRestoreError(f"EXIF orientation {orientation!r} is not one of 1..8")


def to_sensor_orientation(img, orientation) -> np.ndarray:
    """Undo the display rotation of a developed image, giving the sensor's pixel layout.

    ``img``: H x W (x C) array that was rotated for display according to its
    EXIF ``orientation`` (1: none; 3: 180 degrees; 6: the sensor image was
    turned 90 degrees clockwise for display; 8: turned 90 degrees counter-
    clockwise). ``None``/0 is taken as 1. Mirrored values (2, 4, 5, 7) raise
    :class:`SpnRestoreError`. Returns a (view) array rotated with ``np.rot90``
    over the first two axes: 6 -> ``rot90(k=1)``, 8 -> ``rot90(k=-1)``,
    3 -> ``rot90(k=2)``.
    """
    return np.rot90(np.asarray(img), _k(orientation), axes=(0, 1))


def from_sensor_orientation(img, orientation) -> np.ndarray:
    """Inverse of :func:`to_sensor_orientation`: apply the display rotation of an EXIF orientation."""
    return np.rot90(np.asarray(img), -_k(orientation), axes=(0, 1))
