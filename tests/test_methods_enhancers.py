"""The classic residual enhancers: Li's (2010) enhanced SPN and Kang et al.'s (2012) phase-only residual.

Each is checked against a direct, slow implementation of its formula written out here (full complex
FFTs, explicit loops over the coefficients), for shape/dtype/scale, for degenerate inputs, and for the
property it exists for on a synthetic residual (sensor noise K*I plus strong scene leakage).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import pywt
from scipy import ndimage

from spnrestore.methods.li2010 import li2010_model, li2010_residual
from spnrestore.methods.phase import phase_residual
from spnrestore.spn.wavelet_denoise import LEVELS, WAVELET


def _corr(a, b) -> float:
    a = np.asarray(a, np.float64) - np.mean(a)
    b = np.asarray(b, np.float64) - np.mean(b)
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _random_residual(shape, seed=0, offset=0.3):
    # a non-zero mean keeps the DC coefficient well away from 0 (its phase is then well defined)
    return (np.random.default_rng(seed).normal(0.0, 2.0, shape) + offset).astype(np.float32)


# --- slow references -----------------------------------------------------------------------------------


def _model3(n: float, alpha: float) -> float:
    """Li's Model 3, branch by branch."""
    if 0 <= n <= alpha:
        return 1 - math.exp(-n)
    if n > alpha:
        return (1 - math.exp(-alpha)) * math.exp(alpha - n)
    if -alpha <= n < 0:
        return -1 + math.exp(n)
    return (-1 + math.exp(-alpha)) * math.exp(alpha + n)


def _gauss(n: float, alpha: float) -> float:
    if n == 0:
        return 0.0
    return math.copysign(math.exp(-0.5 * n * n / (alpha * alpha)), n)


def _li2010_slow(plain, alpha=6.0, model=_model3, levels=LEVELS):
    x = np.asarray(plain, np.float64)
    coeffs = pywt.wavedec2(x, WAVELET, mode="symmetric", level=levels)
    bands = [coeffs[0]] + [band for detail in coeffs[1:] for band in detail]
    sumsq = 0.0
    count = 0
    for band in bands:
        for value in band.flat:
            sumsq += value * value
            count += 1
    s = math.sqrt(sumsq / count)
    new = [np.empty_like(band) for band in bands]
    for band, out in zip(bands, new):
        for idx in np.ndindex(band.shape):
            out[idx] = model(band[idx] / s, alpha)
    rebuilt = [new[0]] + [tuple(new[1 + 3 * k: 4 + 3 * k]) for k in range(levels)]
    y = pywt.waverec2(rebuilt, WAVELET, mode="symmetric")[: x.shape[0], : x.shape[1]]
    return y * (np.std(x) / np.std(y))


def _phase_slow(plain):
    x = np.asarray(plain, np.float64)
    spectrum = np.fft.fft2(x)
    white = np.zeros_like(spectrum)
    for idx in np.ndindex(spectrum.shape):
        mag = abs(spectrum[idx])
        if mag != 0:
            white[idx] = spectrum[idx] / mag
    y = np.real(np.fft.ifft2(white))
    return y * (np.std(x) / np.std(y))


# --- li2010 ----------------------------------------------------------------------------------------------


def test_li2010_model_formula():
    n = np.linspace(-20, 20, 4001)
    for alpha in (2.0, 6.0, 7.5):
        got = li2010_model(n, alpha)
        want = np.array([_model3(v, alpha) for v in n])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(li2010_model(-n, alpha), -got)  # odd
        assert np.abs(got).max() < 1
        assert li2010_model(np.array([alpha]), alpha)[0] == pytest.approx(1 - math.exp(-alpha))
    got = li2010_model(n, 6.0, "gauss")
    np.testing.assert_allclose(got, [_gauss(v, 6.0) for v in n], rtol=1e-12, atol=1e-15)


def test_li2010_matches_direct_implementation():
    plain = _random_residual((160, 128), seed=1)  # 128 px: the 4 levels of the standard residual
    assert pywt.dwt_max_level(128, pywt.Wavelet(WAVELET).dec_len) >= LEVELS
    want = _li2010_slow(plain)
    got = li2010_residual(plain)
    assert got.dtype == np.float32 and got.shape == plain.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * want.std())


def test_li2010_gauss_model_and_other_alpha_match_direct_implementation():
    plain = _random_residual((128, 144), seed=2)
    want = _li2010_slow(plain, alpha=2.5, model=_gauss)
    got = li2010_residual(plain, 2.5, model="gauss")
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * want.std())


def test_li2010_small_odd_shape_uses_fewer_levels_without_warnings():
    plain = _random_residual((67, 45), seed=3)
    levels = pywt.dwt_max_level(45, pywt.Wavelet(WAVELET).dec_len)
    assert 0 < levels < LEVELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = li2010_residual(plain)
    assert got.dtype == np.float32 and got.shape == (67, 45)
    np.testing.assert_allclose(got, _li2010_slow(plain, levels=levels), rtol=0, atol=2e-5 * plain.std())


