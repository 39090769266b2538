"""Camera identity tags (Make, Model, serial, Orientation) read from JPEG, PNG, TIFF/DNG and RAW headers."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spnrestore.errors import BadImageError
from spnrestore.exif import (BODY_SERIAL_NUMBER, CAMERA_SERIAL_NUMBER, EXIF_IFD, MAKE, MODEL, ORIENTATION,
                             UNIQUE_CAMERA_MODEL, CameraTags, read_camera_tags)

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw-samples" / "metadata-only"
PIXELS = np.random.default_rng(0).integers(0, 256, (16, 24, 3), np.uint8)


def exif_block(make=None, model=None, serial=None, orientation=None, ifd0_extra=()) -> Image.Exif:
    """A Pillow EXIF directory with the given IFD0 tags and ``serial`` as BodySerialNumber in the Exif sub-IFD."""
    exif = Image.Exif()
    for tag, value in ((MAKE, make), (MODEL, model), (ORIENTATION, orientation), *ifd0_extra):
        if value is not None:
            exif[tag] = value
    if serial is not None:
        exif.get_ifd(EXIF_IFD)[BODY_SERIAL_NUMBER] = serial
    return exif


def save(path: Path, fmt: str, exif: Image.Exif | None = None) -> Path:
    image = Image.fromarray(PIXELS)
    image.save(path, fmt, **({"exif": exif} if exif is not None else {}))
    return path


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp")])
def test_tags_of_jpeg_png_webp(tmp_path, fmt, suffix):
    path = save(tmp_path / f"x{suffix}", fmt, exif_block("Canon", "Canon IXUS 70", "5310", 6))
    assert read_camera_tags(path) == CameraTags("Canon", "Canon IXUS 70", "5310", 6)


def test_tiff_serial_from_dng_tag_and_unique_model_fallback(tmp_path):
    path = save(tmp_path / "x.tif", "TIFF", exif_block(make="Pentax", ifd0_extra=(
        (UNIQUE_CAMERA_MODEL, "PENTAX K10D"), (CAMERA_SERIAL_NUMBER, "8004211"))))
    assert read_camera_tags(path) == CameraTags("Pentax", "PENTAX K10D", "8004211", None)


@pytest.mark.parametrize("magic", [b"IIRO", b"IIU\x00"])
def test_raw_with_vendor_tiff_magic(tmp_path, magic):
    """Olympus ORF and Panasonic RW2 headers are TIFF with a vendor magic number that Pillow refuses."""
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, "TIFF", exif=exif_block("OLYMPUS", "E-M5", orientation=8))
    path = tmp_path / "x.orf"
    path.write_bytes(magic + buffer.getvalue()[4:])
    with pytest.raises(Image.UnidentifiedImageError):
        Image.open(path)
    assert read_camera_tags(path) == CameraTags("OLYMPUS", "E-M5", None, 8)


def test_missing_empty_and_placeholder_tags_are_none(tmp_path):
    assert read_camera_tags(save(tmp_path / "bare.jpg", "JPEG")) == CameraTags(None, None, None, None)
    odd = exif_block(make="  ", model="Model\x00\x00", serial="000000", orientation=9)
    assert read_camera_tags(save(tmp_path / "odd.jpg", "JPEG", odd)) == CameraTags(None, "Model", None, None)


def test_unreadable_files_raise_bad_image_error(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(BadImageError, match="notes.jpg: not an image format whose metadata can be read"):
        read_camera_tags(text)
    with pytest.raises(BadImageError, match=r"absent.jpg: cannot be read \(No such file"):
        read_camera_tags(tmp_path / "absent.jpg")


def test_damaged_headers_never_crash(tmp_path):
    """Cut a JPEG and a TIFF at every few bytes of their header: each gives tags or a BadImageError, nothing else."""
    for fmt, suffix in (("JPEG", ".jpg"), ("TIFF", ".tif")):
        data = save(tmp_path / f"full{suffix}", fmt, exif_block("Nikon", "D70", "1234", 3)).read_bytes()
        for cut in range(0, 400, 7):
            path = tmp_path / f"cut{suffix}"
            path.write_bytes(data[:cut])
            try:
                tags = read_camera_tags(path)
            except BadImageError as exc:
                assert str(exc).startswith(str(path))
            else:
                assert isinstance(tags, CameraTags)


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"real sample {path} is absent (../shared not mounted)")
    return path


def test_real_iphone_dng_header():
    tags = read_camera_tags(sample("Apple_iPhone_12_Pro_IMG_1361.dng"))
    assert tags == CameraTags("Apple", "iPhone 12 Pro", None, 6)


def test_real_canon_350d_dng_header():
    tags = read_camera_tags(sample("Canon_EOS_350D_exiftool.dng"))
    assert tags == CameraTags("Canon", "Canon EOS 350D DIGITAL", "012345678", 1)
