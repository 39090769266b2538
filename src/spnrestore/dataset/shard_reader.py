"""Reading the training-pair shards (layout: :mod:`.shard_format`): the manifests, the shard folders of a
split, and the arrays of a shard memory-mapped, with the fingerprint terms computed when rows are read.

Shards of the former layouts (``<split>/shard-NNNNN/`` with ``target.npy`` and ``other_target.npy`` stored;
raw pixels in a plain ``rgb.npy``) are not read: :func:`open_shard` raises a :class:`SpnRestoreError` that
says to rebuild the data set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..checksums import file_sha256
from ..errors import SpnRestoreError
from .shard_format import (FINGERPRINT_TABLE, FLOAT_ARRAYS, PACKED_RGB, STORED, PackedPatches, _concat,
                           _lazy_index, _load_plane, fit_crop, patch_intensity)

#: How to rebuild the shards of a data set with the workflow.
REBUILD = "snakemake --forcerun shards"


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV with every column as text (names such as 'NA' stay strings)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.astype({c: int for c in ("index", "quality", "y", "x")})


def camera_folders(dataset_dir: str | os.PathLike, split: str) -> list[Path]:
    """The camera folders of one split (those with a ``manifest.csv``), in sorted camera order; none for a
    split without examples, a split that was not built, or one of the former layout (its shards directly in
    ``<split>/``, which :func:`open_shard` refuses)."""
    split_dir = Path(dataset_dir) / split
    if not split_dir.is_dir():
        return []
    found = [p for p in split_dir.iterdir()
             if p.is_dir() and not p.name.startswith(".") and (p / "manifest.csv").is_file()]
    return sorted(found, key=lambda p: p.name)


def split_manifest(dataset_dir: str | os.PathLike, split: str) -> pd.DataFrame:
    """The manifest rows of one split: its camera folders' in sorted camera order (a split with no camera
    folder: its ``manifest.csv``, if any); empty for a split that has no examples or was not built."""
    folders = camera_folders(dataset_dir, split)
    if folders:
        return _concat([read_manifest(f / "manifest.csv") for f in folders])
    path = Path(dataset_dir) / split / "manifest.csv"
    return read_manifest(path) if path.is_file() else _concat([])


def manifest_sha256(dataset_dir: str | os.PathLike) -> str:
    """SHA-256 of ``<dataset_dir>/manifest.csv``: identifies the data a model was trained on."""
    path = Path(dataset_dir) / "manifest.csv"
    if not path.is_file():
        raise SpnRestoreError(f"{path}: missing; build the data set first ({REBUILD}).")
    return file_sha256(path)


def list_shards(dataset_dir: str | os.PathLike, split: str) -> list[Path]:
    """Shard folders of one split, in example order: camera folders in sorted order, each one's shards in
    order (a split of the former layout: its ``shard-*`` folders, which :func:`open_shard` refuses); empty
    when the split has none."""
    folders = camera_folders(dataset_dir, split) or [Path(dataset_dir) / split]
    return [shard for folder in folders for shard in sorted(p for p in folder.glob("shard-*") if p.is_dir())]


class Float32Map:
    """A memory-mapped float16 (or float32) shard array read as float32: indexing returns a float32 copy of
    the rows asked for; ``len``, ``shape``, ``ndim`` and ``dtype`` (float32) are those of an ndarray."""

    dtype = np.dtype(np.float32)

    def __init__(self, stored: np.ndarray):
        self.stored = stored
        self.shape, self.ndim = stored.shape, stored.ndim

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self.stored[key], np.float32)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.stored, dtype or np.float32)


class FingerprintFiles:
    """The fingerprints named by the camera folders' ``fingerprints.csv``, memory-mapped on first use and
    shared by every shard opened with this object (open one per process: memory maps do not cross a
    fork safely)."""

    def __init__(self):
        self.tables: dict[Path, list[str]] = {}
        self.planes: dict[str, np.ndarray] = {}

    def table(self, folder: Path) -> list[str]:
        """The fingerprint paths of a camera folder, by row."""
        if folder not in self.tables:
            path = folder / FINGERPRINT_TABLE
            if not path.is_file():
                raise SpnRestoreError(f"{path}: missing; the data set is incomplete — rebuild it.")
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
            paths = [os.fspath(folder / p) if str(local) == "1" else p
                     for p, local in zip(table["path"], table["in_folder"])]
            gone = [p for p in paths if not Path(p).is_file()]
            if gone:
                raise SpnRestoreError(f"{path}: fingerprint(s) {gone} missing: the targets of the data set are "
                                      "computed from them; rebuild the fingerprints (or the data set).")
            self.tables[folder] = paths
        return self.tables[folder]

    def plane(self, path: str) -> np.ndarray:
        if path not in self.planes:
            self.planes[path] = _load_plane(path, "fingerprint", "rebuild the fingerprints (or the data set)")
        return self.planes[path]


class FingerprintTerms:
    """The fingerprint terms of a shard's patches (``target`` or ``other_target``), computed when indexed:
    a float32 (n, 1, P, P) array of the rows asked for, equal to the whole image's
    :func:`spnrestore.spn.fingerprint_term` cropped (with the fingerprint tiled by :func:`fit_crop`)."""

    dtype = np.dtype(np.float32)

    def __init__(self, rgb: np.ndarray, corner: np.ndarray, which: np.ndarray, paths: list[str],
                 files: FingerprintFiles):
        self.rgb, self.corner, self.which, self.paths, self.files = rgb, corner, which, paths, files
        n, _, h, w = rgb.shape
        self.shape, self.ndim = (n, 1, h, w), 4

    def __len__(self) -> int:
        return self.shape[0]

    def terms(self, rows: np.ndarray, intensity: np.ndarray | None = None) -> np.ndarray:
        """Terms of ``rows`` (1-D indices); ``intensity``: their :func:`patch_intensity` when already known."""
        rows = np.asarray(rows, np.int64)
        out = (patch_intensity(self.rgb[rows]) if intensity is None else intensity.copy())
        patch = self.shape[-1]
        corner, which = np.asarray(self.corner[rows]), np.asarray(self.which[rows])
        for k in range(len(rows)):
            plane = self.files.plane(self.paths[int(which[k])])
            out[k] *= fit_crop(plane, int(corner[k, 0]), int(corner[k, 1]), patch)
        return out[:, None]

    def __getitem__(self, key) -> np.ndarray:
        return _lazy_index(len(self), key, self.terms)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.asarray(self.terms(np.arange(len(self))), dtype or np.float32)


def open_shard(shard_dir: str | os.PathLike, fingerprints: FingerprintFiles | None = None) -> dict:
    """The arrays of one shard (``rgb``, ``residual``, ``target``, ``other_target``, ``quality``; see
    :mod:`.shard_format` for shapes), memory-mapped read-only; packed pixels as :class:`PackedPatches`
    (decoded per row read); the float maps as :class:`Float32Map` (float32 rows, whatever precision they are
    stored in) or, for targets that are not stored, :class:`FingerprintTerms`
    (computed from the patch and the fingerprints, memory-mapped through ``fingerprints``: pass one
    :class:`FingerprintFiles` to the shards opened in a process). A shard of a former layout (stored
    ``other_target.npy``, raw pixels in ``rgb.npy``) raises a :class:`SpnRestoreError`: rebuild the data set."""
    shard_dir = Path(shard_dir)
    stored = {}
    names = {p.stem for p in shard_dir.glob("*.npy")}
    former = ("its targets stored (other_target.npy)" if "other_target" in names
              else "raw pixels (rgb.npy)" if "rgb" in names else None)
    if former is not None:
        raise SpnRestoreError(f"{shard_dir}: a shard of a former layout, with {former}, which this version no "
                              f"longer reads; rebuild the data set: {REBUILD}")
    files = [*PACKED_RGB, *(n for n in STORED if n != "rgb"), *(n for n in ("target",) if n in names)]
    for name in files:
        path = shard_dir / f"{name}.npy"
        if not path.is_file():
            raise SpnRestoreError(f"{path}: missing; the shard is incomplete — rebuild the data set.")
        stored[name] = np.load(path, mmap_mode="r", allow_pickle=False)
    stored["rgb"] = PackedPatches(stored.pop(PACKED_RGB[0]), stored.pop(PACKED_RGB[1]), shard_dir)
    n = {len(a) for a in stored.values()}
    if len(n) != 1:
        raise SpnRestoreError(f"{shard_dir}: arrays have different lengths {n}; rebuild the data set.")
    arrays = {name: Float32Map(a) if name in FLOAT_ARRAYS else a for name, a in stored.items()}
    files = fingerprints if fingerprints is not None else FingerprintFiles()
    paths = files.table(shard_dir.parent)
    prints = stored["prints"]
    if len(prints) and int(prints.max()) >= len(paths):
        raise SpnRestoreError(f"{shard_dir}: names fingerprint {int(prints.max())} but "
                              f"{shard_dir.parent / FINGERPRINT_TABLE} has {len(paths)}; rebuild the data set.")
    if "target" not in arrays:
        arrays["target"] = FingerprintTerms(stored["rgb"], stored["corner"], prints[:, 0], paths, files)
    arrays["other_target"] = FingerprintTerms(stored["rgb"], stored["corner"], prints[:, 1], paths, files)
    return arrays


def read_rows(arrays: Mapping, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The batch arrays (:data:`ARRAYS`) of ``rows`` (1-D indices) of one shard opened by :func:`open_shard`:
    rgb and quality as stored, float maps as float32; the intensity of the patches is computed once for both
    fingerprint terms."""
    out = {name: arrays[name][rows] for name in ("rgb", "residual", "quality")}
    intensity = None
    for name in ("target", "other_target"):
        a = arrays[name]
        if isinstance(a, FingerprintTerms):
            if intensity is None:
                intensity = patch_intensity(out["rgb"])
            out[name] = a.terms(rows, intensity)
        else:
            out[name] = a[rows]
    return out
