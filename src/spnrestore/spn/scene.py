"""Where a match lives: the scene check of a fingerprint (is its evidence the sensor's or its scene's?).

A fingerprint estimated from images of one scene (one object from many angles, one landscape) also holds
some of that scene, and a test image of the same scene matches that part too. Scene residue sits on edges
and texture; the PRNU term ``I * K`` is everywhere the image is not dark or clipped. So the NCC of a residual
with a fingerprint term is measured separately on the smoother and on the more textured half of the image
(halves by the local gradient of the denoised gray image, blurred over 4 px): a match made of sensor noise
keeps a ratio smooth / textured near 1 (flat-field fingerprints of the development set, which hold no scene:
0.9-2.0, ``docs/model.md``), a match made of scene falls towards 0.
"""

from __future__ import annotations

import cv2
import numpy as np

from .fingerprint import gray_intensity

#: The blur (px) of the gradient that splits an image into its smoother and more textured halves.
GRADIENT_BLUR = 4.0
#: Below this ratio of smooth-half to textured-half NCC, a match is called scene-driven (flat-field
#: fingerprints, which hold no scene, give 0.9-2.0 on the development set).
SCENE_RATIO = 0.5


def smooth_half(rgb: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Boolean mask (H x W) of the smoother half of an image: the local gradient of its denoised gray image
    (gray less the noise ``residual``, both in gray levels), blurred over :data:`GRADIENT_BLUR` px, at or below
    its median."""
    gray = gray_intensity(rgb)
    gray *= np.float32(255.0)
    gray -= residual
    grad = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    grad = cv2.GaussianBlur(grad, (0, 0), GRADIENT_BLUR)
    return grad <= np.median(grad)


def masked_ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """NCC of ``a`` and ``b`` over the pixels of ``mask`` (float64 sums; NaN where either is constant)."""
    x, y = a[mask].astype(np.float64), b[mask].astype(np.float64)
    x -= x.mean()
    y -= y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator > 0 else float("nan")


def smooth_textured_ncc(residual: np.ndarray, term: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """NCC of a residual with a fingerprint term on the smooth half (``mask``) and on the textured half."""
    return masked_ncc(residual, term, mask), masked_ncc(residual, term, ~mask)
