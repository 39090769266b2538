"""Plain float64 reference of the PRNU pipeline (numpy + PyWavelets + scipy), for tests.

A straightforward transcription of the standard algorithm (Binghamton toolbox /
prnu-python ``prnu/functions.py``), step by step, with no speed tricks:
full complex FFTs, scipy ``uniform_filter`` for every window, float64
throughout. The fast path in ``spnrestore.spn`` is checked against it.

Deliberate choices, shared with the fast path:
* wavelet ``db4`` (8 taps, Binghamton's ``MakeONFilter('Daubechies', 8)``);
  prnu-python itself passes ``'db8'`` (16 taps) to PyWavelets: the ``wavelet``
  argument below lets a test use either.
* fingerprint numerator ``W * I / 255`` and denominator ``(IntenScale * Saturation)**2``
  exactly as prnu-python's ``extract_multiple_aligned``.
"""

from __future__ import annotations

import numpy as np
import pywt
from scipy.ndimage import uniform_filter

GRAY = np.array([0.29893602, 0.58704307, 0.11402090])


def wiener_adaptive(x, noise_var, windows=(3, 5, 7, 9)):
    x = np.asarray(x, np.float64)
    energy = x**2
    v = np.stack([uniform_filter(energy, w, mode="constant") for w in windows], axis=-1)
    v = np.maximum(v - noise_var, 0.0).min(axis=-1)
    return x * noise_var / (v + noise_var)


def noise_extract(im, sigma=5.0, levels=4, wavelet="db4"):
    """Per-channel wavelet residual, float64, shape of ``im`` (H x W or H x W x C)."""
    im = np.asarray(im, np.float64)
    squeeze = im.ndim == 2
    if squeeze:
        im = im[:, :, None]
    out = np.zeros(im.shape, np.float64)
    for ch in range(im.shape[2]):
        coeffs = pywt.wavedec2(im[:, :, ch], wavelet, mode="symmetric", level=levels)
        coeffs[0] = np.zeros_like(coeffs[0])
        for i in range(1, len(coeffs)):
            coeffs[i] = tuple(wiener_adaptive(c, sigma**2) for c in coeffs[i])
        rec = pywt.waverec2(coeffs, wavelet, mode="symmetric")
        out[:, :, ch] = rec[: im.shape[0], : im.shape[1]]
    return out[:, :, 0] if squeeze else out


def rgb2gray(x):
    x = np.asarray(x, np.float64)
    if x.ndim == 2:
        return x.copy()
    if x.shape[2] == 1:
        return x[:, :, 0].copy()
    return x @ GRAY


def zero_mean(x):
    x = x - x.mean()
    x = x - x.mean(axis=1, keepdims=True)
    return x - x.mean(axis=0, keepdims=True)


def zero_mean_total(x):
    x = np.array(x, np.float64)
    for a in (0, 1):
        for b in (0, 1):
            x[a::2, b::2] = zero_mean(x[a::2, b::2])
    return x


def wiener_dft(x, sigma):
    h, w = x.shape
    F = np.fft.fft2(x)
    mag = np.abs(F / np.sqrt(h * w))
    mag_f = wiener_adaptive(mag, sigma**2)
    zero = mag == 0
    mag[zero] = 1
    mag_f[zero] = 0
    return np.real(np.fft.ifft2(F * mag_f / mag))


def extract_residual(im, sigma=5.0, levels=4, wavelet="db4"):
    w = noise_extract(im, sigma, levels, wavelet)
    w = zero_mean_total(rgb2gray(w))
    return wiener_dft(w, w.std(ddof=1))


def inten_scale(im):
    im = np.asarray(im, np.float64)
    out = np.exp(-((im - 252.0) ** 2) / 6.0)
    low = im < 252
    out[low] = im[low] / 252.0
    return out


def saturation(im, compat=False):
    """Saturation mask (1 = keep), H x W x C float64.

    ``compat=False``: a pixel of a channel whose maximum is above 250 is masked
    when it equals that maximum and at least one of its 4 neighbours (circular)
    equals it too; other channels are all ones.
    ``compat=True``: prnu-python's ``saturation`` bit for bit (when the image
    maximum is >= 250, channels whose own maximum is <= 250 get the map
    "some 4-neighbour equal", a quirk of that code).
    """
    im = np.asarray(im)
    if im.ndim == 2:
        im = im[:, :, None]
    x = im.astype(np.float64)
    if (compat and x.max() < 250) or (not compat and x.max() <= 250):
        return np.ones(x.shape)
    flat = (
        (x == np.roll(x, 1, axis=1))
        | (x == np.roll(x, 1, axis=0))
        | (x == np.roll(x, -1, axis=1))
        | (x == np.roll(x, -1, axis=0))
    )
    out = flat.astype(np.float64) if compat else np.ones(x.shape)
    for c in range(x.shape[2]):
        mx = x[:, :, c].max()
        if mx > 250:
            out[:, :, c] = ~((x[:, :, c] == mx) & flat[:, :, c])
    return out


def fingerprint(images, sigma=5.0, levels=4, wavelet="db4", compat=False):
    """In-memory ML fingerprint (all residuals at once), float64 H x W."""
    images = list(images)
    num = 0.0
    den = 0.0
    for im in images:
        w = noise_extract(im, sigma, levels, wavelet)
        if w.ndim == 2:
            w = w[:, :, None]
        x = np.asarray(im, np.float64)
        if x.ndim == 2:
            x = x[:, :, None]
        num = num + w * x / 255.0
        den = den + (inten_scale(x) * saturation(im, compat=compat)) ** 2
    k = rgb2gray(num / (den + 1.0))
    k = zero_mean_total(k)
    return wiener_dft(k, k.std(ddof=1))


def crosscorr(a, b):
    """Circular cross-correlation c[s] = sum_x a[x + s] * b[x] of the mean-removed inputs (full FFT)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a - a.mean()
    b = b - b.mean()
    return np.real(np.fft.ifft2(np.fft.fft2(a) * np.conj(np.fft.fft2(b))))


def pce(a, b, neighborhood=11, search=False):
    c = crosscorr(a, b)
    if search:
        peak = np.unravel_index(np.argmax(c), c.shape)
    else:
        peak = (0, 0)
    r = neighborhood // 2
    mask = np.ones(c.shape, bool)
    ys = (peak[0] + np.arange(-r, r + 1)) % c.shape[0]
    xs = (peak[1] + np.arange(-r, r + 1)) % c.shape[1]
    mask[np.ix_(ys, xs)] = False
    energy = np.mean(c[mask] ** 2)
    v = c[peak]
    return float(np.sign(v) * v**2 / energy), peak


def ncc(a, b):
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))
