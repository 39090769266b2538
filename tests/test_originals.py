"""Developed originals (JPEG, TIFF, PNG): stored pixel layout, EXIF orientation, 16-bit, bad files, scoring."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from spnrestore.demo.developed_drive import camera_jpeg
from spnrestore.originals import _without_tiff_orientation, load_developed, load_original, original_size
from spnrestore.errors import BadImageError
from spnrestore.jpeg import estimate_jpeg_quality, jpeg_quality
from spnrestore.spn import extract_residual, score_residual, to_sensor_orientation

IPHONE = "metadata-only/Apple_iPhone_12_Pro_IMG_1361.dng"


@pytest.fixture(scope="module")
def rgb():
    """A smooth, non-symmetric uint8 RGB test picture, 48 x 80 (sensor layout)."""
    y, x = np.mgrid[0:48, 0:80]
    return np.stack([x * 3, y * 5, (x + 2 * y) % 256], axis=2).astype(np.uint8)


def tiff_bytes(pixels: np.ndarray, orientation: int | None) -> bytes:
    """An uncompressed little-endian RGB TIFF (8 or 16 bit) of ``pixels`` with an optional Orientation tag."""
    h, w, _ = pixels.shape
    bits = pixels.dtype.itemsize * 8
    data = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, 0), (259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, 0),
               (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    entries += [(274, 3, 1, orientation)] if orientation else []
    entries.sort()
    bps_at = 8 + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<IH", 8, len(entries)))
    for tag, kind, count, value in entries:
        value = {258: bps_at, 273: bps_at + 6}.get(tag, value)
        out += struct.pack("<HHIHH", tag, kind, count, value, 0) if kind == 3 and count == 1 else \
            struct.pack("<HHII", tag, kind, count, value)
    return bytes(out + struct.pack("<I3H", 0, bits, bits, bits) + data)


def pillow_bytes(pixels: np.ndarray, fmt: str, orientation: int | None = None, **options) -> bytes:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, exif=exif.tobytes(), **options)
    return out.getvalue()


@pytest.mark.parametrize("orientation", [None, 1, 3, 6, 8])
@pytest.mark.parametrize("kind", ["png", "tiff8", "tiff16"])
def test_lossless_files_keep_the_stored_pixels_whatever_the_tag(tmp_path, rgb, kind, orientation):
    """The tag says how to display; the stored pixels are the sensor layout and come back bit-exact."""
    path = tmp_path / ("x.png" if kind == "png" else "x.tif")
    if kind == "png":
        path.write_bytes(pillow_bytes(rgb, "PNG", orientation))
    else:
        path.write_bytes(tiff_bytes(rgb.astype(np.uint16) * 257 if kind == "tiff16" else rgb, orientation))
    developed = load_developed(path)
    assert developed.rgb.dtype == np.uint8 and np.array_equal(developed.rgb, rgb)
    assert developed.orientation == (orientation or 0)
    assert original_size(path, "png" if kind == "png" else "tiff") == (80, 48)
    assert developed.raw_pattern == "" and developed.source_quality is None


def test_tagged_camera_jpeg_equals_the_displayed_image_turned_back(tmp_path, rgb):
    """Orientation 6: a viewer turns the stored pixels 90 degrees clockwise; loading undoes exactly that."""
    path = tmp_path / "IMG_0001.JPG"
    path.write_bytes(camera_jpeg(rgb, 95, "Maker", "Model X", 6))
    displayed = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    assert displayed.shape == (80, 48, 3)  # what a viewer shows: portrait
    developed = load_developed(path)
    assert developed.rgb.shape == (48, 80, 3) and developed.orientation == 6
    assert np.array_equal(developed.rgb, np.asarray(to_sensor_orientation(displayed, 6)))
    assert np.abs(developed.rgb.astype(int) - rgb).mean() < 2  # JPEG q95 of the sensor picture
    assert (developed.make, developed.model, developed.source_quality) == ("Maker", "Model X", 95)
    assert original_size(path, "jpeg") == (80, 48)


def test_sixteen_bit_scaling_gray_and_alpha(tmp_path):
    values = np.array([[0, 128, 129, 257], [385, 386, 65278, 65535]], np.uint16)
    expected = np.array([[0, 0, 1, 1], [1, 2, 254, 255]], np.uint8)  # round(v / 257)
    assert np.array_equal(np.rint(values / 257), expected)
    cv2.imwrite(str(tmp_path / "gray16.png"), values)
    gray = load_developed(tmp_path / "gray16.png").rgb
    assert gray.shape == (2, 4, 3) and all(np.array_equal(gray[..., c], expected) for c in range(3))
    rgba = np.zeros((2, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7  # BGRA on disk: blue 200, alpha 7
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    loaded = load_developed(tmp_path / "alpha.png").rgb
    assert loaded.shape == (2, 4, 3) and (loaded[..., 2] == 200).all() and (loaded[..., :2] == 0).all()


def test_source_quality_of_camera_and_other_jpegs(tmp_path, rgb):
    for quality in (30, 75, 92):
        ok, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, quality])
        (tmp_path / f"q{quality}.jpg").write_bytes(data.tobytes())
        assert load_developed(tmp_path / f"q{quality}.jpg").source_quality == quality
        found = estimate_jpeg_quality(tmp_path / f"q{quality}.jpg")
        assert found.quality == quality and found.exact
    assert jpeg_quality(pillow_bytes(rgb, "PNG")) is None


def test_damaged_and_unsupported_files_are_bad_images(tmp_path, rgb):
    noise = np.random.default_rng(0).integers(0, 256, rgb.shape, dtype=np.uint8)
    jpeg, png = camera_jpeg(noise, 90, "M", "N", 1), pillow_bytes(noise, "PNG")
    cases = {"empty.jpg": b"", "notes.jpg": b"lens cap on\n", "cut.jpg": jpeg[: len(jpeg) // 2],
             "cut.png": png[: len(png) // 2]}
    ok, floats = cv2.imencode(".tiff", rgb.astype(np.float32))
    cases["float.tif"] = floats.tobytes()
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(BadImageError, match=name):
            load_developed(tmp_path / name)


def test_camera_trailer_is_accepted_and_truncation_is_found_past_an_exif_thumbnail(tmp_path, rgb):
    thumbnail = cv2.imencode(".jpg", rgb[:32, :32])[1].tobytes()  # a whole JPEG (scan, end marker) inside APP1
    app1 = b"\xff\xe1" + (len(thumbnail) + 8).to_bytes(2, "big") + b"Exif\x00\x00" + thumbnail
    main = cv2.imencode(".jpg", rgb[..., ::-1])[1].tobytes()
    jpeg = main[:2] + app1 + main[2:]
    (tmp_path / "trailer.jpg").write_bytes(jpeg + b"SEFH" + bytes(64) + b"SEFT")  # Samsung-style trailer
    assert load_developed(tmp_path / "trailer.jpg").rgb.shape == rgb.shape
    (tmp_path / "cut.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])
    with pytest.raises(BadImageError, match="cut.jpg: JPEG ends before its end-of-image marker"):
        load_developed(tmp_path / "cut.jpg")


def test_load_original_dispatches_on_format(tmp_path, rgb):
    (tmp_path / "a.png").write_bytes(pillow_bytes(rgb, "PNG"))
    assert np.array_equal(load_original(tmp_path / "a.png", "png", develop_settings={}).rgb, rgb)
    (tmp_path / "b.DNG").write_bytes(pillow_bytes(rgb, "PNG"))
    with pytest.raises(BadImageError, match="not a RAW image"):
        load_original(tmp_path / "b.DNG", "dng", develop_settings={})


def test_orientation_of_the_real_iphone_header(samples, tmp_path):
    """The iPhone ProRAW header (Orientation 6, Make Apple): found in the TIFF structure (and neutralised
    for decoding), and read from its EXIF block carried by a JPEG, whose stored pixels are kept."""
    dng = samples / IPHONE
    exif = Image.open(dng).getexif()
    assert exif[0x0112] == 6
    untagged = _without_tiff_orientation(dng.read_bytes())  # what the TIFF decoder is given
    assert len(untagged) == dng.stat().st_size and Image.open(io.BytesIO(untagged)).getexif()[0x0112] == 1
    picture = np.full((32, 48, 3), 90, np.uint8)
    picture[:8, :16] = 200  # a bright corner that shows which way the pixels lie
    out = io.BytesIO()
    Image.fromarray(picture).save(out, "JPEG", quality=95, exif=exif.tobytes())
    (tmp_path / "IMG_1361.JPG").write_bytes(out.getvalue())
    developed = load_developed(tmp_path / "IMG_1361.JPG")
    assert developed.orientation == 6 and developed.make == "Apple" and "iPhone 12 Pro" in developed.model
    assert developed.rgb.shape == (32, 48, 3) and developed.rgb[:8, :16].mean() > 180


def test_turned_residual_is_scored_against_the_turned_fingerprint():
    """An image turned by the camera without a tag (transposed size) matches its camera at either turn."""
    rng = np.random.default_rng(0)
    k = rng.normal(0, 0.02, (128, 192)).astype(np.float32)
    other = rng.normal(0, 0.02, (128, 192)).astype(np.float32)
    scene = np.clip(120 + 40 * np.sin(np.arange(192) / 9)[None, :] + rng.normal(0, 2, (128, 192)), 0, 255)
    shot = np.clip(scene * (1 + k) + rng.normal(0, 1, scene.shape), 0, 255).astype(np.uint8)
    rgb = np.repeat(shot[..., None], 3, axis=2)
    for turn in (1, -1):  # display turn of the camera, unknown to the scorer
        turned = np.ascontiguousarray(np.rot90(rgb, turn))
        rows = {r["fingerprint"]: r for r in score_residual(extract_residual(turned), turned,
                                                            {"cam": k, "other": other}, "x")}
        assert rows["cam"]["pce"] > 100 > 20 > rows["other"]["pce"]
