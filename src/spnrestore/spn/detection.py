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
* :func:`residual_spectrum` / :func:`pce_with_spectrum`: the same zero-shift
  PCE without an inverse FFT, for scoring one residual against many terms: the
  residual's spectrum once (:class:`ResidualSpectrum`), then per term one real
  FFT, Parseval for the total energy ``sum C**2`` and a separable partial
  inverse DFT for the 11 x 11 values of ``C`` around zero shift; equal to
  :func:`pce` within float32 FFT rounding (relative 1e-5, tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft as sfft

from spnrestore.errors import SpnRestoreError

from ._checks import as_float_map, check_same_size
from .residual import irfft2

__all__ = ["ncc", "pce", "correlation_peak", "PceResult", "crosscorr", "ResidualSpectrum", "residual_spectrum",
           "pce_with_spectrum"]


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


_CHUNK = 1 << 16  # elements per float64 chunk of the NCC sums (512 KB: stays in cache)


def _moments(x: np.ndarray) -> tuple[float, float]:
    """(sum x, sum x**2) of a float32 array, accumulated in float64 chunk by chunk."""
    x = x.ravel()
    s = ss = 0.0
    buf = np.empty(min(_CHUNK, x.size))
    for i in range(0, x.size, _CHUNK):
        c = buf[: min(_CHUNK, x.size - i)]
        c[:] = x[i : i + _CHUNK]
        s += c.sum()
        ss += c @ c
    return float(s), float(ss)


def _ncc_value(sx, sxx, sy, syy, sxy, n, name) -> float:
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


# --- Zero-shift PCE against many terms: the residual's spectrum once (issue 16) ---------------------------------
#
# With A, B the rfft2 half spectra (H x (W//2 + 1)) of the residual and the term, DC set to 0 (means removed),
# P = A * conj(B) is the half spectrum of the circular cross-correlation C. Then, with N = H * W and the
# half-spectrum weights wx (1 for column 0 and, for even W, column W/2; 2 for the others):
#   total energy  sum_s C[s]**2 = (1/N) sum_k wx |P_k|**2                       (Parseval)
#   C[dy, dx] = (1/N) Re sum_ky e^{2 pi i ky dy / H} sum_kx wx P[ky, kx] e^{2 pi i kx dx / W}
# (the real inverse of a half spectrum is the real part of the weighted sum), evaluated for the
# neighbourhood's 11 x 11 shifts only: along x as one real matrix product of [Re P; Im P] with the weighted
# cos / sin of dx = 0..5 (the cos part is even in dx, the sin part odd: 11 columns give all 11 shifts), then
# along y with an 11 x H matrix. The products of the spectra are float32 (as in pce); the sums float64.

_ROWS = 32  # rows of the product spectrum per block of the partial inverse DFT (2 x 32 x 3001 float64: 1.5 MB)
_TERM_BLOCK = 1 << 16  # elements of the term per block of its row FFTs and NCC sums


class ResidualSpectrum:
    """What scoring a residual against many fingerprint terms computes once (:func:`residual_spectrum`).

    Attributes: ``shape`` (H, W); ``residual``: the float32, C-contiguous residual; ``spectrum``: its
    ``rfft2`` (complex64 H x (W//2 + 1)) with the DC coefficient zeroed (mean removed); ``neighborhood``;
    the phase matrices of the partial inverse DFT (float64, depend on the shape only); ``moments()``: (sum,
    sum of squares) for the NCC, computed on first use.
    """

    def __init__(self, residual: np.ndarray, neighborhood: int = 11):
        if neighborhood < 1 or neighborhood % 2 == 0:
            raise ValueError("neighborhood must be an odd positive number of pixels")
        self.residual = residual
        self.shape = h, w = residual.shape
        self.neighborhood = neighborhood
        spectrum = sfft.rfft2(residual, workers=1)
        spectrum[0, 0] = 0
        self.spectrum = spectrum
        r = neighborhood // 2
        half = w // 2 + 1
        weights = np.full(half, 2.0)
        weights[0] = 1.0
        if w % 2 == 0:
            weights[-1] = 1.0
        self._col_weights = weights
        # angles from exact integer products modulo the period: accurate phases for any size
        kx = np.arange(half, dtype=np.int64)
        ax = 2 * np.pi * (np.outer(kx, np.arange(r + 1)) % w) / w
        self._x_phases = np.ascontiguousarray(
            np.concatenate([weights[:, None] * np.cos(ax), weights[:, None] * np.sin(ax[:, 1:])], axis=1))
        ky = np.arange(h, dtype=np.int64)
        ay = 2 * np.pi * (np.outer(np.arange(-r, r + 1), ky) % h) / h
        self._y_cos, self._y_sin = np.cos(ay), np.sin(ay)
        # the distinct circular shifts of the neighbourhood (fewer than 11 when a side is shorter)
        self._ys = np.unique(np.arange(-r, r + 1) % h, return_index=True)[1]
        self._xs = np.unique(np.arange(-r, r + 1) % w, return_index=True)[1]
        self._moments = None

    def moments(self) -> tuple[float, float]:
        if self._moments is None:
            self._moments = _moments(self.residual)
        return self._moments


def residual_spectrum(residual, *, neighborhood: int = 11, name=None) -> ResidualSpectrum:
    """The :class:`ResidualSpectrum` of a residual (float H x W, finite), for :func:`pce_with_spectrum`."""
    return ResidualSpectrum(as_float_map(residual, "residual", name), neighborhood)


def pce_with_spectrum(spectrum: ResidualSpectrum, fingerprint_term, *, name=None) -> float:
    """Signed PCE at zero shift of the residual of ``spectrum`` against ``fingerprint_term``.

    The same statistic as ``pce(residual, fingerprint_term)`` (neighbourhood of the spectrum, default 11),
    computed without an inverse FFT (see the comment above :class:`ResidualSpectrum`); equal within float32
    FFT rounding (relative difference below 1e-5; absolute, in PCE units, below 1e-5 near PCE 0).
    """
    term = as_float_map(fingerprint_term, "fingerprint term", name)
    check_same_size(spectrum.shape, term.shape, "residual", "fingerprint term", name=name)
    return _zero_shift_scores(spectrum, term, None, False, name)[0]


def _energy_and_x_step(spec: ResidualSpectrum, fb: np.ndarray) -> tuple[float, np.ndarray]:
    """With ``fb`` the term's spectrum (DC zeroed; overwritten by ``P = A conj(B)``): ``sum_k wx |P_k|**2``
    and, per row ky, ``[Re P | Im P] @ x_phases`` (H x 2(2r+1), float64), block by block of rows."""
    h, w = spec.shape
    half = w // 2 + 1
    a = spec.spectrum
    mx = spec._x_phases
    ncol = mx.shape[1]
    tx = np.empty((h, 2 * ncol))  # per row ky: [Re P | Im P] @ mx
    buf = np.empty((2, _ROWS, half))
    total = 0.0
    for r0 in range(0, h, _ROWS):
        r1 = min(h, r0 + _ROWS)
        n = r1 - r0
        p = fb[r0:r1]
        np.conjugate(p, out=p)
        p *= a[r0:r1]
        x = buf if n == _ROWS else np.empty((2, n, half))
        x[0] = p.real
        x[1] = p.imag
        total += 2.0 * float(np.vdot(x, x)) - float(np.vdot(x[:, :, 0], x[:, :, 0]))
        if w % 2 == 0:
            total -= float(np.vdot(x[:, :, -1], x[:, :, -1]))
        y = x.reshape(2 * n, half) @ mx
        tx[r0:r1, :ncol] = y[:n]
        tx[r0:r1, ncol:] = y[n:]
    return total, tx


def _zero_shift_scores(spec: ResidualSpectrum, factor: np.ndarray, k: np.ndarray | None, with_ncc: bool,
                       name=None) -> tuple[float, float]:
    """(PCE, NCC or NaN) of the residual of ``spec`` against the term ``factor * k`` (``factor`` alone when
    ``k`` is None): float32 H x W arrays, C-contiguous. The term is formed, transformed along its rows and
    summed for the NCC block by block; a non-finite ``k`` shows as a non-finite result (checked here)."""
    return _zero_shift_scores_many([spec], factor, k, with_ncc, name)[0]


def _zero_shift_scores_many(specs: list, factor: np.ndarray, k: np.ndarray | None, with_ncc: bool,
                            name=None) -> list[tuple[float, float]]:
    """(PCE, NCC or NaN) of each residual of ``specs`` (all of one shape) against the one term ``factor * k``
    (``factor`` alone when ``k`` is None): the term is formed and transformed once for all of them (one FFT of
    the term, not one per residual), then each residual's energy, partial inverse DFT and NCC sums."""
    h, w = specs[0].shape
    half = w // 2 + 1
    rows = max(1, _TERM_BLOCK // w)
    fb = np.empty((h, half), np.complex64)
    tbuf = np.empty((rows, w), np.float32)
    sy = syy = 0.0
    sxy = [0.0] * len(specs)
    if with_ncc:
        t64 = np.empty(rows * w)
        x64 = np.empty(rows * w)
    with np.errstate(invalid="ignore", over="ignore"):  # a non-finite fingerprint: reported by _finish
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            t = factor[r0:r1] if k is None else np.multiply(factor[r0:r1], k[r0:r1], out=tbuf[: r1 - r0])
            fb[r0:r1] = sfft.rfft(t, axis=1, workers=1)
            if with_ncc:
                m = (r1 - r0) * w
                tt, xx = t64[:m], x64[:m]
                tt[:] = t.ravel()
                sy += tt.sum()
                syy += tt @ tt
                for i, spec in enumerate(specs):
                    xx[:] = spec.residual[r0:r1].ravel()
                    sxy[i] += xx @ tt
        fb = sfft.fft(fb, axis=0, workers=1, overwrite_x=True)
        fb[0, 0] = 0
        out = []
        for i, spec in enumerate(specs):
            total, tx = _energy_and_x_step(spec, fb.copy() if i + 1 < len(specs) else fb)
            out.append(_finish(spec, total, tx, sy, syy, sxy[i], with_ncc, name))
    return out


def _finish(spec, total, tx, sy, syy, sxy, with_ncc, name) -> tuple[float, float]:
    """PCE (from the energy and the x-step of the partial inverse DFT) and NCC (from the sums)."""
    h, w = spec.shape
    r = spec.neighborhood // 2
    ncol = r + 1 + r
    pr_c, pr_s = tx[:, : r + 1], tx[:, r + 1 : ncol]
    pi_c, pi_s = tx[:, ncol : ncol + r + 1], tx[:, ncol + r + 1 :]
    # T[ky, dx] = sum_kx wx P e^{2 pi i kx dx / W}, dx = -r..r (columns 0..2r)
    t_re = np.empty((h, 2 * r + 1))
    t_im = np.empty((h, 2 * r + 1))
    t_re[:, r] = pr_c[:, 0]
    t_im[:, r] = pi_c[:, 0]
    t_re[:, r + 1 :] = pr_c[:, 1:] - pi_s
    t_im[:, r + 1 :] = pr_s + pi_c[:, 1:]
    t_re[:, :r] = (pr_c[:, 1:] + pi_s)[:, ::-1]
    t_im[:, :r] = (pi_c[:, 1:] - pr_s)[:, ::-1]
    n_px = h * w
    c = (spec._y_cos @ t_re - spec._y_sin @ t_im) / n_px  # C[dy, dx], dy, dx = -r..r
    total /= n_px
    peak = float(c[r, r])
    nb = c[np.ix_(spec._ys, spec._xs)]
    if not (np.isfinite(total) and np.isfinite(peak)) or (with_ncc and not np.isfinite(sy + syy + sxy)):
        raise SpnRestoreError("fingerprint: contains NaN or infinite values (a corrupt or partly written file?); "
                              "recompute it")
    rest = total - float((nb * nb).sum())
    energy = max(rest, 0.0) / (n_px - nb.size)
    if not energy > 0:
        raise SpnRestoreError(f"{name or 'pce'}: the cross-correlation is zero (constant input?)")
    value = float(np.sign(peak) * peak * peak / energy)
    if not with_ncc:
        return value, float("nan")
    sx, sxx = spec.moments()
    return value, _ncc_value(sx, sxx, sy, syy, sxy, n_px, name)
