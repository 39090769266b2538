"""RAW development with settings safe for sensor-noise forensics.

One fixed LibRaw (rawpy) development for every image of a camera: sensor
orientation kept (``user_flip=0``), no auto-brightening, camera white balance,
one demosaic algorithm, 8-bit sRGB output. The mosaic layout is read from the
file by LibRaw (``raw_pattern``); LinearRaw DNGs (already demosaiced, no
pattern) develop through the same call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import rawpy

from .errors import BadImageError
from .tiff_tags import make_model

# Fewer bytes per sensor pixel than this cannot hold the image, even lossy-compressed (lossy DNG: ~0.4).
MIN_BYTES_PER_PIXEL = 0.02

# First bytes of files that are not RAW images although they may carry a RAW extension.
_FOREIGN_MAGIC = {
    b"\xff\xd8\xff": "a JPEG file",
    b"\x89PNG": "a PNG file",
    b"%PDF": "a PDF file",
    b"PK\x03\x04": "a ZIP archive",
    b"GIF8": "a GIF file",
}


@dataclass(frozen=True)
class Developed:
    """An original ready for the pipeline: ``rgb`` uint8 H x W x 3 in sensor orientation, plus metadata.

    ``raw_pattern`` is empty for developed originals (JPEG/TIFF/PNG);
    ``source_quality`` is the estimated JPEG quality of a camera JPEG original (None otherwise).
    """

    rgb: np.ndarray
    make: str
    model: str
    raw_pattern: str
    orientation: int
    source_quality: int | None = None


def _check_header(path: str) -> None:
    size = os.path.getsize(path)
    if size == 0:
        raise BadImageError(path, "file is empty (0 bytes)", "copy the original again from the camera or card")
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, what in _FOREIGN_MAGIC.items():
        if head.startswith(magic):
            raise BadImageError(path, f"is {what}, not a RAW image", "remove it or give it its real extension")
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        raise BadImageError(path, "is a text file, not a RAW image", "remove it from the camera folder")


def _pattern_text(raw: rawpy.RawPy) -> str:
    pattern = raw.raw_pattern
    if pattern is None:
        return "linear"
    desc = raw.color_desc.decode("ascii", "replace")
    return "".join(desc[i] for i in np.asarray(pattern).ravel())


def develop_raw(path: str | os.PathLike, settings: Mapping) -> Developed:
    """Develop one RAW file with ``settings`` (the ``develop`` config section).

    Returns uint8 sRGB (H x W x 3) in sensor orientation. Raises BadImageError
    for empty, foreign, truncated or unsupported files and for files whose
    pixels are all zero (a header-only DNG).
    """
    path = os.fspath(path)
    _check_header(path)
    try:
        with rawpy.imread(path) as raw:
            orientation = int(raw.sizes.flip)  # the file's tag; user_flip below overrides it in sizes
            pixels = raw.sizes.raw_width * raw.sizes.raw_height
            if os.path.getsize(path) < MIN_BYTES_PER_PIXEL * pixels:
                raise BadImageError(
                    path, f"holds {os.path.getsize(path)} bytes for a {raw.sizes.raw_width}x{raw.sizes.raw_height} "
                    "sensor: the pixel data is missing (header-only or truncated file)",
                    "copy the original again from the camera or card")
            rgb = raw.postprocess(
                demosaic_algorithm=rawpy.DemosaicAlgorithm[settings["demosaic"]],
                use_camera_wb=settings["use_camera_wb"],
                no_auto_bright=settings["no_auto_bright"],
                user_flip=settings["user_flip"],
                output_bps=settings["output_bps"],
                output_color=rawpy.ColorSpace[settings["output_color"]],
                gamma=tuple(settings["gamma"]),
            )
            pattern = _pattern_text(raw)
        make, model = make_model(path)
    except rawpy.LibRawFileUnsupportedError:
        raise BadImageError(path, "LibRaw does not recognise this file as a RAW image it can decode",
                            "convert it to DNG with Adobe DNG Converter, or remove it") from None
    except (rawpy.LibRawIOError, rawpy.LibRawDataError, rawpy.LibRawError) as exc:
        raise BadImageError(path, f"cannot be decoded, the file looks truncated or damaged ({type(exc).__name__}: {exc})",
                            "copy the original again from the camera or card") from None
    if rgb.max() == 0:
        raise BadImageError(path, "decodes to an all-black image (header-only file or missing pixel data)",
                            "use a file that contains the sensor data")
    return Developed(rgb, make, model, pattern, orientation)


def developed_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) that :func:`develop_raw` will give, read from the header without decoding pixels."""
    path = os.fspath(path)
    _check_header(path)
    try:
        with rawpy.imread(path) as raw:
            return int(raw.sizes.width), int(raw.sizes.height)
    except rawpy.LibRawError as exc:
        raise BadImageError(path, f"cannot be read as a RAW image ({type(exc).__name__}: {exc})",
                            "copy the original again from the camera or card") from None
