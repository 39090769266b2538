"""Sensor pattern noise (PRNU) core: residuals, camera fingerprints, detection, ROC metrics.

The standard algorithm of the Binghamton PRNU toolbox / prnu-python, with a
fast float32 path (OpenCV polyphase wavelet transform, strip-wise window
filters, real FFTs):

* :func:`extract_residual` (uint8 RGB H x W x 3 -> float32 H x W residual),
  :func:`noise_rgb` (per-channel wavelet residual), and the steps
  :func:`rgb2gray`, :func:`zero_mean_total`, :func:`wiener_dft`;
* :func:`estimate_fingerprint` / :class:`FingerprintAccumulator` (streaming ML
  fingerprint), :func:`fingerprint_term` (``I * K`` of a tested image);
* :func:`ncc`, :func:`pce` (signed PCE at zero shift, or over all shifts),
  :func:`correlation_peak`; :func:`residual_spectrum` / :func:`pce_with_spectrum` (the zero-shift PCE of
  one residual against many terms, no inverse FFT);
* ROC: :func:`roc_curve`, :func:`roc_auc`, :func:`equal_error_rate`,
  :func:`tpr_at_fpr`, :func:`rates_at_threshold`;
* identification: :func:`score_residual` (quarter turns for turned shots), :func:`decide`;
* :func:`to_sensor_orientation`, :func:`check_same_size`.

Bad inputs raise :class:`~spnrestore.errors.BadImageError` /
:class:`~spnrestore.errors.SpnRestoreError`. The optional torch batch path is
``spnrestore.spn.torch_residual`` (imported on demand; it needs torch).
"""

from spnrestore.errors import BadImageError, SpnRestoreError

from ._checks import MIN_SIDE, check_image, check_same_size
from .detection import (PceResult, ResidualSpectrum, correlation_peak, crosscorr, ncc, pce, pce_with_spectrum,
                        residual_spectrum)
from .fingerprint import (FingerprintAccumulator, estimate_fingerprint, fingerprint_term, gray_intensity, inten_scale,
                          saturation)
from .orientation import from_sensor_orientation, to_sensor_orientation
from .scoring import UNKNOWN, decide, score_pair, score_residual
from .residual import (extract_residual, noise_rgb, residual_settings, rgb2gray, settings_difference, wiener_dft,
                       zero_mean_total)
from .roc import (
    PCE_THRESHOLD,
    equal_error_rate,
    rates_at_threshold,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)
from .wavelet_denoise import GRAY_WEIGHTS, LEVELS, WAVELET, WINDOWS, min_side

__all__ = [
    "BadImageError",
    "SpnRestoreError",
    "MIN_SIDE",
    "GRAY_WEIGHTS",
    "LEVELS",
    "WAVELET",
    "WINDOWS",
    "PCE_THRESHOLD",
    "min_side",
    "extract_residual",
    "residual_settings",
    "settings_difference",
    "noise_rgb",
    "rgb2gray",
    "zero_mean_total",
    "wiener_dft",
    "FingerprintAccumulator",
    "estimate_fingerprint",
    "fingerprint_term",
    "gray_intensity",
    "inten_scale",
    "saturation",
    "ncc",
    "pce",
    "correlation_peak",
    "crosscorr",
    "PceResult",
    "ResidualSpectrum",
    "residual_spectrum",
    "pce_with_spectrum",
    "roc_curve",
    "roc_auc",
    "equal_error_rate",
    "tpr_at_fpr",
    "rates_at_threshold",
    "score_residual",
    "score_pair",
    "decide",
    "UNKNOWN",
    "to_sensor_orientation",
    "from_sensor_orientation",
    "check_same_size",
    "check_image",
]
