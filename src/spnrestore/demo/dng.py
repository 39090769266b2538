"""Writing a camera's Bayer frame as an uncompressed DNG file (with pidng).

The frame is one full-size tile; 16-bit cameras store 16-bit containers (pidng's
14-bit packer is broken), 12-bit cameras store packed 12-bit samples (even width).
pidng adds NewSubfileType, Compression, DNGVersion, Software and the tile offsets
itself, so those tags are not set here.
"""

from __future__ import annotations

import numpy as np
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import CalibrationIlluminant, PhotometricInterpretation

from spnrestore.atomic import write_bytes
from spnrestore.demo.sensor import CFA_PATTERNS, Camera

RATIONAL_DENOMINATOR = 10_000
ORIENTATION_NORMAL, ORIENTATION_ROTATE_90_CW = 1, 6


def _rationals(values: np.ndarray) -> list[list[int]]:
    return [[int(round(v * RATIONAL_DENOMINATOR)), RATIONAL_DENOMINATOR] for v in np.ravel(values)]


def dng_bytes(raw: np.ndarray, camera: Camera, orientation: int, timestamp: str) -> bytes:
    """The DNG file of ``raw`` (uint16 ``(H, W)``) shot by ``camera``.

    ``orientation`` is the TIFF Orientation (1 landscape, 6 portrait: rotate 90
    degrees clockwise to view); ``timestamp`` is ``"YYYY:MM:DD HH:MM:SS"``.
    """
    height, width = raw.shape
    tags = DNGTags()
    tags.set(Tag.ImageWidth, width)
    tags.set(Tag.ImageLength, height)
    tags.set(Tag.TileWidth, width)
    tags.set(Tag.TileLength, height)
    tags.set(Tag.BitsPerSample, camera.bits)
    tags.set(Tag.SamplesPerPixel, 1)
    tags.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    tags.set(Tag.CFARepeatPatternDim, [2, 2])
    tags.set(Tag.CFAPattern, list(CFA_PATTERNS[camera.cfa]))
    tags.set(Tag.BlackLevelRepeatDim, [2, 2])
    tags.set(Tag.BlackLevel, list(camera.black))
    tags.set(Tag.WhiteLevel, [camera.white])
    tags.set(Tag.ColorMatrix1, _rationals(camera.cam_from_xyz))
    tags.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    tags.set(Tag.AsShotNeutral, _rationals(camera.as_shot_neutral))
    tags.set(Tag.Orientation, orientation)
    tags.set(Tag.Make, "Synth")
    tags.set(Tag.Model, camera.name.split("_", 1)[1].replace("_", " "))
    tags.set(Tag.UniqueCameraModel, camera.name)
    tags.set(Tag.DateTime, timestamp)
    writer = RAW2DNG()
    writer.options(tags, path="", compress=False)
    return bytes(writer.convert(np.ascontiguousarray(raw, dtype=np.uint16)))


def write_dng(path, raw: np.ndarray, camera: Camera, orientation: int, timestamp: str) -> None:
    """Write :func:`dng_bytes` to ``path`` atomically (temporary name, then rename)."""
    write_bytes(path, dng_bytes(raw, camera, orientation, timestamp))
