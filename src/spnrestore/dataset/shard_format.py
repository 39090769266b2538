"""The on-disk layout of the training-pair shards: what the writer (:mod:`.shard_writer`) and the reader
(:mod:`.shard_reader`) share.

Layout of a data set folder (one folder per split and camera: the workflow writes each in a job of its own)::

    <dataset_dir>/manifest.csv                        one row per example, all splits
    <dataset_dir>/<split>/manifest.csv                the rows of one split (cameras in sorted order)
    <dataset_dir>/<split>/<camera>/manifest.csv       the rows of one camera of the split
    <dataset_dir>/<split>/<camera>/fingerprints.csv   the fingerprints the targets are computed from
                                                      (columns camera, path; row i is fingerprint i)
    <dataset_dir>/<split>/<camera>/fingerprints/      copies of fingerprints given as arrays (if any)
    <dataset_dir>/<split>/<camera>/shard-00000/
        rgb_files.npy uint8   (B,)          JPEG pixels, RGB, 0..255: each patch as a lossless WebP
                                            file, the N files one after the other
        rgb_offsets.npy int64 (N + 1,)      where patch i's file starts and ends in rgb_files.npy
        residual.npy  float16 (N, 1, P, P)  plain residual of the JPEG, cut from the full-image
                                            residual (0..255 intensity units)
        quality.npy   uint8   (N,)          JPEG quality 1..100
        corner.npy    int32   (N, 2)        (y, x) of the patch in its image
        prints.npy    uint16  (N, 2)        rows of fingerprints.csv: the example's camera and the
                                            other camera (non-match tracking)
        target.npy    float16 (N, 1, P, P)  only for ``target='original_residual'``

The targets of ``target='camera_term'`` are not stored: :func:`.shard_reader.open_shard` computes them when
rows are read, from the patch's pixels and the fingerprints (memory-mapped), exactly as
:func:`spnrestore.spn.fingerprint_term` gives them on the whole image (float32, the same bits): ``target``
= gray(rgb)/255 * K of the camera cropped at (y, x), ``other_target`` = the same with another camera's K
tiled from its top-left corner (wrapped) or cropped to the image (:func:`fit_crop`). Both are pointwise in
the patch.

The pixels are stored as lossless WebP files (:func:`pack_patches`, about 10 ms a 128 x 128 patch;
:class:`PackedPatches` decodes the rows asked for, 0.2-0.4 ms a patch): a decoded JPEG takes 0.1-0.25 of its 3
bytes a pixel (less at lower quality; PNG takes 0.2-0.4), so a shard stores about 2.3-2.8 bytes a patch pixel
(the float16 residual 2), where raw pixels took 5 and stored float32 targets 9.

Every shard holds ``shard_size`` examples except the last of a camera. Arrays are plain ``.npy`` files
opened with ``np.load(mmap_mode='r')``; the float maps are stored in half precision (:data:`FLOAT_DTYPE`;
relative rounding below 2**-11, far under the noise the model learns from) and the reader hands them out as
float32. The examples of a split are those of its cameras in sorted camera order, each in sorted (image,
quality) order and patches in raster order: the same order as when a split was one folder, so the training
batches do not depend on the layout. The same inputs and settings always give byte-identical files.

Shards of the former layouts (``<split>/shard-NNNNN/`` with ``target.npy`` and ``other_target.npy`` stored;
raw pixels in a plain ``rgb.npy``) are no longer read: :func:`.shard_reader.open_shard` refuses them with an
error that says to rebuild the data set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from ..errors import BadImageError, SpnRestoreError
from .. import spn

TARGETS = ("camera_term", "original_residual")
#: The arrays of a batch (what :func:`.shard_reader.open_shard` and :func:`.shard_reader.read_rows` give).
ARRAYS = ("rgb", "residual", "target", "other_target", "quality")
#: The float maps of a shard and the precision they are stored in.
FLOAT_ARRAYS = ("residual", "target", "other_target")
FLOAT_DTYPE = np.float16
#: The arrays a shard stores (plus ``target`` for ``target='original_residual'``); ``rgb`` as two files
#: (:data:`PACKED_RGB`).
STORED = ("rgb", "residual", "quality", "corner", "prints")
#: The files of the packed pixels: the image files one after the other, and their offsets.
PACKED_RGB = ("rgb_files", "rgb_offsets")
#: How a patch's pixels are encoded: lossless WebP (OpenCV: quality above 100). On JPEG pixels 0.6x the bytes
#: of PNG at zlib level 3, for 10 ms against 1 ms of encoding a 128 x 128 patch; decoding costs the same.
PATCH_FORMAT = (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101])
FINGERPRINT_TABLE = "fingerprints.csv"
EXAMPLE_COLUMNS = ("camera", "image", "quality", "split", "jpeg", "residual")
MANIFEST_COLUMNS = (
    "split", "shard", "index", "camera", "image", "quality", "y", "x",
    "target", "other_camera", "jpeg", "jpeg_sha256", "residual", "target_source", "other_source",
)


def _load_plane(path: str | os.PathLike, what: str, fix: str) -> np.ndarray:
    """Load a 2-D float ``.npy`` (memory-mapped) or raise a :class:`BadImageError`."""
    if not Path(path).is_file():
        raise BadImageError(path, f"{what} file does not exist", fix)
    try:
        plane = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadImageError(path, f"{what} file is not a readable .npy array ({exc})", fix) from exc
    if plane.ndim != 2 or plane.dtype.kind != "f":
        raise BadImageError(path, f"{what} must be a 2-D float array, found {plane.dtype} {plane.shape}", fix)
    return plane


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Manifest rows of several folders, in order (an empty manifest when there are none)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def fit_crop(plane: np.ndarray, y: int, x: int, patch: int) -> np.ndarray:
    """The ``patch`` x ``patch`` window at (y, x) of ``plane`` tiled from its top-left corner (wrapped where the
    image is larger than the plane, cropped where it is smaller), float32, without building the tiled plane."""
    h, w = plane.shape
    if y + patch <= h and x + patch <= w:
        return np.asarray(plane[y:y + patch, x:x + patch], np.float32)
    rows, cols = (y + np.arange(patch)) % h, (x + np.arange(patch)) % w
    return np.asarray(plane[np.ix_(rows, cols)], np.float32)


def patch_intensity(rgb: np.ndarray) -> np.ndarray:
    """gray(rgb)/255 of uint8 patches (N, 3, P, P) -> float32 (N, P, P), pixel for pixel the intensity
    :func:`spnrestore.spn.fingerprint_term` computes on the whole image."""
    n, _, h, w = rgb.shape
    if n == 0:
        return np.zeros((0, h, w), np.float32)
    pixels = np.ascontiguousarray(np.asarray(rgb).transpose(0, 2, 3, 1)).reshape(n * h, w, 3)
    return spn.gray_intensity(pixels).reshape(n, h, w)


def _lazy_index(n: int, key, fetch: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``array[key]`` of an (n, ...) array whose rows are made when asked for: ``fetch(rows)`` gives the rows of
    1-D indices; the first index of ``key`` picks rows (an int, a slice, indices, a mask), the rest index the
    rows as an ndarray would."""
    first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
    rows = np.arange(n)[first]
    out = fetch(np.atleast_1d(rows))
    if rows.ndim == 0:
        out = out[0]
    return out[(slice(None),) * rows.ndim + rest] if rest else out


