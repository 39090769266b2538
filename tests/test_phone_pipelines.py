"""Phone processing in the synthetic generator (:mod:`spnrestore.dataset.phone`): each step checked by the
statistics it must change, every pipeline kind by the exactness of its target, and the classic generator
(phone probabilities 0) bit for bit against the outputs it gave before the phone steps existed."""

from __future__ import annotations

import io
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image

from spnrestore.dataset import phone
from spnrestore.dataset.phone_tables import PHONE_TABLES
from spnrestore.dataset.synthetic import PIPELINE_KINDS, SensorRanges, example_seed, ranges_for_kind, synthetic_photo
from spnrestore.jpeg import IJG_TABLES
from spnrestore.spn import extract_residual

PLAIN = SensorRanges(camera_jpeg_probability=0, denoise_probability=0, sharpen_probability=0,
                     resample_probability=0, prnu_strength=(0.02, 0.02))
"""No classic in-camera step besides demosaicing and the tone curve: what each phone step does shows alone."""

# Figures of synthetic_photo(example_seed(s, 0, s), size, q, SensorRanges()) with the generator as it was
# before the phone steps (commit of 2026-11-27), where its outputs and the phone-off outputs were equal byte for
# byte (sha256): mean of the JPEG's pixels and std of the target. Compared to 1e-4 relative, not bit for bit:
# another CPU may round OpenCV's float work in a last bit.
CLASSIC = [((0, 64, 90), 80.612060546875, 0.1015041321516037),
           ((1, 96, 50), 82.50101273148148, 0.11531359702348709),
           ((2, 128, 100), 86.46291097005208, 0.291207492351532),
           ((3, 64, 75), 82.30013020833333, 0.12885922193527222),
           ((4, 64, 30), 65.188232421875, 0.09807316958904266)]


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def noise_std(gray: np.ndarray) -> float:
    """Noise std from the median absolute diagonal (Haar HH) detail."""
    g = gray.astype(np.float32)
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2
    return float(np.median(np.abs(hh))) / 0.6745


def high_frequency(t: np.ndarray) -> float:
    return float(((t - cv2.GaussianBlur(t, (0, 0), 1.0)) ** 2).mean())


def lag1(t: np.ndarray) -> float:
    t = t - t.mean()
    return float(((t[:, 1:] * t[:, :-1]).mean() + (t[1:] * t[:-1]).mean()) / 2 / (t * t).mean())


def photo(kind: str, seed: int, index: int = 0, size: int = 128, quality: int = 100, base: SensorRanges = PLAIN,
          **changes):
    return synthetic_photo(example_seed(seed, 0, index), size, quality, replace(ranges_for_kind(kind, base), **changes))


# ---------------------------------------------------------------------------------------------- generator
def test_phone_probabilities_zero_give_the_classic_generator():
    for (seed, size, quality), mean, std in CLASSIC:
        outputs = []
        for ranges in (ranges_for_kind("classic"), SensorRanges(phone_probability=0),
                       replace(ranges_for_kind("phone"), phone_probability=0)):
            pixels, target, drawn = synthetic_photo(example_seed(seed, 0, seed), size, quality, ranges)
            assert drawn["phone"] == {}
            outputs.append((pixels, target))
        for pixels, target in outputs[1:]:  # phone off, however it is switched off: the same bytes
            assert np.array_equal(pixels, outputs[0][0]) and np.array_equal(target, outputs[0][1])
        pixels, target = outputs[0]
        assert np.isclose(pixels.mean(), mean, rtol=1e-4) and np.isclose(target.std(), std, rtol=1e-4), seed


def test_examples_are_deterministic_and_kinds_share_the_classic_draws():
    a = photo("phone", 7, size=96, quality=80)
    b = photo("phone", 7, size=96, quality=80)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert set(a[2]["phone"]) == set(phone.STEPS)
    c = photo("phone", 7, index=1, size=96, quality=80)
    assert not np.array_equal(a[1], c[1])
    # the phone's draws come after the classic ones: a kind changes the processing, not the camera or scene
    classic = photo("classic", 7, size=96, quality=80)
    assert a[2]["prnu_std"] == classic[2]["prnu_std"] and a[2]["iso"] == classic[2]["iso"]


def test_pipeline_kinds_and_the_default_mix():
    assert PIPELINE_KINDS == ("classic", "burst", "denoise", "tonemap", "lens", "sharpen_halo", "phone_tables",
                              "crop_scale", "phone")
    for kind in PIPELINE_KINDS:
        r = ranges_for_kind(kind)
        on = {s for s, field in phone.STEPS.items() if getattr(r, field) == 1}
        assert on == (set(phone.STEPS) if kind == "phone" else {kind} - {"classic"})
        assert all(getattr(r, f) in (0, 1) for f in phone.STEPS.values())
        assert phone.draw_phone(np.random.default_rng(0), r).keys() == on
    with pytest.raises(ValueError, match="unknown pipeline kind"):
        ranges_for_kind("film")
    draws = [phone.draw_phone(np.random.default_rng(i), SensorRanges()) for i in range(2000)]
    assert 0.55 < np.mean([bool(d) for d in draws]) < 0.64  # a phone with at least one step: 0.6 (1 - 0.5^7)
    for step in phone.STEPS:
        assert 0.26 < np.mean([step in d for d in draws]) < 0.34, step  # 0.6 * 0.5 each


