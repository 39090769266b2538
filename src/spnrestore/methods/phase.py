"""``phase``: the phase-only (spectrally whitened) residual of Kang, Li, Qu and Huang.

Kang, X., Li, Y., Qu, Z., Huang, J. (2012), "Enhancing source camera identification performance with a
camera reference phase sensor pattern noise", IEEE Trans. Information Forensics and Security
7(2):393-402.

Kang et al. observe that the sensor pattern noise is close to white, while the scene details leaking
into a noise residual concentrate their energy in comparatively few (mostly low) frequencies and in the
directions of the image's edges. Whitening the residual's spectrum - keeping every DFT coefficient's phase
and setting its magnitude to 1 - removes that spectral imbalance::

    W_phase = real(IDFT2( DFT2(W) / |DFT2(W)| ))       (a coefficient of magnitude 0 stays 0)

In the paper this whitening builds the *reference*: the noise residual of each of the camera's images is
whitened, the whitened spectra are averaged and inverse transformed, giving the "camera reference phase
SPN"; the query (test) image's residual is correlated with it as extracted, not whitened (and scored with
the correlation over circular cross-correlation norm, CCN, which the paper introduces, instead of PCE).
This project keeps its fingerprints as they are and applies the same whitening to the *query*
residual instead (one residual at a time, which is what a residual method computes); for a single
residual the whitening is exactly the formula above.

Implementation: real FFTs (``scipy.fft.rfft2`` / ``irfft2`` with ``s`` = the input's shape, float32 /
complex64). The whitened spectrum of a real signal is still Hermitian, so ``irfft2`` of the whitened half
spectrum equals ``real(ifft2(...))`` of the whitened full spectrum. The output is float32 H x W rescaled
so that its standard deviation equals the input residual's (the plain residual's units; PCE and NCC do
not depend on the scale). A zero or constant input gives zeros.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from .registry import COMPUTED, Method, in_plain_units, register, residual_std

__all__ = ["phase_residual", "whiten_spectrum"]


def whiten_spectrum(spectrum: np.ndarray) -> np.ndarray:
    """``spectrum / |spectrum|`` in place (complex array; coefficients of magnitude 0 become 0)."""
    mag = np.abs(spectrum)
    nonzero = mag > 0
    np.divide(spectrum, mag, out=spectrum, where=nonzero)
    spectrum[~nonzero] = 0
    return spectrum


def phase_residual(plain: np.ndarray) -> np.ndarray:
    """The phase-only residual of ``plain`` (float H x W): its spectrum whitened to unit magnitude,
    back to the pixel domain; float32 H x W with the standard deviation of ``plain``."""
    x = np.asarray(plain)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"phase_residual: expected a non-empty 2-D residual, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"phase_residual: expected a real-valued residual, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    std_in = residual_std(x)
    if not np.isfinite(std_in):
        raise ValueError("phase_residual: the residual has NaN or infinite values")
    if std_in == 0.0:
        return np.zeros(x.shape, np.float32)
    spectrum = whiten_spectrum(scipy.fft.rfft2(x))
    out = scipy.fft.irfft2(spectrum, s=x.shape, overwrite_x=True)
    return in_plain_units(out, std_in)


PHASE = register(Method(
    "phase", "Kang et al. 2012 phase-only whitening of the query residual", COMPUTED,
    lambda rgb, plain, quality, context: phase_residual(plain),
    reference="Kang, Li, Qu, Huang, IEEE TIFS 7(2):393-402, 2012"))