def pack_patches(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 patches (N, 3, P, P) -> (their image files (:data:`PATCH_FORMAT`) one after the other, uint8 (B,);
    offsets, int64 (N + 1,)). Lossless: :class:`PackedPatches` gives back the same pixels."""
    files = []
    for i, patch in enumerate(rgb):
        ok, file = cv2.imencode(PATCH_FORMAT[0], np.ascontiguousarray(patch.transpose(1, 2, 0)[:, :, ::-1]),
                                PATCH_FORMAT[1])
        if not ok:
            raise SpnRestoreError(f"patch {i} of a shard: OpenCV could not encode it as {PATCH_FORMAT[0]}")
        files.append(file.reshape(-1))
    offsets = np.zeros(len(files) + 1, np.int64)
    np.cumsum([len(f) for f in files], out=offsets[1:])
    return (np.concatenate(files) if files else np.zeros(0, np.uint8)), offsets


class PackedPatches:
    """The uint8 (N, 3, P, P) pixels of a shard stored by :func:`pack_patches`, decoded when indexed (rows
    asked for only); ``len``, ``shape``, ``ndim`` and ``dtype`` are those of the ndarray it stands for."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, data: np.ndarray, offsets: np.ndarray, where: Path):
        self.data, self.offsets, self.where = data, np.asarray(offsets, np.int64), where
        n = len(self.offsets) - 1
        fits = n >= 0 and (n == 0 or (self.offsets[0] == 0 and self.offsets[-1] == len(data)
                                      and (np.diff(self.offsets) > 0).all()))
        if not fits:
            raise SpnRestoreError(f"{where}: the pixel offsets do not fit the {len(data)} bytes of image files; "
                                  "the shard is damaged: rebuild the data set.")
        self.shape = (n, 3, 0, 0)
        if n:
            side = self._decode(0).shape[-1]
            self.shape = (n, 3, side, side)

    def _decode(self, i: int) -> np.ndarray:
        bgr = cv2.imdecode(np.asarray(self.data[self.offsets[i]:self.offsets[i + 1]]), cv2.IMREAD_UNCHANGED)
        if (bgr is None or bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3
                or bgr.shape[0] != bgr.shape[1] or (self.shape[2] and bgr.shape[:2] != self.shape[2:])):
            raise SpnRestoreError(f"{self.where}: patch {i} is not a readable square 8-bit RGB image of the "
                                  "shard's size; the shard is damaged: rebuild the data set.")
        return bgr[:, :, ::-1].transpose(2, 0, 1)

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """The pixels of ``rows`` (1-D indices), uint8 (n, 3, P, P)."""
        out = np.empty((len(rows),) + self.shape[1:], np.uint8)
        for k, i in enumerate(rows):
            out[k] = self._decode(int(i))
        return out

    def __getitem__(self, key) -> np.ndarray:
        return _lazy_index(len(self), key, self.rows)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self[:], dtype or np.uint8)

