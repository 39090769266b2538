"""How residuals and fingerprints are stored: H x W ``.npy`` (memory-mappable), float16 or float32, with an
optional viewable ``.png`` preview beside it. Where they live is :mod:`spnrestore.paths`.

The workflow's ``storage`` config section (:func:`storage_settings`) chooses the residuals' precision and
the previews: by default residuals are float16 (2 bytes a pixel; relative rounding below 2**-11, which moves
no PCE of the demo by more than ~1e-4 relative, see ``tests/test_residual_storage.py``) and no previews.
Fingerprints are always float32 (one per camera: they are few, and every scored pair uses one).
:func:`load_residual` returns float32 whatever was stored. Called without settings (the command line),
:func:`save_residual` writes float32 with a full-size preview, as before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np

from .atomic import save_npy, write_bytes
from .errors import ConfigError, SpnRestoreError

#: Precisions a residual may be stored in (``storage.residual_dtype``).
RESIDUAL_DTYPES = ("float16", "float32")
#: Longest side (pixels) of a preview written by the workflow (``storage.previews: true``).
PREVIEW_SIDE = 512
#: The workflow's default ``storage`` section (config/config.yaml holds the same values).
STORAGE_DEFAULTS = {"residual_dtype": "float16", "previews": False, "keep_residuals": False}
#: What :func:`save_residual` does without settings: full precision and a full-size preview.
FULL = {"residual_dtype": "float32", "previews": True, "preview_side": 0, "keep_residuals": True}


def storage_settings(storage: Mapping | None) -> dict:
    """The checked ``storage`` settings: None -> :data:`FULL`; a mapping -> its keys over
    :data:`STORAGE_DEFAULTS` (previews then at most :data:`PREVIEW_SIDE` px, unless ``preview_side`` says)."""
    if storage is None:
        return dict(FULL)
    unknown = sorted(set(storage) - {"residual_dtype", "previews", "preview_side", "keep_residuals"})
    settings = {**STORAGE_DEFAULTS, "preview_side": PREVIEW_SIDE, **storage}
    if unknown:
        raise ConfigError(f"storage: unknown key(s) {unknown}; the keys are residual_dtype, previews and "
                          "keep_residuals (config/schema.yaml)")
    if settings["residual_dtype"] not in RESIDUAL_DTYPES:
        raise ConfigError(f"storage.residual_dtype = {settings['residual_dtype']!r}: must be one of "
                          f"{list(RESIDUAL_DTYPES)} (float32 keeps full-precision residuals)")
    for key in ("previews", "keep_residuals"):
        if not isinstance(settings[key], bool):
            raise ConfigError(f"storage.{key} = {settings[key]!r}: must be true or false")
    return settings


def keeps_residuals(storage: Mapping | None) -> bool:
    """Whether the residuals of the JPEGs and the restored residuals are stored on the drive
    (``storage.keep_residuals``); when not, every reader computes them from the JPEG (and the model)."""
    return storage_settings(storage)["keep_residuals"]


def preview(residual: np.ndarray, side: int = 0) -> np.ndarray:
    """uint8 view of a residual: mid-gray is 0, +-3 standard deviations map to 0..255; with ``side`` > 0
    shrunk (pixel area) so that its longest side is at most ``side`` pixels."""
    scale = 3.0 * float(residual.std()) or 1.0
    view = np.clip(127.5 + 127.5 * residual / scale, 0, 255).astype(np.uint8)
    h, w = view.shape
    if side and max(h, w) > side:
        f = side / max(h, w)
        view = cv2.resize(view, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return view


def save_residual(path: str | os.PathLike, residual: np.ndarray, storage: Mapping | None = None,
                  dtype: str | None = None) -> None:
    """Write ``residual`` (H x W) to ``path`` atomically, in ``storage``'s precision (``dtype`` overrides it:
    fingerprints pass float32), and its PNG preview beside it when ``storage`` asks for one (a stale preview
    is removed otherwise). A residual beyond float16's range is stored in float32."""
    settings = storage_settings(storage)
    with np.errstate(over="ignore"):
        stored = residual.astype(dtype or settings["residual_dtype"], copy=False)
    if stored.dtype == np.float16 and not np.isfinite(stored).all():
        stored = residual.astype(np.float32, copy=False)
    save_npy(path, stored)
    png = Path(path).with_suffix(".png")
    if settings["previews"]:
        ok, data = cv2.imencode(".png", preview(np.asarray(residual, np.float32), settings["preview_side"]))
        write_bytes(png, data.tobytes())
    else:
        png.unlink(missing_ok=True)


def load_residual(path: str | os.PathLike) -> np.ndarray:
    """Read a stored residual as float32 (stored float16 or float32); a missing, damaged or non-finite file is
    an error naming it."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SpnRestoreError(f"{path}: cannot read the stored residual ({exc}); delete it and re-run the workflow") from None
    if array.ndim != 2 or array.dtype.name not in RESIDUAL_DTYPES:
        raise SpnRestoreError(f"{path}: expected a 2-D float16 or float32 residual, found {array.dtype} "
                              f"{array.shape}; delete it and re-run")
    array = np.asarray(array, np.float32)
    if not np.isfinite(array).all():
        raise SpnRestoreError(f"{path}: the stored residual contains NaN or infinite values; delete it and re-run")
    return array