# ---------------------------------------------------------------------------------------------------- burst
def test_burst_merge_lowers_the_noise_by_about_the_square_root_of_the_frames():
    rng = np.random.default_rng(0)
    for frames in (2, 4, 8):
        stack, shifts = [], [(0.0, 0.0)] + [tuple(rng.uniform(-3, 3, 2)) for _ in range(frames - 1)]
        for _ in range(frames):
            f = (1000 + 20 * rng.standard_normal((128, 128))).astype(np.float32)
            stack.append((f, f.copy()))
        merged, _ = phone.burst_merge(stack, shifts, np.full((128, 128), 400, np.float32))
        gain = stack[0][0][8:-8, 8:-8].std() / merged[8:-8, 8:-8].std()
        # sub-pixel alignment also smooths each frame's noise a little: at most 1.4x more than sqrt(frames)
        assert 0.9 * np.sqrt(frames) < gain < 1.4 * np.sqrt(frames), (frames, gain)


def test_burst_attenuates_and_low_passes_the_prnu_term():
    """The PRNU stays on the sensor while the scene moves: aligned frames carry it shifted, so the merged
    photo's PRNU term (the target, same K, scene and reference frame) loses energy, most at high frequency."""
    hf, energy = [], []
    for i in range(3):
        _, classic, _ = photo("classic", 5, i)
        _, merged, drawn = photo("burst", 5, i, burst_frames=(8, 8))
        assert len(drawn["phone"]["burst"]["shifts"]) == 8
        hf.append(high_frequency(merged) / high_frequency(classic))
        energy.append(float((merged ** 2).mean() / (classic ** 2).mean()))
    assert np.mean(hf) < 0.6 and np.mean(energy) < 0.75 and np.mean(hf) < np.mean(energy), (hf, energy)


# -------------------------------------------------------------------------------------------------- denoise
@pytest.mark.parametrize("method", ["nlm", "guided"])
def test_phone_denoise_removes_most_of_the_noise_of_a_flat_scene(method):
    rng = np.random.default_rng(1)
    flat = [np.float32(0.2) + rng.normal(0, 0.01, (96, 96, 3)).astype(np.float32) for _ in range(2)]
    out = phone.denoise_pair(flat, method, 0.6, 3)  # the weakest strength and radius drawn
    for before, after in zip(flat, out):
        assert (before - 0.2).std() / (after - 0.2).std() > 3.5, method
    # the weights of the photo (first image) serve both: the filter is one linear operator
    again = phone.denoise_pair([flat[0], flat[0] - flat[1]], method, 0.6, 3)
    assert np.allclose(again[1], out[0] - out[1], atol=1e-5)


# ------------------------------------------------------------------------------------------------ tone map
def test_tone_map_brightens_dark_regions_relative_to_bright_ones():
    rgb = np.full((128, 128, 3), 0.5, np.float32)
    rgb[:, :64] = 0.02
    gain = phone.tone_gain(rgb, 0.4, 0.1)
    dark, bright = float(gain[:, :16].mean()), float(gain[:, -16:].mean())
    assert dark > 1.5 and bright < 1 and dark / bright > 2.5, (dark, bright)
    assert np.abs(np.diff(gain, axis=1)).max() < 0.25 * dark  # a smooth gain, not a per-pixel curve
    assert np.ptp(gain[:, 8]) < 1e-3  # varies across the edge only


# ---------------------------------------------------------------------------------------------------- lens
def test_lens_shading_gain_and_its_noise_at_the_corners():
    low, high = SensorRanges().lens_shading_gain
    for i in range(20):
        lens = phone.draw_phone(np.random.default_rng(i), ranges_for_kind("lens"))["lens"]
        g = phone.shading_gain(96, 96, lens["corner_gain"], lens["falloff"], lens["centre"])
        corner = max(g[0, 0], g[0, -1], g[-1, 0], g[-1, -1]) / g.min()
        assert low <= corner <= high + 1e-4 and g.min() >= 1 - 1e-6, corner
    # noisy photos (ISO 3200), no distortion: the corners' noise grows by about sqrt(gain) with the shading
    noisy = replace(PLAIN, iso=(3200,), full_well=(8000.0, 8000.0), exposure_stops=(-1.0, -1.0), distortion=(0.0, 0.0))
    ratios = []
    for i in range(4):
        out = []
        for kind in ("classic", "lens"):
            gray = photo(kind, 6, i, size=192, base=noisy)[0] @ np.float32([0.299, 0.587, 0.114])
            corners = np.mean([noise_std(gray[a:a + 40, b:b + 40]) for a in (0, 152) for b in (0, 152)])
            out.append(corners / noise_std(gray[76:116, 76:116]))
        ratios.append(out[1] / out[0])
    assert np.mean(ratios) > 1.25, ratios


