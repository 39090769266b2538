"""Camera identity read from image metadata: Make, Model, body serial number, Orientation.

Reads the EXIF block of JPEG (APP1), PNG (eXIf chunk), WebP and TIFF files, DNG
and the TIFF-based RAW formats (NEF, CR2, ARW, PEF, ORF, RW2...) from their
headers only: no pixel is decoded. Pillow parses the tags; RAW files whose TIFF
header carries a vendor magic number (Olympus ``IIRO``/``IIRS``, Panasonic
``IIU``) are parsed from their first :data:`RAW_HEAD_BYTES` bytes with the
standard magic put back. TIFF-based files are parsed directory by directory
(``PIL.Image.Exif.load_from_fp``), since Pillow does not open CFA DNGs as images;
other formats through ``PIL.Image.open``, which reads headers lazily.

A tag that is missing, empty or of an unexpected type gives ``None``; only a file
that cannot be read at all, or is not an image format this module knows, raises
:class:`~spnrestore.errors.BadImageError`.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

from PIL import Image

from .errors import BadImageError

MAKE, MODEL, ORIENTATION = 0x010F, 0x0110, 0x0112
EXIF_IFD = 0x8769
BODY_SERIAL_NUMBER = 0xA431  # EXIF 2.3, in the Exif sub-IFD
CAMERA_SERIAL_NUMBER = 0xC62F  # DNG, in IFD0
UNIQUE_CAMERA_MODEL = 0xC614  # DNG, in IFD0

#: Bytes read from a RAW file with a vendor TIFF magic; its IFD0 and Exif IFD lie well inside them in practice.
RAW_HEAD_BYTES = 1 << 20
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_VENDOR_TIFF_MAGIC = (b"IIRO", b"IIRS", b"IIU\x00", b"MMOR")


@dataclass(frozen=True)
class CameraTags:
    """Identity tags of one image file; every field is ``None`` when the file does not carry it.

    ``make``, ``model``: EXIF Make and Model, stripped (``model`` falls back to
    DNG UniqueCameraModel); ``serial``: body serial number (EXIF
    BodySerialNumber, else DNG CameraSerialNumber; all-zero placeholders count
    as missing); ``orientation``: EXIF Orientation 1..8.
    """

    make: str | None
    model: str | None
    serial: str | None
    orientation: int | None


def _text(value) -> str | None:
    """A tag value as stripped text, or None when it is absent, empty or not text."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", " ").strip()
    return value or None


def _serial(value) -> str | None:
    """A serial number as text; None for absent values and all-zero placeholders written by some firmware."""
    if isinstance(value, int):
        value = str(value)
    text = _text(value)
    return None if text is None or set(text) <= {"0", " ", "-"} else text


def _orientation(value) -> int | None:
    """EXIF Orientation 1..8, or None for absent or invalid values."""
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _read_tags(path: str | os.PathLike) -> tuple[dict, dict]:
    """(IFD0 tags, Exif sub-IFD tags) of ``path`` as {tag number: value}; an unreadable sub-IFD gives {}."""

    def both(exif: Image.Exif) -> tuple[dict, dict]:
        try:
            sub = dict(exif.get_ifd(EXIF_IFD))
        except Exception:  # a damaged Exif sub-IFD pointer: IFD0 is still usable
            sub = {}
        return dict(exif), sub

    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        if magic in _TIFF_MAGIC + _VENDOR_TIFF_MAGIC:  # parse the directories only (Pillow will not open CFA DNGs)
            fp = f if magic in _TIFF_MAGIC else io.BytesIO(_TIFF_MAGIC[magic[:2] == b"MM"] + f.read(RAW_HEAD_BYTES)[4:])
            exif = Image.Exif()
            exif.load_from_fp(fp)
            return both(exif)
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # no decoding here: a 200 MP photo is no "bomb"
    try:
        with Image.open(path) as image:
            return both(image.getexif())
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def read_camera_tags(path: str | os.PathLike) -> CameraTags:
    """Make, Model, serial number and Orientation of an image file, from its header only.

    Raises :class:`BadImageError` when ``path`` cannot be read or is not an
    image format with EXIF support (the message says which); a readable image
    without metadata gives a :class:`CameraTags` of ``None`` fields.
    """
    try:
        with warnings.catch_warnings():  # Pillow warns of corrupt tags (then left out) and of huge declared sizes
            warnings.simplefilter("ignore")
            ifd0, sub = _read_tags(path)
    except Image.UnidentifiedImageError:
        raise BadImageError(path, "not an image format whose metadata can be read (JPEG, PNG, TIFF, DNG or a "
                                  "TIFF-based RAW)", "leave it out or convert it") from None
    except OSError as exc:
        if exc.filename is not None:
            raise BadImageError(path, f"cannot be read ({exc.strerror})",
                                "check the file and its permissions") from None
        raise BadImageError(path, f"damaged image header ({exc})", "re-copy the file") from None
    except Exception as exc:  # Pillow's parsers raise assorted errors on damaged headers
        raise BadImageError(path, f"damaged image header ({type(exc).__name__}: {exc})",
                            "re-copy the file") from None
    return CameraTags(
        make=_text(ifd0.get(MAKE)),
        model=_text(ifd0.get(MODEL)) or _text(ifd0.get(UNIQUE_CAMERA_MODEL)),
        serial=_serial(sub.get(BODY_SERIAL_NUMBER)) or _serial(ifd0.get(CAMERA_SERIAL_NUMBER)),
        orientation=_orientation(ifd0.get(ORIENTATION)),
    )
