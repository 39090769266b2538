"""Developed originals (camera JPEG, 8/16-bit TIFF, PNG), and the one entry point for every original.

A developed original skips RAW development: its stored pixels are used as they
are, so every image of a camera is in the sensor's pixel layout. A camera that
shoots a portrait either keeps the sensor layout and tags the file (EXIF
Orientation 6 or 8: the display rotation a viewer applies), or turns the
pixels itself and leaves no tag. The tag is undone by reading the stored
pixels without it (JPEG and PNG: decoded with the orientation ignored; TIFF:
the tag is set to 1 in a copy of the bytes before decoding, since libtiff-based
readers turn the pixels by it); the result equals
:func:`spnrestore.spn.to_sensor_orientation` applied to the displayed image.
An image turned by the camera without a tag keeps its stored size, the
transpose of its camera's; the stages that compare it with the fingerprint
handle it (:mod:`spnrestore.stages.spn`: left out of the fingerprint, scored
against both quarter turns of it).

:func:`load_original` and :func:`original_size` dispatch on the ``format``
column of discovery, so RAW files (developed by :mod:`spnrestore.raw`) and
developed originals flow through the same stages.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from pathlib import Path
from typing import Iterator, Mapping

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .raw import Developed, develop_raw, developed_size
from .discovery import DEVELOPED_EXTENSIONS
from .errors import BadImageError
from .jpeg import jpeg_quality

DEVELOPED_FORMATS = frozenset(DEVELOPED_EXTENSIONS.values())

ORIENTATION, MAKE, MODEL = 0x0112, 0x010F, 0x0110
_FIX = "re-copy the file from the camera or card, or remove it from the camera folder"


def is_developed(fmt: str) -> bool:
    """Whether a discovery ``format`` is a developed image (jpeg, tiff, png) rather than a RAW file."""
    return fmt in DEVELOPED_FORMATS


def _tiff_orientation_offset(data: bytes) -> tuple[int, str] | None:
    """(byte offset, byte order) of the value of IFD0's Orientation entry in TIFF ``data``; None when absent."""
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None or len(data) < 8:
        return None
    (ifd,) = struct.unpack_from(order + "I", data, 4)
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack_from(order + "H", data, ifd)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(data) - 11), 12):
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        if tag == ORIENTATION and kind == 3:
            return entry + 8, order
    return None


def _without_tiff_orientation(data: bytes) -> bytes:
    """TIFF ``data`` with IFD0's Orientation set to 1, so a decoder returns the stored pixel layout."""
    found = _tiff_orientation_offset(data)
    if found is None:
        return data
    offset, order = found
    return data[:offset] + struct.pack(order + "H", 1) + data[offset + 2:]


@contextlib.contextmanager
def _opened(source, path: str) -> Iterator[Image.Image]:
    """Pillow's lazily decoded image of ``source`` (a path or a binary stream) whose read errors become
    BadImageError naming ``path``; Pillow's pixel-count guard is off meanwhile (200-Mpx phone shots exceed it)."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(source) as image:
            yield image
    except UnidentifiedImageError:
        raise BadImageError(path, "cannot be read as a JPEG, TIFF or PNG image (unrecognised content, or a sample "
                                  "type such as float that is not supported)", _FIX) from None
    except (OSError, ValueError, KeyError, SyntaxError) as exc:
        raise BadImageError(path, f"cannot be read as a JPEG, TIFF or PNG image ({exc})", _FIX) from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _metadata(data: bytes, path: str) -> tuple[int, str, str]:
    """(EXIF Orientation, 0 when absent; Make; Model) of an image file's bytes, read before any decoding."""
    with _opened(io.BytesIO(data), path) as image:
        exif = image.getexif()  # TIFF: IFD0 as stored (Pillow turns TIFF pixels only when it loads them)
    orientation = exif.get(ORIENTATION, 0)
    return (int(orientation) if isinstance(orientation, int) else 0,
            str(exif.get(MAKE, "")).strip("\x00 "), str(exif.get(MODEL, "")).strip("\x00 "))


def to_uint8_rgb(pixels: np.ndarray, path: str) -> np.ndarray:
    """uint8 RGB H x W x 3 of a decoded OpenCV image (BGR/BGRA/gray, uint8 or uint16).

    16-bit samples become ``round(v / 257)`` (65535 -> 255); gray is repeated in
    three channels; alpha is dropped. Other sample types raise BadImageError.
    """
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise BadImageError(path, f"has {pixels.dtype} samples; only 8- and 16-bit integer images are supported",
                            "export it as an 8- or 16-bit TIFF or PNG")
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels[..., 2::-1])  # BGR(A) -> RGB


def _first_scan(data: bytes) -> int:
    """Offset of the main image's first start-of-scan marker in JPEG ``data``, found by walking the marker
    segments (so an EXIF thumbnail inside APP1 is skipped); the end-of-image marker must follow it, and
    camera trailers (Samsung, motion photos) may follow that. ``len(data)`` when no scan is found."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        if data[i + 1] == 0xDA:
            return i
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return len(data)


def load_developed(path: str | os.PathLike) -> Developed:
    """A developed original as uint8 RGB H x W x 3 in its stored (sensor) pixel layout.

    ``orientation`` is the EXIF Orientation tag (0 when absent), ``make`` and
    ``model`` the EXIF Make and Model, ``raw_pattern`` is empty and
    ``source_quality`` is the nearest IJG quality of a JPEG's luminance table
    (None for TIFF and PNG). Empty, undecodable or float files raise BadImageError.
    """
    path = os.fspath(path)
    data = Path(path).read_bytes()
    if not data:
        raise BadImageError(path, "file is empty (0 bytes)", _FIX)
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[_first_scan(data):]:
        raise BadImageError(path, "JPEG ends before its end-of-image marker (truncated file)", _FIX)
    orientation, make, model = _metadata(data, path)
    stored = _without_tiff_orientation(data)
    pixels = cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_UNCHANGED)  # EXIF orientation ignored
    if pixels is None or pixels.size == 0:
        raise BadImageError(path, "cannot be decoded (truncated or damaged image data)", _FIX)
    quality = jpeg_quality(data, path)
    return Developed(to_uint8_rgb(pixels, path), make, model, "", orientation,
                     None if quality is None else quality.quality)


def load_original(path: str | os.PathLike, fmt: str, develop_settings: Mapping) -> Developed:
    """Any original as uint8 RGB H x W x 3 in sensor orientation: RAW files developed with
    ``develop_settings`` (the ``develop`` config section), developed images (``fmt`` jpeg/tiff/png) loaded."""
    return load_developed(path) if is_developed(fmt) else develop_raw(path, develop_settings)


def original_size(path: str | os.PathLike, fmt: str) -> tuple[int, int]:
    """(width, height) that :func:`load_original` will give, read from the header without decoding pixels."""
    if not is_developed(fmt):
        return developed_size(path)
    path = os.fspath(path)
    with _opened(path, path) as image:
        if image.format == "TIFF":  # Pillow reports TIFF sizes after the display rotation
            return int(image.tag_v2[256]), int(image.tag_v2[257])
        return image.size
