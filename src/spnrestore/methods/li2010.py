"""``li2010``: Li's enhanced sensor pattern noise (the residual's strong wavelet components attenuated).

Li, C.-T. (2010), "Source camera identification using enhanced sensor pattern noise", IEEE Trans.
Information Forensics and Security 5(2):280-287.

Li's hypothesis (Sec. III of the paper): the stronger a component of the noise residual is, the more
likely it comes from scene details (edges, texture) rather than from the sensor, so the less it should be
trusted. He proposes odd, pointwise "enhancing models" n -> n_e applied to every wavelet-domain
coefficient n(i, j) of the residual, followed by the inverse transform. The one implemented here is
his **Model 3** (the one public implementations of "Li's enhanced SPN" use, with alpha = 6)::

              |  1 - exp(-n)                       0 <= n <= alpha
    n_e(n) =  |  (1 - exp(-alpha)) * exp(alpha - n)      n >  alpha
              |  -1 + exp(n)                      -alpha <= n < 0
              |  (-1 + exp(-alpha)) * exp(-alpha - n)    n < -alpha

i.e. n_e = sign(n) * (1 - exp(-min(|n|, alpha))) * exp(-max(|n| - alpha, 0)): weak components grow
monotonically (almost linearly up to |n| ~ 1, saturating towards 1 by |n| ~ 3), components beyond
``alpha`` are attenuated exponentially; n_e is continuous (also at 0 and at +-alpha) and |n_e| < 1.
Setting ``model="gauss"`` uses instead the Gaussian-shaped model
n_e = sign(n) * exp(-0.5 * n**2 / alpha**2) (sign(0) = 0), which maps every weak component to about
+-1 and fades strong ones out (the form the issue statement quoted; kept as an option).

What "normalised" means here. The models act on magnitudes, so ``alpha`` only has a meaning once the
coefficients are on a known scale. Li applies them to the wavelet coefficients of the residual of 8-bit
images. This implementation makes the rule independent of the residual's units (the project's residuals
are in grey levels, but their level depends on the image, the denoiser's sigma and the later zero-mean
and Wiener steps): the coefficients are divided by their **root mean square, pooled over the whole
decomposition** (all detail sub-bands of all levels and the coarsest approximation)::

    n(i, j) = c(i, j) / s,    s = sqrt(mean over all coefficients of c**2)

so the normalised coefficients have unit mean square and ``alpha`` counts in multiples of the residual's
RMS: with alpha = 6, components weaker than about 1 RMS pass almost linearly, those between about 2 and
6 RMS are flattened to about 1, and only those beyond 6 RMS - which white sensor noise practically never
reaches, but scene leakage in a residual does - are attenuated. The normalisation is deliberately *one*
scale for all sub-bands, not one per sub-band: per-band scales would make a band dominated by scene
leakage look "normal" and defeat Li's "strong component = scene" rule, which compares components across
the whole residual. (Since the transform is orthogonal, s is also, up to the border extension, the RMS
of the residual in the pixel domain.)

Transform: the project's standard one, PyWavelets ``wavedec2`` with
:data:`spnrestore.spn.wavelet_denoise.WAVELET` (``db4``, the 8-tap Daubechies filter, Binghamton's
"Daubechies 8") and :data:`~spnrestore.spn.wavelet_denoise.LEVELS` (4) levels, ``'symmetric'`` extension;
``waverec2``, then cropped to the input's size. Sides too small for 4 levels (below 112 px) use fewer
levels (PyWavelets' ``dwt_max_level``), so no boundary warning is raised.

Output: float32 H x W rescaled so that its standard deviation equals the input residual's (the plain
residual's units; PCE and NCC do not depend on the scale). A zero or constant input gives zeros.
Everything runs in float32.
"""

from __future__ import annotations

import numpy as np
import pywt

from spnrestore.spn.wavelet_denoise import LEVELS, WAVELET

from .registry import COMPUTED, Method, in_plain_units, register, residual_std

__all__ = ["li2010_residual", "li2010_model", "DEFAULT_ALPHA", "MODELS"]

#: Li's default for Model 3 (the issue: "alpha = 6 by default").
DEFAULT_ALPHA = 6.0
#: The enhancing models: ``"3"`` Li's Model 3 (the default), ``"gauss"`` sign(n) * exp(-n^2 / (2 alpha^2)).
MODELS = ("3", "gauss")


