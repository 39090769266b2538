"""Training-pair shards: fixed-size folders of patch arrays, written deterministically.

Layout of a data set folder::

    <dataset_dir>/manifest.csv               one row per example, all splits
    <dataset_dir>/<split>/manifest.csv       the rows of one split
    <dataset_dir>/<split>/shard-00000/
        rgb.npy           uint8   (N, 3, P, P)  JPEG pixels, RGB, 0..255
        residual.npy      float16 (N, 1, P, P)  plain residual of the JPEG, cut from the
                                                full-image residual (0..255 intensity units)
        target.npy        float16 (N, 1, P, P)  what the model should output (see ``target``)
        other_target.npy  float16 (N, 1, P, P)  fingerprint term of another camera on the
                                                same patch (non-match tracking)
        quality.npy       uint8   (N,)          JPEG quality 1..100

Every shard holds ``shard_size`` examples except the last of a split. Arrays
are plain ``.npy`` files opened with ``np.load(mmap_mode='r')``; the float maps
are stored in half precision (:data:`FLOAT_DTYPE`: 9 instead of 15 bytes a
patch pixel; relative rounding below 2**-11, far under the noise the model
learns from) and :func:`open_shard` hands them out as float32 (shards of
float32 maps, written before, read the same). The same
inputs and settings always give byte-identical files: rows are processed in
sorted (camera, image, quality) order and patches in raster order.

One call of :func:`build_split` writes one split (the workflow runs one job
per split) into a temporary folder renamed into place at the end;
:func:`write_manifest` then gathers the split manifests. :func:`build_shards`
does both for all splits.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from ..atomic import save_csv, save_npy
from ..checksums import file_sha256
from ..errors import BadImageError, ConfigError, SpnRestoreError
from ..jpeg import read_rgb
from .. import spn
from .patches import PatchRule, check_geometry, select_patches
from .split import SPLITS, unit_hash

TARGETS = ("camera_term", "original_residual")
ARRAYS = ("rgb", "residual", "target", "other_target", "quality")
#: The float maps of a shard and the precision they are stored in.
FLOAT_ARRAYS = ("residual", "target", "other_target")
FLOAT_DTYPE = np.float16
EXAMPLE_COLUMNS = ("camera", "image", "quality", "split", "jpeg", "residual")
MANIFEST_COLUMNS = (
    "split", "shard", "index", "camera", "image", "quality", "y", "x",
    "target", "other_camera", "jpeg", "jpeg_sha256", "residual", "target_source",
)

Fingerprint = str | os.PathLike | np.ndarray
Log = Callable[[str], None] | None


def _say(log: Log, message: str) -> None:
    if log is not None:
        log(message)


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


class _Fingerprints:
    """Camera fingerprints K (H x W float), loaded lazily from paths or taken from arrays."""

    def __init__(self, sources: Mapping[str, Fingerprint]):
        self.sources = {str(c): s for c, s in sources.items()}
        self.cameras = sorted(self.sources)
        self.cache: dict[str, np.ndarray] = {}

    def __getitem__(self, camera: str) -> np.ndarray:
        if camera not in self.cache:
            source = self.sources[camera]
            if isinstance(source, np.ndarray):
                if source.ndim != 2:
                    raise SpnRestoreError(f"fingerprint of camera {camera!r}: expected H x W, got {source.shape}.")
                self.cache[camera] = source
            else:
                self.cache[camera] = _load_plane(source, "fingerprint", "run the fingerprint step for this camera")
        return self.cache[camera]

    def describe(self, camera: str) -> str:
        source = self.sources[camera]
        return "<array>" if isinstance(source, np.ndarray) else os.fspath(source)

    def other(self, camera: str, image: str) -> str:
        """The camera whose fingerprint serves as non-match for this image (stable hash pick)."""
        others = [c for c in self.cameras if c != camera]
        return others[int(unit_hash(camera, image, salt="other-camera") * len(others))]


def fit_plane(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Crop ``plane`` to ``shape`` from its top-left corner, tiling it (wrap) where it is too small."""
    pad = [(0, max(0, want - have)) for want, have in zip(shape, plane.shape)]
    return np.pad(np.asarray(plane, np.float32), pad, mode="wrap")[: shape[0], : shape[1]]


