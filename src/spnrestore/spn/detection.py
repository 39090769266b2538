"""PRNU detection statistics: normalized cross-correlation and peak-to-correlation energy.

Both compare a residual ``W`` (:func:`extract_residual`) with the fingerprint
term ``I * K`` (:func:`fingerprint_term`) of the same, aligned image size.

* :func:`ncc`: Pearson correlation of the two arrays (means removed), in [-1, 1].
* :func:`pce`: signed peak-to-correlation energy (Goljan, Fridrich, Filler
  2009; Binghamton ``PCE.m``): ``C`` is the 2-D circular cross-correlation of
  the mean-removed arrays (via FFT); the peak is ``C`` at zero shift (aligned
  images, the standard), or the maximum over all shifts with
  ``search_shifts=True``; ``PCE = sign(peak) * peak**2 / mean(C**2 outside an
  11 x 11 neighbourhood of the peak)`` (circular neighbourhood). PCE > 60 is the
  usual decision threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft as sfft

from spnrestore.errors import SpnRestoreError

from ._checks import as_float_map, check_same_size
from .residual import irfft2

__all__ = ["ncc", "pce", "correlation_peak", "PceResult", "crosscorr"]


def _pair(a, b, name):
    a = as_float_map(a, "residual", name)
    b = as_float_map(b, "fingerprint term", name)
    check_same_size(a.shape, b.shape, "residual", "fingerprint term", name=name)
    return a, b


def ncc(a, b, *, name=None) -> float:
    """Normalized cross-correlation (Pearson, means removed) of two equal-size 2-D arrays.

    Sums are accumulated in float64. Returns a float in [-1, 1]; raises
    :class:`SpnRestoreError` for different sizes, NaN/inf, or a constant input.
    """
    a, b = _pair(a, b, name)
    x, y = a.ravel(), b.ravel()
    n = x.size
    sx = sy = sxx = syy = sxy = 0.0
    step = 1 << 20
    for i in range(0, n, step):
        xa = x[i : i + step].astype(np.float64)
        ya = y[i : i + step].astype(np.float64)
        sx += xa.sum()
        sy += ya.sum()
        sxx += xa @ xa
        syy += ya @ ya
        sxy += xa @ ya
    vx = sxx - sx * sx / n
    vy = syy - sy * sy / n
    if vx <= 0 or vy <= 0:
        raise SpnRestoreError(f"{name or 'ncc'}: one input is constant; the correlation is undefined")
    return float((sxy - sx * sy / n) / np.sqrt(vx * vy))


def crosscorr(a, b) -> np.ndarray:
    """Circular cross-correlation ``C[s] = sum_x a[x + s] * b[x]`` of the mean-removed inputs.

    ``a``, ``b``: equal-size 2-D arrays; returns float32 H x W, ``C[0, 0]`` is
    zero shift, ``C[dy, dx]`` the correlation with ``a`` shifted by
    ``(dy, dx)`` (circularly) relative to ``b``.
    """
    a, b = _pair(a, b, None)
    return _xcorr(a, b)


def _xcorr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Circular cross-correlation of the mean-removed inputs; the means are removed by
    zeroing the DC coefficient of each spectrum (no spatial copies)."""
    h, w = a.shape
    fa = sfft.rfft2(a, workers=1)
    fb = sfft.rfft2(b, workers=1)
    fa[0, 0] = 0
    fb[0, 0] = 0
    np.conjugate(fb, out=fb)
    fa *= fb
    del fb
    return irfft2(fa, w)


@dataclass(frozen=True)
class PceResult:
    """Result of :func:`correlation_peak`.

    pce: signed PCE (dimensionless); peak: cross-correlation value at the peak;
    shift: (dy, dx) of the peak, in pixels (circular, in ``-H/2..H/2``,
    ``-W/2..W/2``); energy: mean squared correlation outside the neighbourhood.
    """

    pce: float
    peak: float
    shift: tuple
    energy: float


def correlation_peak(residual, fingerprint_term, *, neighborhood: int = 11, search_shifts: bool = False,
                     name=None) -> PceResult:
    """PCE with details (see module docstring). Inputs: equal-size 2-D float arrays."""
    a, b = _pair(residual, fingerprint_term, name)
    if neighborhood < 1 or neighborhood % 2 == 0:
        raise ValueError("neighborhood must be an odd positive number of pixels")
    h, w = a.shape
    c = _xcorr(a, b)
    if search_shifts:
        idx = int(np.argmax(c))
        py, px = divmod(idx, w)
    else:
        py, px = 0, 0
    peak = float(c[py, px])
    total = cv2.norm(c, cv2.NORM_L2SQR)
    r = neighborhood // 2
    ys = np.unique((py + np.arange(-r, r + 1)) % h)
    xs = np.unique((px + np.arange(-r, r + 1)) % w)
    nb = c[np.ix_(ys, xs)].astype(np.float64)
    rest = total - float((nb * nb).sum())
    count = h * w - ys.size * xs.size
    energy = max(rest, 0.0) / count
    if not energy > 0:
        raise SpnRestoreError(f"{name or 'pce'}: the cross-correlation is zero (constant input?)")
    pce_v = float(np.sign(peak) * peak * peak / energy)
    shift = (py - h if py > h // 2 else py, px - w if px > w // 2 else px)
    return PceResult(pce=pce_v, peak=peak, shift=shift, energy=float(energy))


def pce(residual, fingerprint_term, *, neighborhood: int = 11, search_shifts: bool = False, name=None) -> float:
    """Signed peak-to-correlation energy of a residual against a fingerprint term.

    Parameters
    ----------
    residual : ndarray
        float H x W residual ``W`` of the tested image (:func:`extract_residual`).
    fingerprint_term : ndarray
        float H x W ``I * K`` (:func:`fingerprint_term`), same size.
    neighborhood : int
        Side of the square (circular) neighbourhood of the peak excluded from
        the energy, default 11.
    search_shifts : bool
        False (default): peak at zero shift (aligned images). True: the maximum
        of the cross-correlation over all circular shifts.

    Returns
    -------
    float
        Signed PCE (dimensionless); > 60 is the usual "same camera" threshold.
    """
    return correlation_peak(residual, fingerprint_term, neighborhood=neighborhood, search_shifts=search_shifts,
                            name=name).pce