def li2010_model(n: np.ndarray, alpha: float = DEFAULT_ALPHA, model: str = "3") -> np.ndarray:
    """The enhancing model applied elementwise to normalised coefficients ``n`` (a new float array of the
    same dtype as ``n``; see the module docstring for the formulas)."""
    alpha = _check_alpha(alpha)
    model = _check_model(model)
    n = np.asarray(n)
    if not np.issubdtype(n.dtype, np.floating):
        n = n.astype(np.float64)
    mag = np.abs(n)
    out = _magnitude(mag, alpha, model)
    return np.copysign(out, n, out=out) if model == "3" else np.multiply(out, np.sign(n), out=out)


def li2010_residual(plain: np.ndarray, alpha: float = DEFAULT_ALPHA, *, model: str = "3") -> np.ndarray:
    """Li's (2010) enhanced residual of the plain residual ``plain`` (float H x W, grey levels).

    Wavelet transform (db4, 4 levels), coefficients divided by their pooled RMS, the enhancing model
    (``model="3"``: Li's Model 3, the default; ``"gauss"``: sign(n) exp(-n^2 / 2 alpha^2)) with parameter
    ``alpha``, inverse transform, crop; float32 H x W with the standard deviation of ``plain``.
    """
    alpha = _check_alpha(alpha)
    model = _check_model(model)
    x = _as_residual(plain, "li2010_residual")
    std_in = residual_std(x)
    if not np.isfinite(std_in):
        raise ValueError("li2010_residual: the residual has NaN or infinite values")
    if std_in == 0.0:
        return np.zeros(x.shape, np.float32)

    wavelet = pywt.Wavelet(WAVELET)
    levels = min(LEVELS, pywt.dwt_max_level(min(x.shape), wavelet.dec_len))
    coeffs = pywt.wavedec2(x, wavelet, mode="symmetric", level=levels)
    arrays = [coeffs[0], *(band for detail in coeffs[1:] for band in detail)]
    count = sum(a.size for a in arrays)
    sumsq = sum(float(np.einsum("ij,ij->", a, a, dtype=np.float64)) for a in arrays)
    scale = np.sqrt(sumsq / count)
    if not scale > 0.0:
        return np.zeros(x.shape, np.float32)

    inv = np.float32(1.0 / scale)
    for a in arrays:  # in place: a <- sign(a) * n_e(|a| / s)
        mag = np.abs(a)
        mag *= inv
        out = _magnitude(mag, alpha, model)
        if model == "3":
            np.copysign(out, a, out=a)
        else:
            np.multiply(out, np.sign(a), out=a)

    out = pywt.waverec2(coeffs, wavelet, mode="symmetric")[: x.shape[0], : x.shape[1]]
    return in_plain_units(out, std_in)


def _magnitude(mag: np.ndarray, alpha: float, model: str) -> np.ndarray:
    """|n_e| as a function of |n| (``mag``, which may be overwritten); a new array or ``mag`` itself."""
    a = mag.dtype.type(alpha)
    if model == "gauss":
        np.square(mag, out=mag)
        mag *= mag.dtype.type(-0.5 / (alpha * alpha))
        return np.exp(mag, out=mag)
    # Model 3: (1 - exp(-min(|n|, alpha))) * exp(min(alpha - |n|, 0))
    rise = np.minimum(mag, a)
    np.negative(rise, out=rise)
    np.expm1(rise, out=rise)
    np.negative(rise, out=rise)
    np.subtract(a, mag, out=mag)
    np.minimum(mag, 0, out=mag)
    np.exp(mag, out=mag)
    mag *= rise
    return mag


def _check_alpha(alpha) -> float:
    alpha = float(alpha)
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"li2010: alpha must be a positive number, got {alpha!r}")
    return alpha


def _check_model(model) -> str:
    model = str(model)
    if model not in MODELS:
        raise ValueError(f"li2010: model must be one of {', '.join(MODELS)}, got {model!r}")
    return model


def _as_residual(plain, who: str) -> np.ndarray:
    x = np.asarray(plain)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"{who}: expected a non-empty 2-D residual, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{who}: expected a real-valued residual, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


LI2010 = register(Method(
    "li2010", f"Li 2010 enhanced SPN (wavelet coefficients normalised, attenuation model 3, alpha = {DEFAULT_ALPHA:g})",
    COMPUTED, lambda rgb, plain, quality, context: li2010_residual(plain),
    reference="Li, IEEE TIFS 5(2):280-287, 2010"))