# --- phase -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(64, 48), (63, 47)])
def test_phase_matches_direct_implementation(shape):
    plain = _random_residual(shape, seed=4)
    want = _phase_slow(plain)
    got = phase_residual(plain)
    assert got.dtype == np.float32 and got.shape == plain.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * want.std())


def test_phase_spectrum_is_flat():
    got = phase_residual(_random_residual((96, 80), seed=5)).astype(np.float64)
    mag = np.abs(np.fft.fft2(got))
    np.testing.assert_allclose(mag, mag.mean(), rtol=1e-4)


# --- both ------------------------------------------------------------------------------------------------

ENHANCERS = [li2010_residual, phase_residual]


@pytest.mark.parametrize("enhance", ENHANCERS)
def test_shape_dtype_and_std_preserved(enhance):
    for dtype in (np.float32, np.float64):
        plain = _random_residual((130, 150), seed=6).astype(dtype) * 3.5
        got = enhance(plain)
        assert got.dtype == np.float32 and got.shape == plain.shape
        assert np.isfinite(got).all()
        assert float(got.std(dtype=np.float64)) == pytest.approx(float(plain.std(dtype=np.float64)), rel=1e-5)


@pytest.mark.parametrize("enhance", ENHANCERS)
def test_scale_equivariant(enhance):
    plain = _random_residual((128, 128), seed=7)
    np.testing.assert_allclose(enhance(plain * 40.0), 40.0 * enhance(plain), rtol=0, atol=1e-3)


@pytest.mark.parametrize("enhance", ENHANCERS)
@pytest.mark.parametrize("value", [0.0, 3.25, -117.0])
def test_zero_and_constant_give_zeros_without_warnings(enhance, value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in ((128, 96), (7, 5)):
            got = enhance(np.full(shape, value, np.float32))
            assert got.dtype == np.float32 and got.shape == shape
            assert not got.any()


@pytest.mark.parametrize("enhance", ENHANCERS)
def test_bad_input_raises(enhance):
    with pytest.raises(ValueError):
        enhance(np.zeros((4, 4, 3), np.float32))
    bad = _random_residual((32, 32))
    bad[3, 4] = np.nan
    with pytest.raises(ValueError):
        enhance(bad)


def test_li2010_bad_parameters_raise():
    plain = _random_residual((32, 32))
    for alpha in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            li2010_residual(plain, alpha)
    with pytest.raises(ValueError):
        li2010_residual(plain, model="7")


# --- the property: strong scene leakage is suppressed ------------------------------------------------------


def _synthetic(amplitude: float, scene: str):
    """(residual, K*I): sensor noise K*I plus a scene component ``amplitude`` times its std at peak."""
    rng = np.random.default_rng(11)
    h, w = 192, 160
    yy, xx = np.mgrid[0:h, 0:w]
    intensity = 120 + 60 * np.sin(xx / 40.0) * np.cos(yy / 50.0)
    prnu = rng.normal(0.0, 0.01, (h, w)) * intensity
    if scene == "edges":  # what a denoiser leaves of sharp edges: a thin high-pass band along them
        shapes = np.zeros((h, w))
        shapes[40:120, 30:100] = 1
        shapes[(yy - 140) ** 2 + (xx - 120) ** 2 < 30**2] = -1
        shapes[:, 140:] += 0.5
        component = shapes - ndimage.gaussian_filter(shapes, 1.0)
    else:  # a strong smooth (low-frequency) component
        component = np.sin(xx / 25.0 + yy / 35.0)
    component *= amplitude * prnu.std() / np.abs(component).max()
    return (prnu + component).astype(np.float32), prnu


@pytest.mark.parametrize("scene", ["edges", "smooth"])
def test_li2010_attenuates_strong_scene_components(scene):
    residual, prnu = _synthetic(20.0, scene)
    plain, enhanced = _corr(residual, prnu), _corr(li2010_residual(residual), prnu)
    assert plain < 0.6  # the scene dominates the plain residual
    assert enhanced > plain + 0.25


def test_li2010_keeps_pure_sensor_noise():
    # without scene leakage the enhancer costs little: weak components pass almost linearly
    _, prnu = _synthetic(0.0, "smooth")
    assert _corr(li2010_residual(prnu.astype(np.float32)), prnu) > 0.93


def test_phase_suppresses_a_strong_smooth_component():
    # a smooth scene component sits in a few low frequencies; whitening gives them the weight of any other
    residual, prnu = _synthetic(20.0, "smooth")
    plain, whitened = _corr(residual, prnu), _corr(phase_residual(residual), prnu)
    assert plain < 0.1
    assert whitened > 0.8
