"""JPEG copies of developed images, and lossless PNG, with OpenCV's codecs."""

from __future__ import annotations

import os

import cv2
import numpy as np

from .atomic import write_bytes

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
    """Read an image file (JPEG/PNG/TIFF 8-bit) as uint8 RGB H x W x 3 (EXIF orientation ignored)."""
    data = np.fromfile(os.fspath(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise ValueError(f"{path}: cannot be decoded as an image")
    return bgr[..., ::-1].copy()


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """Read an 8-bit gray image file (PNG) as uint8 H x W."""
    gray = cv2.imdecode(np.fromfile(os.fspath(path), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError(f"{path}: cannot be decoded as an image")
    return gray
