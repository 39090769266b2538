"""Fingerprint estimation: streaming == in-memory reference, and a synthetic sensor."""

import numpy as np
import pytest

import spn_reference as ref
from spnrestore.errors import BadImageError, SpnRestoreError
from spnrestore.spn import (
    FingerprintAccumulator,
    estimate_fingerprint,
    extract_residual,
    fingerprint_term,
    inten_scale,
    pce,
    saturation,
)

skdata = pytest.importorskip("skimage.data")


def _scenes(n, shape=(192, 256), seed=0):
    """Textured natural scenes: random crops/flips of skimage sample images."""
    rng = np.random.default_rng(seed)
    srcs = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    out = []
    for i in range(n):
        s = srcs[i % len(srcs)]
        y = rng.integers(0, s.shape[0] - shape[0] + 1)
        x = rng.integers(0, s.shape[1] - shape[1] + 1)
        crop = s[y : y + shape[0], x : x + shape[1]].astype(np.float64)
        if i % 2:
            crop = crop[:, ::-1]
        out.append(crop)
    return out


def _sensor(scenes, k, noise=1.5, seed=1):
    rng = np.random.default_rng(seed)
    return [np.clip(s * (1 + k[:, :, None]) + rng.normal(0, noise, s.shape), 0, 255).astype(np.uint8) for s in scenes]


def test_inten_scale_and_lut():
    v = np.arange(256)
    got = inten_scale(v)
    np.testing.assert_allclose(got, ref.inten_scale(v))
    assert got[251] == pytest.approx(251 / 252) and got[252] == 1.0 and got[255] == pytest.approx(np.exp(-9 / 6))


def test_saturation_maps():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 200, (40, 50, 3)).astype(np.uint8)
    assert (saturation(img) == 1).all()
    img[10:14, 10:14, 0] = 255  # flat saturated block in R
    img[30, 30, 0] = 255  # isolated max pixel: not flat, kept
    img[0, 5, 1] = 251  # G max 251, isolated
    img[0, 6, 2] = 240
    s = saturation(img)
    np.testing.assert_array_equal(s, ref.saturation(img))
    assert s[10:14, 10:14, 0].sum() == 0 and s[30, 30, 0] == 1 and (s[:, :, 1:] == 1).all()
    np.testing.assert_array_equal(saturation(img, compat="prnu-python"), ref.saturation(img, compat=True))
    # wrap-around neighbours count as in prnu-python (np.roll)
    img2 = rng.integers(0, 200, (40, 50, 3)).astype(np.uint8)
    img2[0, 3, 2] = img2[-1, 3, 2] = 255
    np.testing.assert_array_equal(saturation(img2), ref.saturation(img2))
    assert saturation(img2)[0, 3, 2] == 0


@pytest.mark.parametrize("compat", ["standard", "prnu-python"])
def test_streaming_equals_in_memory_reference(compat):
    rng = np.random.default_rng(3)
    k = rng.normal(0, 0.02, (192, 256))
    imgs = _sensor(_scenes(4), k)
    imgs[1][20:30, 40:60, :] = 255  # a saturated area
    got = estimate_fingerprint(iter(imgs), saturation_compat=compat)  # a generator: streamed
    expect = ref.fingerprint(imgs, compat=(compat == "prnu-python"))
    assert got.dtype == np.float32 and got.shape == (192, 256)
    assert ref.ncc(got, expect) > 0.99999
    assert np.abs(got - expect).max() < 1e-4 * np.abs(expect).max()


@pytest.mark.parametrize("kind", ["odd-width RGB", "odd-height gray", "float RGB", "wrapped saturation",
                                  "large saturated area", "large saturated area, float"])
@pytest.mark.parametrize("compat", ["standard", "prnu-python"])
def test_fast_add_matches_reference_on_a_generated_camera(kind, compat):
    """The accumulator's fast add (residuals and running sums in the split column layout, saturation
    found sparsely) against the straightforward reference (issue 16 goal: NCC >= 0.9999)."""
    rng = np.random.default_rng(11)
    shape = {"odd-width RGB": (160, 203), "odd-height gray": (171, 200)}.get(kind, (160, 200))
    k = rng.normal(0, 0.02, shape)
    imgs = _sensor(_scenes(3, shape, seed=12), k, seed=13)
    imgs[0][5:15, 30:50] = 255  # flat saturated areas
    imgs[2][40:44, 7:9, 1] = 255
    if kind == "wrapped saturation":  # max-valued pixels whose only equal neighbour is across the border
        for im in imgs:
            im[0, 3, 2] = im[-1, 3, 2] = 255
            im[8, 0, 0] = im[8, -1, 0] = 255
    if kind.startswith("large saturated area"):  # more than 1/16 of a channel: the dense saturation mask
        imgs[1][:60, :, 0] = 255
        imgs[1][100:103, 50:90, 0] = 255
    if kind == "odd-height gray":
        imgs = [np.ascontiguousarray(im[:, :, 1]) for im in imgs]
    if kind in ("float RGB", "large saturated area, float"):
        imgs = [im.astype(np.float32) for im in imgs]
    got = estimate_fingerprint(imgs, saturation_compat=compat)
    expect = ref.fingerprint(imgs, compat=(compat == "prnu-python"))
    assert got.shape == shape and ref.ncc(got, expect) >= 0.9999
    assert np.abs(got - expect).max() < 1e-4 * np.abs(expect).max()