class _ShardWriter:
    """Accumulate examples and write ``shard-%05d`` folders of ``size`` examples each."""

    def __init__(self, root: Path, size: int):
        self.root, self.size = root, size
        self.pending: dict[str, list[np.ndarray]] = {name: [] for name in ARRAYS}
        self.n_pending = 0
        self.n_written = 0

    def position(self, k: int) -> tuple[str, int]:
        """Shard folder name and index inside it of the k-th example added so far (0-based)."""
        n = self.n_written + self.n_pending + k
        return f"shard-{n // self.size:05d}", n % self.size

    def add(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name in ARRAYS:
            self.pending[name].append(arrays[name])
        self.n_pending += len(arrays["quality"])
        while self.n_pending >= self.size:
            self._write(self.size)

    def close(self) -> None:
        if self.n_pending:
            self._write(self.n_pending)

    def _write(self, count: int) -> None:
        folder = self.root / f"shard-{self.n_written // self.size:05d}"
        folder.mkdir(parents=True)
        for name in ARRAYS:
            stacked = np.concatenate(self.pending[name])
            save_npy(folder / f"{name}.npy", stacked[:count])
            self.pending[name] = [stacked[count:]] if len(stacked) > count else []
        self.n_written += count
        self.n_pending -= count


def _check_examples(examples: pd.DataFrame, target: str) -> None:
    need = EXAMPLE_COLUMNS + (("original_residual",) if target == "original_residual" else ())
    missing = [c for c in need if c not in examples.columns]
    if missing:
        raise ConfigError(
            f"examples table: missing column(s) {missing}; it needs one row per (camera, image, quality) "
            f"with columns {list(need)}."
        )
    if target not in TARGETS:
        raise ConfigError(f"target = {target!r}: must be one of {list(TARGETS)}.")


def _image_examples(row, fingerprints: _Fingerprints, target: str, patch: int, stride: int,
                    rule: PatchRule, max_patches: int | None, log: Log) -> tuple[dict, np.ndarray, str, str] | None:
    """Patch arrays of one JPEG, its corners, the non-match camera and the target's source; None if skipped."""
    camera, image, quality = str(row.camera), str(row.image), int(row.quality)
    name = f"{camera}/{image} Q{quality}"
    try:
        rgb = read_rgb(row.jpeg)
    except (ValueError, OSError) as exc:
        raise BadImageError(row.jpeg, f"cannot read the JPEG ({exc})", "re-run the JPEG step for this image") from exc
    shape = rgb.shape[:2]
    residual = _load_plane(row.residual, "residual", "re-run the residual step for this JPEG")
    if residual.shape != shape:
        raise BadImageError(row.residual, f"residual is {residual.shape} but its JPEG {row.jpeg} is {shape}",
                            "re-run the residual step for this JPEG")
    K = fingerprints[camera]
    if K.shape != shape:
        _say(log, f"{name}: skipped: image is {shape[0]}x{shape[1]} but the fingerprint of {camera} is "
                  f"{K.shape[0]}x{K.shape[1]}")
        return None
    corners = select_patches(rgb, patch, stride, rule, max_patches)
    if len(corners) == 0:
        _say(log, f"{name}: skipped: no {patch}x{patch} patch passes the flat/saturated rule")
        return None
    if target == "camera_term":
        full_target, source = spn.fingerprint_term(K, rgb), fingerprints.describe(camera)
    else:
        full_target = _load_plane(row.original_residual, "original residual", "re-run the residual step")
        source = os.fspath(row.original_residual)
        if full_target.shape != shape:
            raise BadImageError(row.original_residual, f"original residual is {full_target.shape} but the JPEG "
                                f"{row.jpeg} is {shape}", "check that both come from the same image")
    other = fingerprints.other(camera, image)
    other_target = spn.fingerprint_term(fit_plane(fingerprints[other], shape), rgb)

    def cut(plane: np.ndarray) -> np.ndarray:
        return np.stack([plane[y:y + patch, x:x + patch] for y, x in corners]).astype(FLOAT_DTYPE)[:, None]

    arrays = {
        "rgb": np.stack([rgb[y:y + patch, x:x + patch].transpose(2, 0, 1) for y, x in corners]),
        "residual": cut(residual),
        "target": cut(full_target),
        "other_target": cut(other_target),
        "quality": np.full(len(corners), quality, np.uint8),
    }
    return arrays, corners, other, source


def build_split(
    examples: pd.DataFrame,
    fingerprints: Mapping[str, Fingerprint],
    out_dir: str | os.PathLike,
    split: str,
    target: str = "camera_term",
    patch: int = 128,
    stride: int | None = None,
    shard_size: int = 256,
    rule: PatchRule | Mapping | None = None,
    max_patches_per_image: int | None = None,
    log: Log = None,
) -> pd.DataFrame:
    """Write the shards of one split to ``<out_dir>/<split>/`` and return its manifest rows.

    ``examples``: one row per (camera, image, quality) with columns ``camera,
    image, quality, split, jpeg`` (JPEG path), ``residual`` (path of the JPEG's
    full-image residual, float16 or float32 H x W ``.npy``) and, for ``target=
    'original_residual'``, ``original_residual`` (residual of the uncompressed
    image); rows of other splits are ignored. ``fingerprints``: camera name ->
    fingerprint K (H x W float ``.npy`` path or array) for at least two cameras.

    Contract: the K of a camera must be estimated from images of that camera's
    fingerprint set only, never from an image of this data set's test or
    holdout splits (the workflow guarantees it); otherwise the target leaks the
    test image's own noise.

    ``target='camera_term'``: target = ``spn.fingerprint_term(K_camera, jpeg_rgb)``
    (I*K); ``'original_residual'``: target = the uncompressed image's residual.
    ``other_target`` = fingerprint term of another camera (picked by a stable
    hash of camera and image; its K is cropped or tiled to the image size).
    Images whose size differs from their camera's fingerprint, or with no
    usable patch, are skipped with a logged reason. Patches: see
    :func:`spnrestore.dataset.patches.select_patches`. The split is built in a
    temporary folder and renamed into place, replacing an older one.
    """
    _check_examples(examples, target)
    stride = check_geometry(patch, stride)
    if int(shard_size) != shard_size or shard_size < 1:
        raise ConfigError(f"shard_size = {shard_size}: must be a positive integer (default 256).")
    if split not in SPLITS:
        raise ConfigError(f"split {split!r}: must be one of {list(SPLITS)}.")
    rule = rule if isinstance(rule, PatchRule) else PatchRule.from_config(rule)
    prints = _Fingerprints(fingerprints)
    if len(prints.cameras) < 2:
        raise ConfigError(
            f"fingerprints: {prints.cameras} — at least two cameras are needed (the non-match target of "
            "each example is another camera's fingerprint term)."
        )
    rows = examples[examples["split"].astype(str) == split].copy()
    rows["_key"] = list(zip(rows["camera"].astype(str), rows["image"].astype(str), rows["quality"].astype(int)))
    rows = rows.sort_values("_key", kind="stable")
    unknown = sorted(set(rows["camera"].astype(str)) - set(prints.cameras))
    if unknown:
        raise SpnRestoreError(f"fingerprints: no fingerprint for camera(s) {unknown}; build them before the shards.")

    out_dir = Path(out_dir)
    final = out_dir / split
    tmp = out_dir / f".{split}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        writer = _ShardWriter(tmp, int(shard_size))
        records, skipped = [], 0
        for row in rows.itertuples(index=False):
            found = _image_examples(row, prints, target, patch, stride, rule, max_patches_per_image, log)
            if found is None:
                skipped += 1
                continue
            arrays, corners, other, source = found
            digest = file_sha256(row.jpeg)
            for k, (y, x) in enumerate(corners):
                shard, index = writer.position(k)
                records.append((split, shard, index, str(row.camera), str(row.image), int(row.quality),
                                int(y), int(x), target, other, os.fspath(row.jpeg), digest,
                                os.fspath(row.residual), source))
            writer.add(arrays)
        writer.close()
        manifest = pd.DataFrame.from_records(records, columns=list(MANIFEST_COLUMNS))
        save_csv(tmp / "manifest.csv", manifest)
        old = out_dir / f".{split}.old-{os.getpid()}"
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shards = -(-len(manifest) // int(shard_size))
    _say(log, f"split {split}: {len(rows) - skipped} JPEGs -> {len(manifest)} patches in {shards} shard(s)"
              f"{f', {skipped} skipped' if skipped else ''}")
    return manifest


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV with every column as text (names such as 'NA' stay strings)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.astype({c: int for c in ("index", "quality", "y", "x")})


def write_manifest(out_dir: str | os.PathLike, splits: Iterable[str] | None = None) -> pd.DataFrame:
    """Concatenate ``<out_dir>/<split>/manifest.csv`` (all present splits by default) into ``<out_dir>/manifest.csv``."""
    out_dir = Path(out_dir)
    splits = [s for s in SPLITS if (out_dir / s / "manifest.csv").is_file()] if splits is None else list(splits)
    for s in splits:
        if not (out_dir / s / "manifest.csv").is_file():
            raise SpnRestoreError(f"{out_dir / s / 'manifest.csv'}: missing; build split {s!r} first.")
    frames = [read_manifest(out_dir / s / "manifest.csv") for s in splits]
    manifest = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    save_csv(out_dir / "manifest.csv", manifest)
    return manifest


def build_shards(
    examples: pd.DataFrame,
    fingerprints: Mapping[str, Fingerprint],
    out_dir: str | os.PathLike,
    target: str = "camera_term",
    patch: int = 128,
    stride: int | None = None,
    shard_size: int = 256,
    rule: PatchRule | Mapping | None = None,
    max_patches_per_image: int | None = None,
    splits: Iterable[str] | None = None,
    log: Log = None,
) -> pd.DataFrame:
    """Build every split of ``examples`` (or only ``splits``) with :func:`build_split`, then the manifest.

    Returns the combined manifest (also written to ``<out_dir>/manifest.csv``).
    """
    _check_examples(examples, target)
    if splits is None:
        found = set(examples["split"].astype(str))
        splits = sorted(found, key=lambda s: (SPLITS.index(s) if s in SPLITS else len(SPLITS), s))
    for split in splits:
        build_split(examples, fingerprints, out_dir, split, target, patch, stride, shard_size, rule,
                    max_patches_per_image, log)
    return write_manifest(out_dir, splits)


def manifest_sha256(dataset_dir: str | os.PathLike) -> str:
    """SHA-256 of ``<dataset_dir>/manifest.csv``: identifies the data a model was trained on."""
    path = Path(dataset_dir) / "manifest.csv"
    if not path.is_file():
        raise SpnRestoreError(f"{path}: missing; build the data set with spnrestore.dataset.build_shards first.")
    return file_sha256(path)


def list_shards(dataset_dir: str | os.PathLike, split: str) -> list[Path]:
    """Shard folders of one split, in order (empty when the split has none)."""
    return sorted(p for p in (Path(dataset_dir) / split).glob("shard-*") if p.is_dir())


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


def open_shard(shard_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The arrays of one shard, memory-mapped read-only (see the module docstring for shapes); the float maps
    as :class:`Float32Map` (float32 rows, whatever precision they are stored in)."""
    shard_dir = Path(shard_dir)
    arrays = {}
    for name in ARRAYS:
        path = shard_dir / f"{name}.npy"
        if not path.is_file():
            raise SpnRestoreError(f"{path}: missing; the shard is incomplete — rebuild the data set.")
        arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        if name in FLOAT_ARRAYS:
            arrays[name] = Float32Map(arrays[name])
    n = {len(a) for a in arrays.values()}
    if len(n) != 1:
        raise SpnRestoreError(f"{shard_dir}: arrays have different lengths {n}; rebuild the data set.")
    return arrays
