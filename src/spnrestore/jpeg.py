"""JPEG copies of developed images, and lossless PNG, with OpenCV's codecs; JPEG quality estimation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_bytes
from .errors import BadImageError

SUBSAMPLING = {
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
}


def encode_jpeg(rgb: np.ndarray, quality: int, subsampling: str = "420") -> bytes:
    """Encode uint8 RGB (H x W x 3) as baseline JPEG at ``quality`` (1..100)."""
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality {quality} is outside 1..100")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SUBSAMPLING[subsampling]]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {rgb.shape} image as JPEG")
    return buf.tobytes()


def write_jpeg(path: str | os.PathLike, rgb: np.ndarray, quality: int, subsampling: str = "420") -> None:
    """Write ``rgb`` as a JPEG file atomically."""
    write_bytes(path, encode_jpeg(rgb, quality, subsampling))


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 gray (H x W) or RGB (H x W x 3) image as PNG atomically (lossless)."""
    pixels = image[..., ::-1] if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} image as PNG")
    write_bytes(path, buf.tobytes())


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file (JPEG/PNG/TIFF 8-bit) as uint8 RGB H x W x 3 (JPEG/PNG EXIF orientation ignored).

    OpenCV turns a TIFF by its Orientation tag all the same; originals, which may be
    tagged, are read with :func:`spnrestore.originals.load_developed` instead.
    """
    return decode_rgb(np.fromfile(os.fspath(path), dtype=np.uint8), path)


def decode_rgb(data, name: str | os.PathLike = "image") -> np.ndarray:
    """The bytes of an image file (JPEG/PNG/TIFF 8-bit) as uint8 RGB H x W x 3, EXIF orientation ignored."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise ValueError(f"{name}: cannot be decoded as an image")
    return bgr[..., ::-1].copy()


#: IJG (libjpeg) standard luminance quantisation table, natural (row-major) order, quality 50.
IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
], np.int64)

#: Natural index of each zig-zag position (a DQT segment stores its 64 values in zig-zag order).
ZIGZAG = np.array(sorted(range(64), key=lambda n: (n // 8 + n % 8, n // 8 if (n // 8 + n % 8) % 2 else -(n // 8))))

_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def ijg_table(quality: int) -> np.ndarray:
    """The IJG luminance table scaled to ``quality`` 1..100 as libjpeg does (baseline: entries 1..255), int64 (64,)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((IJG_LUMINANCE * scale + 50) // 100, 1, 255)


IJG_TABLES = np.stack([ijg_table(q) for q in range(1, 101)])  # (100, 64): row q-1 is quality q


@dataclass(frozen=True)
class JpegQuality:
    """Quality estimated from a JPEG's luminance table: ``quality`` 1..100; ``exact`` when the table is the IJG
    table of that quality (else the nearest one, by mean absolute difference ``error`` of the 64 entries)."""

    quality: int
    exact: bool
    error: float


def luminance_table(data: bytes, name: str = "image") -> np.ndarray | None:
    """The quantisation table of a JPEG's first colour component, natural order, int64 (64,).

    ``data``: the file's bytes. Returns None when ``data`` is not a JPEG (no
    SOI marker); a JPEG whose header is cut short or has no table for its
    first component raises :class:`BadImageError` naming ``name``.
    """
    if data[:2] != b"\xff\xd8":
        return None
    tables: dict[int, np.ndarray] = {}
    component_table, pos = None, 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise BadImageError(name, f"damaged JPEG header (no marker at byte {pos})", "re-export or re-copy the file")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xDB:
            at = 0
            while at < len(segment):
                precision, index = segment[at] >> 4, segment[at] & 0x0F
                size = 128 if precision else 64
                raw = np.frombuffer(segment[at + 1:at + 1 + size], ">u2" if precision else "u1")
                if raw.size != 64:
                    break
                table = np.empty(64, np.int64)
                table[ZIGZAG] = raw
                tables[index] = table
                at += 1 + size
        elif marker in _SOF_MARKERS and len(segment) >= 9:
            component_table = segment[8]  # Tq of the first component (P, Y, X, Nf, then C, HV, Tq)
        elif marker == 0xDA:  # start of scan: the header is complete
            break
        pos += 2 + length
    table = tables.get(component_table if component_table is not None else 0)
    if table is None:
        raise BadImageError(name, "JPEG header has no quantisation table for its luminance (truncated file?)",
                            "re-export or re-copy the file")
    return table


def jpeg_quality(data: bytes, name: str = "image") -> JpegQuality | None:
    """Quality of a JPEG file's bytes ``data`` from its luminance table compared with the IJG tables of
    qualities 1..100; None when ``data`` is not a JPEG. A damaged header raises BadImageError naming ``name``."""
    table = luminance_table(data, name)
    if table is None:
        return None
    errors = np.abs(IJG_TABLES - table).mean(axis=1)
    best = int(np.argmin(errors))
    return JpegQuality(quality=best + 1, exact=bool(errors[best] == 0), error=float(errors[best]))


def estimate_jpeg_quality(path: str | os.PathLike) -> JpegQuality | None:
    """Quality of a JPEG file (:func:`jpeg_quality` of its bytes); None for files that are not JPEGs (PNG, TIFF).

    Files written by libjpeg-based encoders (OpenCV, Pillow, most software)
    match one IJG table exactly; camera firmware often uses its own tables, for
    which the nearest quality is returned with ``exact=False``.
    """
    return jpeg_quality(Path(path).read_bytes(), os.fspath(path))
