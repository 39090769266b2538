"""JPEG writing with OpenCV: qualities, chroma subsampling, atomic output."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from spnrestore.jpeg import encode_jpeg, read_rgb, write_jpeg


@pytest.fixture(scope="module")
def rgb():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:240, 0:320]
    base = np.stack([x / 320 * 200, y / 240 * 200, (x + y) / 560 * 255], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def test_lower_quality_is_smaller_and_further_from_the_original(rgb):
    sizes, errors = [], []
    for quality in (90, 60, 30):
        data = encode_jpeg(rgb, quality)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        sizes.append(len(data))
        errors.append(np.abs(decoded.astype(float) - rgb).mean())
    assert sizes[0] > sizes[1] > sizes[2]
    assert errors[0] < errors[1] < errors[2]


def test_chroma_subsampling_is_configurable(rgb):
    assert len(encode_jpeg(rgb, 90, "444")) > len(encode_jpeg(rgb, 90, "420"))


def test_write_is_atomic_and_round_trips_colour_order(tmp_path, rgb):
    path = tmp_path / "Cam" / "90" / "img.jpg"
    write_jpeg(path, rgb, 95)
    back = read_rgb(path)
    assert back.shape == rgb.shape
    assert np.abs(back.astype(float) - rgb).mean() < 8  # channels swapped: about 60
    assert np.corrcoef(back[..., 0].ravel(), rgb[..., 0].ravel())[0, 1] > 0.95
    assert [p.name for p in path.parent.iterdir()] == ["img.jpg"]


def test_failed_write_leaves_no_file(tmp_path, rgb, monkeypatch):
    import errno
    import os

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_jpeg(tmp_path / "x.jpg", rgb, 90)
    assert list(tmp_path.iterdir()) == []


def test_quality_outside_range_is_refused(rgb):
    with pytest.raises(ValueError, match="outside 1..100"):
        encode_jpeg(rgb, 0)
