"""Bad inputs raise clear errors, never a silent NaN; orientation helpers."""

import numpy as np
import pytest

from spnrestore.errors import BadImageError, SpnRestoreError
from spnrestore.spn import (
    MIN_SIDE,
    check_same_size,
    extract_residual,
    from_sensor_orientation,
    min_side,
    noise_rgb,
    to_sensor_orientation,
)


def _img(h=160, w=200, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def test_min_side_rule():
    assert MIN_SIDE == min_side() == 2**4 * 8 == 128
    extract_residual(_img(128, 128))
    with pytest.raises(BadImageError, match=r"x.jpg: is 127x200 px.*at least 128 px"):
        extract_residual(_img(127, 200), name="x.jpg")
    with pytest.raises(BadImageError, match="at least 128"):
        noise_rgb(_img(300, 100))


@pytest.mark.parametrize("value", [0, 255, 77])
def test_constant_images(value):
    with pytest.raises(BadImageError, match="black.dng: is constant"):
        extract_residual(np.full((200, 200, 3), value, np.uint8), name="black.dng")


def test_constant_per_channel_is_constant():
    img = np.zeros((200, 200, 3), np.uint8)
    img[..., 0] = 255
    with pytest.raises(BadImageError, match="constant"):
        extract_residual(img)


def test_nan_inf_float_input():
    img = _img().astype(np.float32)
    img[5, 5, 1] = np.nan
    with pytest.raises(BadImageError, match="NaN"):
        extract_residual(img, name="n.tif")
    img[5, 5, 1] = np.inf
    with pytest.raises(BadImageError, match="NaN or infinite"):
        extract_residual(img)


def test_wrong_types_and_shapes():
    with pytest.raises(BadImageError, match="dtype uint16"):
        extract_residual(_img().astype(np.uint16))
    with pytest.raises(BadImageError, match="4 channels"):
        extract_residual(np.zeros((200, 200, 4), np.uint8))
    with pytest.raises(BadImageError, match="shape"):
        extract_residual(np.zeros((200,), np.uint8))
    with pytest.raises(BadImageError, match="0..1"):
        extract_residual(_img().astype(np.float32) / 255)


def test_result_is_finite():
    r = extract_residual(_img())
    assert np.isfinite(r).all() and r.dtype == np.float32


def test_orientation_roundtrip_and_values():
    img = np.arange(2 * 3).reshape(2, 3)
    assert to_sensor_orientation(img, 1) is not None and (to_sensor_orientation(img, 1) == img).all()
    # orientation 6: the display image is the sensor image turned 90 deg clockwise
    sensor = np.arange(6).reshape(2, 3)
    display6 = np.rot90(sensor, -1)
    np.testing.assert_array_equal(to_sensor_orientation(display6, 6), sensor)
    display8 = np.rot90(sensor, 1)
    np.testing.assert_array_equal(to_sensor_orientation(display8, 8), sensor)
    np.testing.assert_array_equal(to_sensor_orientation(np.rot90(sensor, 2), 3), sensor)
    rgb = _img(130, 140)
    for o in (1, 3, 6, 8, None):
        np.testing.assert_array_equal(to_sensor_orientation(from_sensor_orientation(rgb, o), o), rgb)
    with pytest.raises(SpnRestoreError, match="mirrored"):
        to_sensor_orientation(img, 5)
    with pytest.raises(SpnRestoreError, match="1..8"):
        to_sensor_orientation(img, 9)


def test_check_same_size_messages():
    check_same_size((10, 20), (10, 20, 3))
    with pytest.raises(SpnRestoreError, match="rotate|sensor orientation"):
        check_same_size((20, 10), (10, 20))
    with pytest.raises(SpnRestoreError, match="crop the residual to 10x20"):
        check_same_size((12, 24), (10, 20))
    with pytest.raises(SpnRestoreError, match="im.jpg: .*crop the fingerprint"):
        check_same_size((10, 20), (12, 24), name="im.jpg")
