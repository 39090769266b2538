"""``plain``: the standard residual (wavelet denoiser, zero-mean, Wiener in the DFT domain) as it is."""

from .registry import COMPUTED, Method, register

PLAIN = register(Method(
    "plain", "the standard residual (wavelet denoising, zero-mean, Wiener filter in the DFT domain)", COMPUTED,
    lambda rgb, plain, quality, context: plain,
    reference="Lukas, Fridrich, Goljan 2006; Chen, Fridrich, Goljan, Lukas 2008"))
