"""The scene check (spn.scene): a match made of sensor noise lives on the smooth half of an image as much as on
its textured half; a match made of a shared scene lives on the textured half."""

import cv2
import numpy as np

from spnrestore.spn import extract_residual, fingerprint_term
from spnrestore.spn.scene import SCENE_RATIO, masked_ncc, smooth_half, smooth_textured_ncc


def _scene(rng, side=256):
    """Left half: smooth shading; right half: strong texture (blurred noise with edges)."""
    gray = np.tile(np.linspace(90, 150, side, dtype=np.float32), (side, 1))
    texture = cv2.GaussianBlur(rng.normal(0, 40, (side, side)).astype(np.float32), (0, 0), 1.5)
    gray[:, side // 2:] += texture[:, side // 2:]
    return np.clip(gray, 0, 255)


def test_the_smooth_half_is_where_the_image_has_no_texture():
    rng = np.random.default_rng(0)
    rgb = np.repeat(_scene(rng)[..., None], 3, 2).astype(np.uint8)
    mask = smooth_half(rgb, extract_residual(rgb))
    assert mask.mean() == 0.5 or abs(mask.mean() - 0.5) < 0.01
    assert mask[:, :100].mean() > 0.95 and mask[:, 156:].mean() < 0.05


def test_a_sensor_match_keeps_the_smooth_half_and_a_scene_match_does_not():
    rng = np.random.default_rng(1)
    gray = _scene(rng)
    k = rng.normal(0, 0.03, gray.shape).astype(np.float32)
    photo = np.repeat(np.clip(gray * (1 + k) + rng.normal(0, 2, gray.shape), 0, 255)[..., None], 3, 2).astype(np.uint8)
    w = extract_residual(photo)
    mask = smooth_half(photo, w)
    smooth, textured = smooth_textured_ncc(w, fingerprint_term(k, photo), mask)
    assert smooth > 0.05 and smooth / textured > 1.5 * SCENE_RATIO  # the sensor's: everywhere
    # a "fingerprint" that is the scene's residue: the residual of another photo of the same scene, no PRNU
    other = np.repeat(np.clip(gray + rng.normal(0, 2, gray.shape), 0, 255)[..., None], 3, 2).astype(np.uint8)
    k_scene = extract_residual(other) / np.maximum(gray, 1)
    plain = np.repeat(np.clip(gray + rng.normal(0, 2, gray.shape), 0, 255)[..., None], 3, 2).astype(np.uint8)
    w_plain = extract_residual(plain)
    smooth, textured = smooth_textured_ncc(w_plain, fingerprint_term(k_scene, plain), smooth_half(plain, w_plain))
    assert textured > 0.05 and smooth / textured < SCENE_RATIO


def test_masked_ncc_of_a_constant_is_nan():
    a = np.ones((8, 8), np.float32)
    assert np.isnan(masked_ncc(a, a, np.ones((8, 8), bool)))
