"""Fast residual path vs the plain float64 reference (tests/spn_reference.py)."""

import numpy as np
import pytest

import spn_reference as ref
from spnrestore.spn import extract_residual, noise_rgb, rgb2gray, wiener_dft, zero_mean_total
from spnrestore.spn.wavelet_denoise import _filter_bank, denoise_planes

skdata = pytest.importorskip("skimage.data")


def _noisy(img, seed=0, sd=2.0):
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0, sd, img.shape), 0, 255).astype(np.uint8)


IMAGES = {
    "astronaut": lambda: _noisy(skdata.astronaut()),
    "chelsea-odd": lambda: _noisy(skdata.chelsea()[:299, :451], 1),  # odd H and W
    "coffee-crop": lambda: _noisy(skdata.coffee()[3:260, 5:396], 2),  # 257 x 391
    "min-size": lambda: _noisy(skdata.astronaut()[100:228, 50:179], 3),  # 128 x 129
    "coffee-even": lambda: _noisy(skdata.coffee()[:300, :450], 4),  # even, non-square: spectral zero-mean
    "rocket-even-odd-half": lambda: _noisy(skdata.rocket()[:254, :378], 5),  # H/2, W/2 odd
}


@pytest.fixture(params=sorted(IMAGES))
def image(request):
    return IMAGES[request.param]()


def test_db4_filters_match_pywt():
    pywt = pytest.importorskip("pywt")
    w = pywt.Wavelet("db4")
    for mine, theirs in zip(_filter_bank("db4"), (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi)):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-15)


def test_wavelet_denoise_per_channel(image):
    expect = ref.noise_extract(image)
    got = noise_rgb(image)
    assert got.dtype == np.float32 and got.shape == image.shape
    scale = np.abs(expect).max()
    assert np.abs(got - expect).max() < 1e-5 * scale + 1e-4
    for c in range(3):
        assert ref.ncc(got[:, :, c], expect[:, :, c]) > 0.99999


def test_noise_rgb_gray_input():
    img = _noisy(skdata.camera()[:200, :300])
    got = noise_rgb(img)
    assert got.shape == img.shape
    np.testing.assert_allclose(got, ref.noise_extract(img), atol=1e-3)


def test_gray_combination_in_wavelet_domain(image):
    """The single inverse transform of gray-weighted bands equals gray(per-channel residuals)."""
    import cv2

    planes = cv2.split(image)
    combined = denoise_planes(planes, 5.0, weights=(0.29893602, 0.58704307, 0.11402090))[0]
    separate = rgb2gray(noise_rgb(image))
    assert np.abs(combined - separate).max() < 1e-3


def test_other_wavelet_matches_pywt():
    pytest.importorskip("pywt")
    img = _noisy(skdata.astronaut()[:300, :280])
    got = denoise_planes([img[:, :, 1]], 5.0, wavelet="db8")[0]
    np.testing.assert_allclose(got, ref.noise_extract(img[:, :, 1], wavelet="db8"), atol=1e-3)


def test_rgb2gray_weights():
    rng = np.random.default_rng(0)
    x = rng.random((20, 30, 3)).astype(np.float32)
    np.testing.assert_allclose(rgb2gray(x), ref.rgb2gray(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(128, 128), (131, 140), (130, 141), (257, 391)])
def test_zero_mean_total(shape):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=shape) + np.linspace(0, 3, shape[1])).astype(np.float32)
    got = zero_mean_total(x)
    np.testing.assert_allclose(got, ref.zero_mean_total(x), atol=1e-5)
    for a in (0, 1):
        for b in (0, 1):
            ph = got[a::2, b::2].astype(np.float64)
            assert np.abs(ph.sum(axis=0)).max() < 1e-3 and np.abs(ph.sum(axis=1)).max() < 1e-3


@pytest.mark.parametrize("shape", [(128, 128), (131, 140), (130, 141), (512, 512), (1100, 700)])
@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_wiener_dft_matches_full_fft(shape, sigma):
    """The rfft half-spectrum path equals real(ifft2(F * f)) of the full spectrum, borders included."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape).astype(np.float32)
    x[5:20, 5:30] += 3  # strong low frequencies: the DC row/column matter
    got = wiener_dft(x, sigma)
    expect = ref.wiener_dft(x.astype(np.float64), sigma)
    assert got.dtype == np.float32
    assert np.abs(got - expect).max() < 1e-5 * np.abs(expect).max() + 1e-5


def test_full_residual(image):
    expect = ref.extract_residual(image)
    got = extract_residual(image)
    assert got.dtype == np.float32 and got.shape == image.shape[:2]
    value = ref.ncc(got, expect)
    print(f"NCC fast vs float64 reference: {value:.9f}")
    assert value >= 0.999
    assert np.abs(got - expect).max() < 1e-3 * np.abs(expect).max()


def test_residual_sigma_and_gray():
    img = _noisy(skdata.coffee()[:200, :300])
    np.testing.assert_allclose(extract_residual(img, sigma=3.0), ref.extract_residual(img, sigma=3.0), atol=2e-3)
    g = img[:, :, 1]
    assert ref.ncc(extract_residual(g), ref.extract_residual(g)) > 0.9999


def test_float_input_equals_uint8():
    img = _noisy(skdata.astronaut()[:200, :200])
    a = extract_residual(img)
    b = extract_residual(img.astype(np.float32))
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("shape", [(128, 130), (300, 450), (254, 378), (512, 512)])
def test_spectral_zero_mean_equals_spatial(shape):
    """For even sizes the zero-mean step runs on the spectrum; it must equal the spatial one."""
    from spnrestore.spn.residual import _finish

    rng = np.random.default_rng(7)
    x = (rng.normal(size=shape) * 3 + np.linspace(0, 5, shape[1]) + np.linspace(0, 2, shape[0])[:, None])
    x = x.astype(np.float32)
    x[::2, ::2] += 1.5  # a strong phase offset
    got = _finish(x.copy(), "test")
    zm = ref.zero_mean_total(x)
    expect = ref.wiener_dft(zm, zm.std(ddof=1))
    assert np.abs(got - expect).max() < 1e-4 * np.abs(expect).max() + 1e-5
