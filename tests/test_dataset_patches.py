"""Patch corners on the JPEG grid and the flat/saturated rule."""

import numpy as np
import pytest

from spnrestore.dataset.patches import PatchRule, grid_offsets, patch_stats, select_patches
from spnrestore.errors import ConfigError


def textured(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(20, 230, (h, w, 3), dtype=np.uint8)


def test_offsets_lie_on_the_8x8_grid_inside_the_image():
    for h, w, patch, stride in [(500, 700, 128, None), (300, 301, 64, 24), (129, 1000, 128, 8)]:
        corners = grid_offsets(h, w, patch, stride)
        assert corners.dtype == np.int64 and len(corners) > 0
        assert (corners % 8 == 0).all()
        assert (corners[:, 0] + patch <= h).all() and (corners[:, 1] + patch <= w).all()
        step = stride or patch
        assert len(corners) == ((h - patch) // step + 1) * ((w - patch) // step + 1)
        assert [tuple(c) for c in corners] == sorted(tuple(c) for c in corners)
    assert grid_offsets(100, 500, 128).shape == (0, 2)


def test_patch_and_stride_must_be_multiples_of_8():
    with pytest.raises(ConfigError, match="multiple of 8"):
        grid_offsets(256, 256, 100)
    with pytest.raises(ConfigError, match="stride"):
        grid_offsets(256, 256, 64, 12)


def test_stats_match_a_direct_computation():
    rgb = textured(200, 264)
    rgb[:64, :64] = 255
    corners = grid_offsets(200, 264, 64, 32)
    std, sat = patch_stats(rgb, corners, 64)
    g = rgb.astype(np.float64) @ [0.299, 0.587, 0.114]
    for (y, x), s, f in zip(corners, std, sat):
        assert s == pytest.approx(g[y:y + 64, x:x + 64].std(), abs=1e-6)
        assert f == pytest.approx((rgb[y:y + 64, x:x + 64].max(axis=2) >= 250).mean(), abs=1e-9)


def integral_stats(rgb, corners, patch, level=250):
    """The former patch_stats: float64 integral images of the whole image (the reference)."""
    def box(values):
        integral = np.zeros((values.shape[0] + 1, values.shape[1] + 1))
        np.cumsum(np.cumsum(values, axis=0, dtype=np.float64), axis=1, out=integral[1:, 1:])
        y, x = corners[:, 0], corners[:, 1]
        return integral[y + patch, x + patch] - integral[y, x + patch] - integral[y + patch, x] + integral[y, x]
    g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    mean = box(g) / patch**2
    var = np.maximum(box(np.square(g, dtype=np.float64)) / patch**2 - mean**2, 0.0)
    return np.sqrt(var), box((rgb.max(axis=2) >= level).astype(np.float32)) / patch**2


def test_stats_on_cells_equal_the_integral_image_and_corners_off_the_grid():
    """Textured, bright (partly saturated) and flat rows, on the 8-pixel grid, a coarser grid and
    corners with no common divisor (cells of one pixel); every patch's decision is the same."""
    rgb = textured(360, 520, seed=4)
    rgb[:100] = np.clip(rgb[:100] // 8 + 200, 0, 255)  # bright, partly saturated rows
    rgb[200:260] = 77  # flat
    for corners, patch in ((grid_offsets(360, 520, 64, 8), 64), (grid_offsets(360, 520, 128, 64), 128),
                           (np.array([[0, 0], [3, 7], [101, 33], [229, 391]]), 128)):
        std, sat = patch_stats(rgb, corners, patch)
        ref_std, ref_sat = integral_stats(rgb, corners, patch)
        assert np.abs(std - ref_std).max() < 1e-6 and np.array_equal(sat, ref_sat)
        rule = PatchRule()
        assert np.array_equal(std >= rule.min_gray_std, ref_std >= rule.min_gray_std)


def test_flat_and_saturated_patches_are_dropped():
    rgb = textured(128, 384)
    rgb[:, :128] = 120                 # flat
    rgb[:, 128:256][::2] = 255         # half saturated
    kept = select_patches(rgb, patch=128, rule=PatchRule(min_gray_std=2.0, max_saturated_fraction=0.05))
    assert kept.tolist() == [[0, 256]]
    everything = select_patches(rgb, patch=128, rule=PatchRule(min_gray_std=0.0, max_saturated_fraction=1.0))
    assert len(everything) == 3


def test_max_patches_thins_deterministically():
    rgb = textured(512, 512)
    full = select_patches(rgb, patch=64)
    thin = select_patches(rgb, patch=64, max_patches=10)
    assert len(thin) == 10 and (thin == select_patches(rgb, patch=64, max_patches=10)).all()
    assert {tuple(c) for c in thin} <= {tuple(c) for c in full}
    assert tuple(thin[0]) == tuple(full[0]) and tuple(thin[-1]) == tuple(full[-1])


def test_rule_from_config_rejects_unknown_keys():
    assert PatchRule.from_config({"min_gray_std": 3}).min_gray_std == 3
    with pytest.raises(ConfigError, match="min_std"):
        PatchRule.from_config({"min_std": 3})
