"""How residuals and fingerprints are stored: float32 H x W ``.npy`` (lossless, memory-mappable), each
with a viewable ``.png`` preview beside it. Where they live is :mod:`spnrestore.paths`."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .atomic import save_npy, write_bytes
from .errors import SpnRestoreError

def preview(residual: np.ndarray) -> np.ndarray:
    """uint8 view of a residual: mid-gray is 0, +-3 standard deviations map to 0..255."""
    scale = 3.0 * float(residual.std()) or 1.0
    return np.clip(127.5 + 127.5 * residual / scale, 0, 255).astype(np.uint8)


def save_residual(path: str | os.PathLike, residual: np.ndarray) -> None:
    """Write ``residual`` (float32 H x W) to ``path`` and its PNG preview beside it, atomically."""
    save_npy(path, residual.astype(np.float32, copy=False))
    ok, png = cv2.imencode(".png", preview(residual))
    write_bytes(Path(path).with_suffix(".png"), png.tobytes())


def load_residual(path: str | os.PathLike) -> np.ndarray:
    """Read a stored residual; a missing, damaged or non-finite file is an error naming it."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SpnRestoreError(f"{path}: cannot read the stored residual ({exc}); delete it and re-run the workflow") from None
    if array.ndim != 2 or array.dtype != np.float32:
        raise SpnRestoreError(f"{path}: expected a 2-D float32 residual, found {array.dtype} {array.shape}; delete it and re-run")
    array = np.asarray(array)
    if not np.isfinite(array).all():
        raise SpnRestoreError(f"{path}: the stored residual contains NaN or infinite values; delete it and re-run")
    return array