def test_distortion_correction_bends_straight_lines_with_a_smooth_warp():
    x, y = phone.distortion_maps(128, 128, -0.15, 0.02)
    image = np.zeros((128, 128), np.float32)
    image[16] = 1.0  # a straight line near the top
    out = phone.remap(image, (x, y), "linear")
    rows = (out * np.arange(128)[:, None]).sum(0) / out.sum(0)  # the line's row in each column
    assert rows[64] - rows[4] > 2  # a barrel correction pushes the line's middle down less than its ends
    assert np.abs(np.diff(x, 2, axis=1)).max() < 0.01 and np.abs(np.diff(y, 2, axis=0)).max() < 0.01
    assert x.min() >= 0 and x.max() <= 127 and y.min() >= 0 and y.max() <= 127  # the frame stays filled
    # in a photo: the target is resampled (changed, yet the same PRNU term)
    _, classic, _ = photo("classic", 8, quality=95)
    _, corrected, _ = photo("lens", 8, quality=95, lens_shading_gain=(1.0, 1.0), distortion=(-0.15, -0.15))
    assert 0.3 < ncc(classic, corrected) < 0.99


# ------------------------------------------------------------------------------------------------- sharpen
def test_halo_sharpening_overshoots_at_a_step_edge():
    step = np.full((32, 64, 3), 0.2, np.float32)
    step[:, 32:] = 0.6
    out = phone.sharpen_halo(step, 1.0, 3.0)  # the weakest amount drawn
    assert out[:, 32:].max() > 0.65 and out[:, :32].min() < 0.15
    halo = np.nonzero(out[16, 32:, 0] > 0.61)[0]
    assert len(halo) >= 3  # a wide halo, not a one-pixel ring


# ---------------------------------------------------------------------------------------------- JPEG tables
def test_phone_tables_are_not_ijg_and_lie_in_the_phone_range():
    assert IJG_TABLES.shape == (100, 64)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    bases, qualities = set(), []
    for i in range(40):
        t = phone.draw_phone(np.random.default_rng(i), ranges_for_kind("phone_tables"))["phone_tables"]
        luma, chroma = phone.phone_qtables(t["base"], t["quality"], t["jitter"], t["seed"])
        read = Image.open(io.BytesIO(phone.encode_with_tables(pixels, luma, chroma, t["subsampling"]))).quantization
        assert list(read[0]) == luma and list(read[1]) == chroma  # what the camera JPEG carries
        assert not (IJG_TABLES == np.array(luma)).all(axis=1).any()
        qualities.append(phone.equivalent_quality(np.array(luma)))
        assert 1 <= min(luma) and max(luma) <= 40 and max(chroma) <= 60
        bases.add(t["base"])
    assert 86 <= min(qualities) and max(qualities) <= 99 and len(set(qualities)) >= 5, qualities
    assert len(bases) >= 5
    _, _, drawn = photo("phone_tables", 3, size=64, quality=90)
    assert drawn["camera_quality"] is None and 86 <= drawn["phone"]["phone_tables"]["equivalent_quality"] <= 99
    assert all(len(luma) == len(chroma) == 64 for luma, chroma in PHONE_TABLES.values())


# ---------------------------------------------------------------------------------------------- crop-scale
def test_digital_zoom_correlates_neighbouring_target_pixels():
    before, after = [], []
    for i in range(3):
        before.append(lag1(photo("classic", 5, i)[1]))
        after.append(lag1(photo("crop_scale", 5, i, crop_scale=(1.3, 2.0))[1]))
    assert all(a > b + 0.03 for a, b in zip(after, before)), (before, after)


# --------------------------------------------------------------------------------------------------- kinds
def test_every_kind_makes_exact_targets():
    """Without PRNU the target vanishes; with it, the photo's residual (quality 100) correlates with its own
    target and not with another sensor's."""
    for kind in PIPELINE_KINDS:
        _, target, _ = photo(kind, 4, size=96, quality=95, prnu_strength=(1e-12, 1e-12))
        assert float(np.abs(target).max()) < 1e-3, kind
        own, other = [], []
        for i in range(3):
            pixels, target, _ = photo(kind, 4, i, size=192)
            assert pixels.shape == (192, 192, 3) and pixels.dtype == np.uint8 and target.dtype == np.float32
            another = synthetic_photo(example_seed(4, 1, i), 192, 100, ranges_for_kind(kind, PLAIN))[1]
            w = extract_residual(pixels)
            own.append(ncc(w, target))
            other.append(ncc(w, another))
        assert np.mean(own) > 0.03 and min(own) > 0.01 and max(map(abs, other)) < 0.02, (kind, own, other)
