"""PRNU noise residual of one image (fast float32 path).

``extract_residual(rgb)`` is the standard residual of the Binghamton toolbox /
prnu-python ``extract_single`` (with the 8-tap ``db4`` wavelet):

1. per-channel wavelet residual (:func:`noise_rgb`, see
   :mod:`spnrestore.spn.wavelet_denoise`),
2. gray conversion with weights 0.29893602, 0.58704307, 0.11402090 (R, G, B),
3. :func:`zero_mean_total` (each of the four 2x2 mosaic phases: minus its mean,
   its row means and its column means),
4. :func:`wiener_dft`: adaptive Wiener shrinkage of the DFT magnitude with the
   noise sigma = ``std(ddof=1)`` of the zero-meaned residual.

The result is float32, H x W, in the units of the input intensities (0..255
scale): a residual value of 1.0 is one grey level.
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.fft as sfft

from spnrestore.errors import BadImageError

from ._checks import as_image, check_not_constant, label
from .wavelet_denoise import GRAY_WEIGHTS, STRIP_ELEMS, WINDOWS, denoise_image, min_box_factor

#: The denoiser's noise level where a caller gives none: the default of the configuration's ``spn.sigma``
#: (config/schema.yaml; tests/test_config.py checks that they agree). The workflow passes ``spn.sigma``.
DEFAULT_SIGMA = 5.0

__all__ = ["extract_residual", "noise_rgb", "rgb2gray", "zero_mean_total", "wiener_dft", "residual_settings"]


def residual_settings(sigma: float) -> dict:
    """Every setting the residual of :func:`extract_residual` depends on, as plain values: the denoiser's
    noise ``sigma`` (grey levels) and the fixed algorithm (wavelet, levels, Wiener windows, gray weights).

    A model trained on residuals records this dictionary; applying it to residuals made with other settings
    is refused (:func:`settings_difference`)."""
    from .wavelet_denoise import LEVELS, WAVELET

    return {"sigma": float(sigma), "wavelet": WAVELET, "levels": int(LEVELS), "windows": list(WINDOWS),
            "gray_weights": list(GRAY_WEIGHTS)}


def settings_difference(recorded: dict, current: dict) -> list[str]:
    """``key: recorded vs current`` for every residual setting that differs (empty when they agree)."""
    keys = sorted(set(recorded) | set(current))
    return [f"{k}: {recorded.get(k)!r} (recorded) vs {current.get(k)!r} (now)" for k in keys
            if recorded.get(k) != current.get(k)]


def noise_rgb(rgb, sigma: float = DEFAULT_SIGMA, *, name=None) -> np.ndarray:
    """Per-channel wavelet noise residual, before the gray conversion.

    Parameters
    ----------
    rgb : ndarray
        ``uint8`` image H x W x 3 (RGB) or H x W (gray); float arrays on the
        0..255 scale are accepted too. Each side must be >= 128 px.
    sigma : float
        Noise standard deviation of the wavelet Wiener filter, in grey levels
        (0..255 scale); the standard value is 5.
    name : str, optional
        File name or label used in error messages.

    Returns
    -------
    ndarray
        float32, same H x W (x C) layout as the input: the denoising residual
        of each channel (image minus its wavelet-denoised version, before
        zero-meaning), in grey levels.
    """
    a = as_image(rgb, name)
    check_not_constant(a, label(name))
    outs = denoise_image(a, sigma)
    if a.ndim == 2:
        return outs[0]
    if len(outs) == 1:
        return outs[0][:, :, None]
    return cv2.merge(outs)


def extract_residual(rgb, sigma: float = DEFAULT_SIGMA, *, name=None) -> np.ndarray:
    """PRNU noise residual ``W`` of one image (standard algorithm, fast path).

    Parameters
    ----------
    rgb : ndarray
        ``uint8`` H x W x 3 (RGB order) or H x W gray; float arrays with values
        on the 0..255 scale are accepted. Each side >= 128 px.
    sigma : float
        Noise standard deviation of the wavelet Wiener filter (grey levels), default 5.
    name : str, optional
        File name or label used in error messages.

    Returns
    -------
    ndarray
        float32, H x W: the gray, zero-meaned, Wiener(DFT)-filtered residual
        in grey levels (0..255 scale).

    Raises
    ------
    BadImageError
        Wrong dtype/shape, a side < 128 px, NaN/inf, a constant image.
    """
    a = as_image(rgb, name)
    who = label(name)
    check_not_constant(a, who)
    weights = GRAY_WEIGHTS if a.ndim == 3 and a.shape[2] == 3 else (1.0,)
    w = denoise_image(a, sigma, weights=weights)[0]
    return _finish(w, who)


def _finish(w: np.ndarray, who: str) -> np.ndarray:
    """Zero-mean + Wiener DFT of a gray float32 residual (``w`` may be overwritten).

    For even H and W the zero-mean step is done on the spectrum (see
    :func:`_zero_mean_spectrum`): one forward and one inverse FFT in all.
    """
    h, wd = w.shape
    if h % 2 or wd % 2:
        w = zero_mean_total(w, inplace=True)
        std = _std_ddof1(w)
        _check_std(std, who)
        return wiener_dft(w, std, inplace=True)
    F = sfft.rfft2(w, workers=1, overwrite_x=True)
    del w
    _zero_mean_spectrum(F, wd)
    std = _std_from_spectrum(F, wd)
    _check_std(std, who)
    _wiener_spectrum(F, wd, std)
    return irfft2(F, wd)


def irfft2(F: np.ndarray, w: int) -> np.ndarray:
    """Inverse of ``scipy.fft.rfft2`` for a width-``w`` real image, float32, overwriting ``F``.

    An in-place complex inverse FFT along axis 0 followed by the real inverse
    along axis 1: the same result as ``scipy.fft.irfft2`` and about half its time
    (scipy's 2-D c2r path copies).
    """
    F = sfft.ifft(F, axis=0, workers=1, overwrite_x=True)
    return sfft.irfft(F, n=w, axis=1, workers=1, overwrite_x=True).astype(np.float32, copy=False)


def _check_std(std: float, who: str) -> None:
    if not np.isfinite(std) or std <= 1e-12:
        raise BadImageError(
            who, "has no noise residual (the wavelet residual is zero everywhere)", "is the image flat or synthetic?"
        )


def _zero_mean_spectrum(F: np.ndarray, w: int) -> None:
    """:func:`zero_mean_total` applied to the rfft2 half spectrum of an image with even H and W (in place).

    The correction subtracted by ZeroMeanTotal is ``A[y, x % 2] + B[y % 2, x]``
    (row terms per column phase, column terms per row phase). A function of
    ``x % 2`` is ``c0 + c1 * (-1)**x``, whose DFT along x lives only in the
    columns 0 and W/2; likewise the column terms only touch the rows 0 and
    H/2. The row/column sums per phase are read from those same rows and
    columns (1-D inverse FFTs), so no pass over the image is needed.
    """
    h = F.shape[0]
    h2, w2 = h // 2, w // 2
    f64 = np.complex128
    # sums over x per column phase b, for every row y:  sum_all = sum_x, sum_alt = sum_x (-1)^x
    row_all = np.fft.ifft(F[:, 0].astype(f64)).real
    row_alt = np.fft.ifft(F[:, w2].astype(f64)).real
    rows = np.stack([(row_all + row_alt) / 2, (row_all - row_alt) / 2], axis=1)  # (H, 2): phase b = 0, 1
    # sums over y per row phase a, for every column x
    col_all = np.fft.irfft(F[0].astype(f64), n=w)
    col_alt = np.fft.irfft(F[h2].astype(f64), n=w)
    cols = np.stack([(col_all + col_alt) / 2, (col_all - col_alt) / 2], axis=0)  # (2, W): phase a = 0, 1
    n_row, n_col = w2, h2  # elements per row of a column phase, per column of a row phase
    A = np.empty((h, 2))
    B = np.empty((2, w))
    for a in (0, 1):
        for b in (0, 1):
            total = rows[a::2, b].sum()
            mean = total / (n_row * n_col)
            A[a::2, b] = rows[a::2, b] / n_row - mean  # row mean minus the phase mean
            B[a, b::2] = cols[a, b::2] / n_col  # column mean
    # A[y, x%2] = (A0 + A1)/2 - (A1 - A0)/2 * (-1)^x ; DFT over x: W at column 0 and W/2
    F[:, 0] -= (w * np.fft.fft((A[:, 0] + A[:, 1]) / 2)).astype(F.dtype)
    F[:, w2] -= (-w * np.fft.fft((A[:, 1] - A[:, 0]) / 2)).astype(F.dtype)
    F[0] -= (h * np.fft.rfft((B[0] + B[1]) / 2)).astype(F.dtype)
    F[h2] -= (-h * np.fft.rfft((B[1] - B[0]) / 2)).astype(F.dtype)


def _std_from_spectrum(F: np.ndarray, w: int) -> float:
    """std (ddof=1) of a zero-mean image from its rfft2 half spectrum (Parseval), float64 sums."""
    h = F.shape[0]
    n = h * w
    fv = F.view(np.float32)
    total = cv2.norm(fv, cv2.NORM_L2SQR)  # sum |F|^2 over the half spectrum
    edge = cv2.norm(np.ascontiguousarray(F[:, 0]).view(np.float32), cv2.NORM_L2SQR)
    if w % 2 == 0:
        edge += cv2.norm(np.ascontiguousarray(F[:, w // 2]).view(np.float32), cv2.NORM_L2SQR)
    full = 2.0 * total - edge  # columns 1..W/2-1 stand for two columns of the full spectrum
    return float(np.sqrt(full / n / (n - 1)))


def _std_ddof1(x: np.ndarray) -> float:
    _, sd = cv2.meanStdDev(x)
    n = x.size
    return float(sd[0, 0]) * np.sqrt(n / (n - 1))


def rgb2gray(x) -> np.ndarray:
    """Gray conversion of the toolbox: ``0.29893602 R + 0.58704307 G + 0.11402090 B``.

    ``x``: H x W x 3 (any real dtype, any scale); H x W or H x W x 1 is returned
    as is. Returns float32 H x W in the units of ``x``.
    """
    a = np.asarray(x)
    if a.ndim == 2:
        return a.astype(np.float32, copy=True)
    if a.ndim == 3 and a.shape[2] == 1:
        return a[:, :, 0].astype(np.float32, copy=True)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"rgb2gray: expected H x W x 3, got shape {a.shape}")
    if a.dtype != np.float32:
        a = a.astype(np.float32)  # cv2.transform keeps the depth: uint8 would be rounded
    m = np.asarray([GRAY_WEIGHTS], np.float32)
    return cv2.transform(np.ascontiguousarray(a), m).astype(np.float32, copy=False).reshape(a.shape[:2])


def zero_mean_total(x, *, inplace: bool = False) -> np.ndarray:
    """Binghamton ``ZeroMeanTotal``: zero-mean each of the four 2x2 phases.

    On each phase ``v = x[a::2, b::2]``: ``v - mean(v) - rowmean - colmean``
    (row/column means of the mean-removed phase), so every row and column of
    every phase sums to zero. ``x``: 2-D float; returns float32 H x W (sums
    are accumulated in float64).
    """
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"zero_mean_total: expected a 2-D array, got shape {a.shape}")
    if inplace and a.dtype == np.float32 and a.flags.writeable:
        out = a
    else:
        out = np.array(a, dtype=np.float32, copy=True)
    h, w = out.shape
    # row sums per column phase: (H, 2); column sums per row phase: (2, W)
    rows = np.empty((h, 2), np.float64)
    cols = np.empty((2, w), np.float64)
    for b in (0, 1):
        rows[:, b] = out[:, b::2].sum(axis=1, dtype=np.float64)
    for r in (0, 1):
        cols[r] = out[r::2].sum(axis=0, dtype=np.float64)
    nrow = np.array([(w + 1) // 2, w // 2], np.float64)  # elements per row of column phase b
    ncol = np.array([(h + 1) // 2, h // 2], np.float64)  # elements per column of row phase a
    for a_ in (0, 1):
        for b in (0, 1):
            tot = rows[a_::2, b].sum()
            mean = tot / (nrow[b] * ncol[a_])
            rmean = rows[a_::2, b] / nrow[b]  # (rows of phase)
            cmean = cols[a_, b::2] / ncol[a_]  # (cols of phase)
            v = out[a_::2, b::2]
            # v - rowmean - colmean + mean  (see prnu-python zero_mean)
            v -= (cmean - mean).astype(np.float32)[None, :]
            v -= rmean.astype(np.float32)[:, None]
    return out


def wiener_dft(x, sigma: float, *, inplace: bool = False, windows=WINDOWS) -> np.ndarray:
    """Adaptive Wiener filter in the DFT domain (Binghamton ``WienerInDFT``).

    With ``F = DFT(x)`` and ``m = |F| / sqrt(H*W)``, every coefficient is
    multiplied by ``s2 / (v + s2)``, ``s2 = sigma**2`` and ``v`` the minimum
    over square windows 3, 5, 7, 9 (zero padding outside the H x W spectrum
    array, unshifted, as prnu-python) of ``max(0, boxmean(m**2) - s2)``.
    Computed on the real-FFT half spectrum; the window sums near its last
    column use the Hermitian mirror so the result equals the full-FFT one.

    ``x``: 2-D float (H x W, both >= 20); ``sigma``: noise std in the units of
    ``x``. Returns float32 H x W.
    """
    a = np.asarray(x)
    if a.ndim != 2:
        raise ValueError(f"wiener_dft: expected a 2-D array, got shape {a.shape}")
    if min(a.shape) < 2 * max(windows) + 2:
        raise ValueError(f"wiener_dft: each side must be at least {2 * max(windows) + 2}, got shape {a.shape}")
    if not (inplace and a.dtype == np.float32):
        a = a.astype(np.float32)
    h, w = a.shape
    F = sfft.rfft2(a, workers=1, overwrite_x=True)
    del a
    _wiener_spectrum(F, w, float(sigma), windows)
    return irfft2(F, w)


def _wiener_spectrum(F: np.ndarray, w: int, sigma: float, windows=WINDOWS) -> None:
    """Apply the Wiener DFT factor in place to the rfft2 half spectrum ``F`` (H x W//2+1) of an H x w image."""
    h = F.shape[0]
    r = max(windows) // 2
    wc = F.shape[1]
    s2 = float(sigma) ** 2 * (h * w)  # compare unscaled energies: |F|^2 = (H W) m^2
    fv = F.view(np.float32).reshape(h, wc, 2)
    # energy of the r columns of the other half that windows at the last columns reach
    src_cols = w - wc - np.arange(r)
    mirror = _energy(fv[:, src_cols])[(-np.arange(h)) % h]
    # exact factor on the border strips (see _border_factors), applied after the main rule
    strips = _border_factors(fv, mirror, wc, w, s2, windows)
    step = max(64, STRIP_ELEMS // (wc + r))
    prev, prev_a = None, 0
    for y0 in range(0, h, step):
        y1 = min(h, y0 + step)
        a_, b_ = max(0, y0 - r), min(h, y1 + r)
        ext = np.empty((b_ - a_, wc + r), np.float32)
        # rows above y0 were already filtered: take their energy from the previous strip
        if y0 > a_:
            ext[: y0 - a_] = prev[a_ - prev_a : y0 - prev_a]
        _energy(fv[y0:b_], out=ext[y0 - a_ :, :wc])
        ext[y0 - a_ :, wc:] = mirror[y0:b_]
        prev, prev_a = ext, a_
        fac = min_box_factor(ext, s2, windows)[y0 - a_ : y1 - a_, :wc]
        _apply_strips(fac, y0, y1, h, r, strips)
        f2 = cv2.merge([fac, fac])
        blk = fv[y0:y1]
        cv2.multiply(blk, f2, dst=blk)
    del fv


def _energy(fv: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """|F|^2 of a complex array seen as float32 (..., 2) -> float32 (...)."""
    sq = cv2.multiply(fv, fv) if fv.flags.c_contiguous else np.square(fv)
    res = np.add(sq[..., 0], sq[..., 1], out=out)
    return res


def _apply_strips(fac: np.ndarray, y0: int, y1: int, h: int, r: int, strips) -> None:
    """Overwrite the border strips of a factor block (rows y0..y1) with the exact symmetrised values."""
    top, bot, left = strips
    fac[:, : r + 1] = left[y0:y1]
    if y0 <= r:
        k = min(y1, r + 1)
        fac[: k - y0, r + 1 :] = top[y0:k, r + 1 :]
    if y1 > h - r:
        k = max(y0, h - r)
        fac[k - y0 :, r + 1 :] = bot[k - (h - r) : y1 - (h - r), r + 1 :]


def _border_factors(fv, mirror, wc, w, s2, windows):
    """Exact Wiener factor of the half spectrum on its border strips.

    The full-spectrum reference computes a factor ``f`` on the whole H x W
    array (zero padding at its borders) and returns ``real(ifft2(F * f))``,
    i.e. it applies the symmetrised factor ``(f(k, l) + f(-k, -l)) / 2``.
    Because the energy is Hermitian-symmetric, ``f(-k, -l) == f(k, l)`` except
    where the window at ``(k, l)`` or at ``(-k, -l)`` touches a border of the
    array: rows ``0..r`` and ``H-r..H-1`` and columns ``0..r`` of the half
    spectrum (r = max window // 2). There ``f`` is evaluated on small
    full-width / full-height strips of the full spectrum (rebuilt from the half
    by Hermitian symmetry) and averaged.

    Returns ``(top, bot, left)``: float32 arrays (r+1) x wc, r x wc, H x (r+1).
    """
    h = fv.shape[0]
    r = max(windows) // 2
    rows_m = (-np.arange(h)) % h  # sigma on rows
    row_set = np.r_[0 : 2 * r + 1, h - 2 * r : h]
    pos = np.full(h, -1)
    pos[row_set] = np.arange(len(row_set))
    e_rows = _energy(np.ascontiguousarray(fv[row_set]))  # (4r+1) x wc
    e_cols = _energy(np.ascontiguousarray(fv[:, : 2 * r + 1]))  # H x (2r+1)
    del mirror

    def full_rows(idx):  # e_full[idx, :], shape (len(idx), W)
        out = np.empty((len(idx), w), np.float32)
        out[:, :wc] = e_rows[pos[idx]]
        out[:, wc:] = e_rows[np.ix_(pos[rows_m[idx]], w - np.arange(wc, w))]
        return out

    def full_cols(idx):  # e_full[:, idx] for idx in 0..2r or W-2r..W-1, shape (H, len(idx))
        idx = np.asarray(idx)
        if idx[0] < wc:
            return np.ascontiguousarray(e_cols[:, idx])
        return np.ascontiguousarray(e_cols[np.ix_(rows_m, w - idx)])

    f_top = min_box_factor(full_rows(np.arange(0, 2 * r + 1)), s2, windows)[: r + 1]  # full rows 0..r
    f_bot = min_box_factor(full_rows(np.arange(h - 2 * r, h)), s2, windows)[r:]  # full rows H-r..H-1
    f_left = min_box_factor(full_cols(np.arange(0, 2 * r + 1)), s2, windows)[:, : r + 1]  # cols 0..r
    f_right = min_box_factor(full_cols(np.arange(w - 2 * r, w)), s2, windows)[:, r:]  # cols W-r..W-1
    cols_m = (-np.arange(wc)) % w  # sigma on the half's columns, in 0..W-1
    # f(sigma(k, l)) on the strips of the half spectrum
    top_m = np.take(np.concatenate([f_top[:1], f_bot[::-1]]), cols_m, axis=1)  # sigma(0)=0, sigma(k)=H-k
    bot_m = np.take(f_top[r:0:-1], cols_m, axis=1)  # k = H-r..H-1 -> sigma(k) = r..1
    left_m = np.concatenate([f_left[:, :1], f_right[:, ::-1]], axis=1)[rows_m]  # sigma(0)=0, sigma(l)=W-l
    top = (f_top[:, :wc] + top_m) * np.float32(0.5)
    bot = (f_bot[:, :wc] + bot_m) * np.float32(0.5)
    left = (f_left + left_m) * np.float32(0.5)
    return top.astype(np.float32), bot.astype(np.float32), left.astype(np.float32)