def test_accumulator_api_and_refinalize():
    rng = np.random.default_rng(4)
    k = rng.normal(0, 0.02, (160, 200))
    imgs = _sensor(_scenes(3, (160, 200)), k)
    acc = FingerprintAccumulator()
    assert acc.count == 0 and acc.shape is None
    acc.add(imgs[0], name="a.jpg")
    acc.add(imgs[1])
    k2 = acc.finalize()
    acc.add(imgs[2])
    assert acc.count == 3 and acc.shape == (160, 200, 3)
    k3 = acc.finalize()
    assert ref.ncc(k3, estimate_fingerprint(imgs)) > 0.999999
    assert not np.allclose(k2, k3)


def test_synthetic_sensor_fingerprint_correlates_with_truth():
    rng = np.random.default_rng(5)
    shape = (192, 256)
    k_true = rng.normal(0, 0.03, shape)
    imgs = _sensor(_scenes(12, shape, seed=7), k_true, noise=1.0, seed=8)
    k = estimate_fingerprint(imgs)
    c = ref.ncc(k, k_true)
    print(f"NCC(estimated K, true K) with 12 images: {c:.3f}")
    assert c > 0.5
    # detection: a new image of this sensor vs one of another sensor
    other = rng.normal(0, 0.03, shape)
    test_scene = _scenes(1, shape, seed=99)[0]
    same = _sensor([test_scene], k_true, noise=1.0, seed=10)[0]
    diff = _sensor([test_scene], other, noise=1.0, seed=11)[0]
    p_same = pce(extract_residual(same), fingerprint_term(k, same))
    p_diff = pce(extract_residual(diff), fingerprint_term(k, diff))
    print(f"PCE same sensor {p_same:.1f}, other sensor {p_diff:.1f}")
    assert p_same > 60 and abs(p_diff) < 60


def test_size_mismatch_and_empty():
    imgs = _sensor(_scenes(2, (160, 200)), np.zeros((160, 200)))
    acc = FingerprintAccumulator()
    acc.add(imgs[0], name="first.jpg")
    with pytest.raises(BadImageError, match="first.jpg.*crop or rotate"):
        acc.add(np.ascontiguousarray(imgs[1][:150]), name="second.jpg")
    with pytest.raises(BadImageError, match="rotated"):
        acc.add(np.ascontiguousarray(np.rot90(imgs[1])), name="rot.jpg")
    with pytest.raises(SpnRestoreError, match="no image"):
        FingerprintAccumulator().finalize()
    with pytest.raises(BadImageError, match="image #1.*constant"):
        estimate_fingerprint([imgs[0], np.zeros_like(imgs[0])])


def test_fingerprint_term():
    rng = np.random.default_rng(6)
    k = rng.normal(size=(150, 160)).astype(np.float32)
    img = rng.integers(0, 256, (150, 160, 3)).astype(np.uint8)
    t = fingerprint_term(k, img)
    np.testing.assert_allclose(t, ref.rgb2gray(img) / 255 * k, rtol=1e-5, atol=1e-6)
    with pytest.raises(SpnRestoreError, match="rotate|sensor orientation"):
        fingerprint_term(k, np.ascontiguousarray(np.rot90(img)))


@pytest.mark.parametrize("shape", [(160, 203, 3), (171, 200), (129, 131, 3)])
def test_fingerprint_denoiser_path_equals_the_residual_path(shape):
    """The accumulator's denoiser options (split column layout, row filters as matrix products) give the
    per-channel residuals of the scoring path, reordered, within float32 rounding."""
    from spnrestore.spn.wavelet_denoise import denoise_image, merge_columns, split_columns

    img = np.random.default_rng(14).integers(0, 256, shape).astype(np.uint8)
    plain = denoise_image(img, 5.0)
    fast = denoise_image(img, 5.0, split_cols=True, gemm=True, workspace={})
    for p, f in zip(plain, fast):
        assert np.abs(split_columns(p) - f).max() <= 1e-5 * np.abs(p).max()
        np.testing.assert_array_equal(merge_columns(split_columns(p)), p)
