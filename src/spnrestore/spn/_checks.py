"""Input checks shared by the SPN functions: every bad input raises a clear error."""

from __future__ import annotations

import numpy as np

from spnrestore.errors import BadImageError, SpnRestoreError

from .wavelet_denoise import LEVELS, WAVELET, min_side

#: Smallest accepted image side in pixels (4-level db4: 2**4 * 8 taps = 128).
MIN_SIDE = min_side(LEVELS, WAVELET)


def label(name) -> str:
    """What to call an input in a message."""
    return str(name) if name is not None else "image"


def as_image(img, name=None) -> np.ndarray:
    """Validate an image for residual extraction and return it as a numpy array.

    Accepted: ``uint8`` H x W, H x W x 1 or H x W x 3 (RGB order), or a float
    array of the same shapes with values on the 0..255 scale. Raises
    :class:`BadImageError` for anything else: wrong type/shape, a side below
    :data:`MIN_SIDE`, NaN/inf, a constant image (e.g. the black frame a
    header-only DNG develops to), float values that look like a 0..1 scale.
    """
    who = label(name)
    try:
        a = np.asarray(img)
    except Exception as exc:  # e.g. ragged lists
        raise BadImageError(who, f"cannot be read as an image array ({exc})") from exc
    if a.ndim == 3 and a.shape[2] == 4:
        raise BadImageError(who, "has 4 channels (RGBA?)", "pass the RGB channels only, e.g. img[..., :3]")
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3))):
        raise BadImageError(who, f"has shape {a.shape}", "expected H x W (gray) or H x W x 3 (RGB)")
    if a.dtype == np.uint8:
        pass
    elif a.dtype in (np.float32, np.float64, np.float16):
        if a.dtype != np.float32:
            a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise BadImageError(who, "contains NaN or infinite values", "check the decoding of this image")
        if a.max() <= 1.0 and a.min() >= 0.0 and a.max() > a.min():
            raise BadImageError(
                who, "looks like a 0..1 float image", "pass uint8, or float values on the 0..255 scale (multiply by 255)"
            )
    else:
        raise BadImageError(
            who, f"has dtype {a.dtype}", "convert it to 8-bit RGB (uint8, 0..255); 16-bit data must be developed/scaled first"
        )
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise BadImageError(
            who,
            f"is {h}x{w} px, too small for the 4-level db4 wavelet residual",
            f"each side needs at least {MIN_SIDE} px (2^4 levels x 8 filter taps)",
        )
    return a


def check_image(img, name=None) -> None:
    """Raise the :class:`BadImageError` that :func:`~spnrestore.spn.extract_residual` would raise for ``img``
    (see :func:`as_image`, and a constant image), without computing a residual."""
    check_not_constant(as_image(img, name), label(name))


def check_not_constant(a: np.ndarray, who: str) -> None:
    """Raise :class:`BadImageError` if every channel of a validated image is constant."""
    img = np.ascontiguousarray(a)
    nch = 1 if a.ndim == 2 else a.shape[2]
    rows = img.reshape(img.shape[0], -1)  # H x (W*C): elementwise min/max over rows is vectorized
    lo = rows.min(axis=0).reshape(-1, nch).min(axis=0)
    hi = rows.max(axis=0).reshape(-1, nch).max(axis=0)
    flat = img.reshape(-1)
    if (lo == hi).all():
        v = flat.flat[0]
        raise BadImageError(
            who,
            f"is constant (every pixel of each channel has one value, e.g. {v:g}); it has no noise residual",
            "a header-only or unreadable raw file develops to a black frame: check the source file",
        )


def as_float_map(x, what: str, name=None) -> np.ndarray:
    """A finite 2-D float32 array (residual, fingerprint, term), or :class:`SpnRestoreError`."""
    who = label(name) if name is not None else what
    a = np.asarray(x)
    if a.ndim != 2:
        raise SpnRestoreError(f"{who}: expected a 2-D array (H x W), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise SpnRestoreError(f"{who}: expected a numeric array, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise SpnRestoreError(f"{who}: contains NaN or infinite values (a corrupt or partly written file?); recompute it")
    return a


def check_same_size(a_shape, b_shape, a_what: str = "residual", b_what: str = "fingerprint", name=None) -> None:
    """Raise :class:`SpnRestoreError` unless two H x W shapes are equal; the message says whether to rotate or crop."""
    ah, aw = tuple(a_shape)[:2]
    bh, bw = tuple(b_shape)[:2]
    if (ah, aw) == (bh, bw):
        return
    prefix = f"{label(name)}: " if name is not None else ""
    if (ah, aw) == (bw, bh):
        hint = (
            "the sizes are transposed: one of them is in portrait orientation; put the developed image back into "
            "sensor orientation first (spnrestore.spn.to_sensor_orientation with its EXIF orientation)"
        )
    elif ah >= bh and aw >= bw:
        hint = f"crop the {a_what} to {bh}x{bw} (same crop as the {b_what}'s images)"
    elif ah <= bh and aw <= bw:
        hint = f"crop the {b_what} to {ah}x{aw} (same crop as the {a_what}'s image)"
    else:
        hint = "crop both to a common size, or rotate one into sensor orientation"
    raise SpnRestoreError(f"{prefix}{a_what} is {ah}x{aw} px but {b_what} is {bh}x{bw} px: {hint}")
