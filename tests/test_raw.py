"""RAW development: forensic settings, real camera DNGs, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from spnrestore.config import default_config
from spnrestore.demo import make_demo_drive
from spnrestore.raw import develop_raw
from spnrestore.errors import BadImageError


@pytest.fixture(scope="module")
def settings(project_root):
    return default_config()["develop"]


@pytest.fixture(scope="module")
def small_drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("drive")
    return make_demo_drive(root / "d", cameras=4, images_per_camera=2, height=128, width=192, portrait_every=2)


def test_portrait_shot_keeps_sensor_orientation(small_drive, settings):
    import rawpy

    for path in sorted((small_drive / "Images" / "Original").rglob("*")):
        if path.is_file():
            with rawpy.imread(str(path)) as raw:
                flip = raw.sizes.flip
            developed = develop_raw(path, settings)
            assert developed.rgb.shape == (128, 192, 3), path  # never rotated, whatever the tag says
            assert developed.orientation == flip
    assert any(develop_raw(p, settings).orientation != 0
               for p in (small_drive / "Images" / "Original").rglob("*") if p.is_file())


def test_forensic_settings_reach_libraw(small_drive, settings, monkeypatch):
    """No auto-brightening, camera white balance, sensor orientation, one demosaic, 8-bit sRGB."""
    import rawpy

    seen = {}
    imread = rawpy.imread

    class Spy:
        def __init__(self, path):
            self.raw = imread(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.raw.close()

        def __getattr__(self, name):
            return getattr(self.raw, name)

        def postprocess(self, **kwargs):
            seen.update(kwargs)
            return self.raw.postprocess(**kwargs)

    monkeypatch.setattr(rawpy, "imread", Spy)
    develop_raw(next(p for p in (small_drive / "Images" / "Original").rglob("*") if p.is_file()), settings)
    assert seen["no_auto_bright"] is True and seen["use_camera_wb"] is True and seen["user_flip"] == 0
    assert seen["demosaic_algorithm"] == rawpy.DemosaicAlgorithm.AHD and seen["output_bps"] == 8
    assert seen["output_color"] == rawpy.ColorSpace.sRGB


def test_exposure_is_not_normalised(small_drive, settings):
    """Dark scenes stay dark: without auto-brightening developed means span a wide range."""
    drive = make_demo_drive(small_drive.parent / "dark", cameras=2, images_per_camera=8, height=128, width=192)
    means = [develop_raw(p, settings).rgb.mean() for p in (drive / "Images" / "Original").rglob("*") if p.is_file()]
    assert min(means) < 40 < max(means)


def test_cfa_layout_is_read_from_each_file(small_drive, settings):
    patterns = {develop_raw(p, settings).raw_pattern
                for p in (small_drive / "Images" / "Original").rglob("*") if p.is_file()}
    assert patterns == {"RGGB", "BGGR", "GRBG", "GBRG"}


def test_real_bayer_dng(samples, settings):
    developed = develop_raw(samples / "Blackmagic_Pocket_Cinema_Camera_4K" / "Blackmagic.dng", settings)
    assert developed.rgb.shape == (2176, 4128, 3) and developed.rgb.dtype == np.uint8
    assert developed.raw_pattern == "RGGB"
    means = developed.rgb.reshape(-1, 3).mean(axis=0)
    assert 20 < means.mean() < 200 and means.max() / means.min() < 2  # neither black nor green
    assert developed.model == "Blackmagic Pocket Cinema Camera 4K"


def test_linear_raw_dng_without_mosaic(samples, settings):
    developed = develop_raw(samples / "Canon_EOS_6D_linear" / "canon_eos_6d.dng", settings)
    assert developed.rgb.shape == (816, 1224, 3)
    assert developed.raw_pattern == "linear"
    assert (developed.make, developed.model) == ("Canon", "Canon EOS 6D")


@pytest.mark.parametrize("name", ["Apple_iPhone_12_Pro_IMG_1361.dng", "Canon_EOS_350D_exiftool.dng"])
def test_header_only_dng_is_reported(samples, settings, name):
    with pytest.raises(BadImageError, match="all-black|pixel data is missing") as err:
        develop_raw(samples / "metadata-only" / name, settings)
    assert name in str(err.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "JPEG"),
        (b"shopping list: lens cloth\n", "text file"),
        (b"II*\x00\x08\x00\x00\x00" + b"\x00" * 64, "LibRaw"),
    ],
)
def test_bad_files_named_dng(tmp_path, settings, content, words):
    path = tmp_path / "IMG_0001.DNG"
    path.write_bytes(content)
    with pytest.raises(BadImageError, match=words) as err:
        develop_raw(path, settings)
    assert str(path) in str(err.value)


def test_truncated_dng(small_drive, settings, tmp_path):
    source = next(p for p in (small_drive / "Images" / "Original").rglob("*") if p.is_file())
    data = source.read_bytes()
    path = tmp_path / "cut.DNG"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(BadImageError) as err:
        develop_raw(path, settings)
    assert "cut.DNG" in str(err.value)
