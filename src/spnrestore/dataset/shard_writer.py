"""Writing the training-pair shards (layout: :mod:`.shard_format`), deterministically.

One call of :func:`build_split` writes one camera of one split (or every camera of the split) into a
temporary folder renamed into place at the end; :func:`gather_manifests` then gathers the cameras' manifests
into the split's and the data set's. The same inputs and settings always give byte-identical files.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from ..atomic import save_csv, save_npy
from ..checksums import file_sha256
from ..errors import BadImageError, ConfigError, SpnRestoreError
from ..jpeg import read_rgb
from .. import spn
from .patches import PatchRule, check_geometry, select_patches
from .shard_format import (EXAMPLE_COLUMNS, FINGERPRINT_TABLE, FLOAT_DTYPE, MANIFEST_COLUMNS, PACKED_RGB, STORED,
                           TARGETS, _concat, _load_plane, pack_patches)
from .shard_reader import camera_folders, split_manifest
from .split import SPLITS, unit_hash

logger = logging.getLogger(__name__)

Fingerprint = str | os.PathLike | np.ndarray


def _missing(value) -> bool:
    """An empty cell of the examples table (no stored file)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or os.fspath(value) == ""


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

    def write_table(self, folder: Path) -> None:
        """``fingerprints.csv`` of a camera folder: every camera's fingerprint path (arrays are saved into
        ``fingerprints/`` beside it and named relative to the folder, with ``in_folder`` = 1)."""
        rows = []
        for camera in self.cameras:
            source = self.sources[camera]
            if isinstance(source, np.ndarray):
                name = f"fingerprints/{len(rows):04d}.npy"
                (folder / "fingerprints").mkdir(exist_ok=True)
                save_npy(folder / name, np.asarray(self[camera], np.float32))
                rows.append((camera, name, 1))
            else:
                rows.append((camera, os.fspath(source), 0))
        save_csv(folder / FINGERPRINT_TABLE, pd.DataFrame(rows, columns=["camera", "path", "in_folder"]))


class _ShardWriter:
    """Accumulate examples and write ``shard-%05d`` folders of ``size`` examples each."""

    def __init__(self, root: Path, size: int, names: Iterable[str]):
        self.root, self.size, self.names = root, size, tuple(names)
        self.pending: dict[str, list[np.ndarray]] = {name: [] for name in self.names}
        self.n_pending = 0
        self.n_written = 0

    def position(self, k: int) -> tuple[str, int]:
        """Shard folder name and index inside it of the k-th example added so far (0-based)."""
        n = self.n_written + self.n_pending + k
        return f"shard-{n // self.size:05d}", n % self.size

    def add(self, arrays: Mapping[str, np.ndarray]) -> None:
        for name in self.names:
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
        for name in self.names:
            stacked = np.concatenate(self.pending[name])
            if name == "rgb":
                for file, array in zip(PACKED_RGB, pack_patches(stacked[:count])):
                    save_npy(folder / f"{file}.npy", array)
            else:
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
                    rule: PatchRule, max_patches: int | None,
                    sigma: float | None) -> tuple[dict, np.ndarray, str, str] | None:
    """Patch arrays of one JPEG, its corners, the non-match camera and the target's source; None if skipped."""
    camera, image, quality = str(row.camera), str(row.image), int(row.quality)
    name = f"{camera}/{image} Q{quality}"
    try:
        rgb = read_rgb(row.jpeg)
    except (ValueError, OSError) as exc:
        raise BadImageError(row.jpeg, f"cannot read the JPEG ({exc})", "re-run the JPEG step for this image") from exc
    shape = rgb.shape[:2]
    K = fingerprints[camera]
    if K.shape != shape:
        logger.warning(f"{name}: skipped: image is {shape[0]}x{shape[1]} but the fingerprint of {camera} is "
                       f"{K.shape[0]}x{K.shape[1]}")
        return None
    corners = select_patches(rgb, patch, stride, rule, max_patches)
    if len(corners) == 0:
        logger.warning(f"{name}: skipped: no {patch}x{patch} patch passes the flat/saturated rule")
        return None
    if _missing(row.residual):
        residual = spn.extract_residual(rgb, sigma=sigma, name=os.fspath(row.jpeg))
    else:
        residual = _load_plane(row.residual, "residual", "re-run the residual step for this JPEG")
        if residual.shape != shape:
            raise BadImageError(row.residual, f"residual is {residual.shape} but its JPEG {row.jpeg} is {shape}",
                                "re-run the residual step for this JPEG")

    def cut(plane: np.ndarray) -> np.ndarray:
        return np.stack([plane[y:y + patch, x:x + patch] for y, x in corners]).astype(FLOAT_DTYPE)[:, None]

    other = fingerprints.other(camera, image)
    n = len(corners)
    arrays = {
        "rgb": np.stack([rgb[y:y + patch, x:x + patch].transpose(2, 0, 1) for y, x in corners]),
        "residual": cut(residual),
        "quality": np.full(n, quality, np.uint8),
        "corner": np.asarray(corners, np.int32).reshape(n, 2),
        "prints": np.tile(np.asarray([[fingerprints.cameras.index(camera), fingerprints.cameras.index(other)]],
                                     np.uint16), (n, 1)),
    }
    if target == "camera_term":
        source = fingerprints.describe(camera)
    else:
        full_target = _load_plane(row.original_residual, "original residual", "re-run the residual step")
        source = os.fspath(row.original_residual)
        if full_target.shape != shape:
            raise BadImageError(row.original_residual, f"original residual is {full_target.shape} but the JPEG "
                                f"{row.jpeg} is {shape}", "check that both come from the same image")
        arrays["target"] = cut(full_target)
    return arrays, corners, other, source


def _write_camera(rows: pd.DataFrame, prints: _Fingerprints, folder: Path, split: str, camera: str, target: str,
                  patch: int, stride: int, shard_size: int, rule: PatchRule, max_patches: int | None,
                  sigma: float | None) -> tuple[pd.DataFrame, int]:
    """Shards, fingerprint table and manifest of one camera's rows (sorted) in ``folder`` (created);
    returns the manifest and the number of JPEGs skipped."""
    folder.mkdir(parents=True)
    prints.write_table(folder)
    writer = _ShardWriter(folder, shard_size, STORED + (("target",) if target == "original_residual" else ()))
    records, skipped = [], 0
    for row in rows.itertuples(index=False):
        found = _image_examples(row, prints, target, patch, stride, rule, max_patches, sigma)
        if found is None:
            skipped += 1
            continue
        arrays, corners, other, source = found
        digest = file_sha256(row.jpeg)
        residual = "" if _missing(row.residual) else os.fspath(row.residual)
        for k, (y, x) in enumerate(corners):
            shard, index = writer.position(k)
            records.append((split, f"{camera}/{shard}", index, str(row.camera), str(row.image), int(row.quality),
                            int(y), int(x), target, other, os.fspath(row.jpeg), digest, residual, source,
                            prints.describe(other)))
        writer.add(arrays)
    writer.close()
    manifest = pd.DataFrame.from_records(records, columns=list(MANIFEST_COLUMNS))
    save_csv(folder / "manifest.csv", manifest)
    return manifest, skipped


def _replace(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``, replacing an older ``final``."""
    old = final.parent / f".{final.name}.old-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


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
    *,
    camera: str | None = None,
    sigma: float | None = None,
) -> pd.DataFrame:
    """Write the shards of one split to ``<out_dir>/<split>/<camera>/`` and return their manifest rows.

    ``camera``: only that camera's examples, into ``<out_dir>/<split>/<camera>/`` (replaced; a camera with
    no example of the split gets an empty folder with an empty manifest; ``<split>/manifest.csv`` is left to
    :func:`gather_manifests`); None: every camera of the split, and ``<out_dir>/<split>/`` is replaced as a
    whole, with its ``manifest.csv``.

    ``examples``: one row per (camera, image, quality) with columns ``camera,
    image, quality, split, jpeg`` (JPEG path), ``residual`` (path of the JPEG's
    full-image residual, float16 or float32 H x W ``.npy``; an empty string: not
    stored, computed from the JPEG by :func:`spnrestore.spn.extract_residual`
    with ``sigma``, which is then required) and, for ``target=
    'original_residual'``, ``original_residual`` (residual of the uncompressed
    image); rows of other splits are ignored. ``fingerprints``: camera name ->
    fingerprint K (H x W float ``.npy`` path or array) for at least two cameras.

    Contract: the K of a camera must be estimated from images of that camera's
    fingerprint set only, never from an image of this data set's test or
    holdout splits (the workflow guarantees it); otherwise the target leaks the
    test image's own noise.

    ``target='camera_term'``: target = ``spn.fingerprint_term(K_camera, jpeg_rgb)``
    (I*K, computed when read, see :mod:`.shard_format`); ``'original_residual'``:
    target = the uncompressed image's residual (stored). ``other_target`` =
    fingerprint term of another camera (picked by a stable hash of camera and
    image; its K is cropped or tiled to the image size; computed when read).
    Images whose size differs from their camera's fingerprint, or with no
    usable patch, are skipped with a logged reason. Patches: see
    :func:`spnrestore.dataset.patches.select_patches`. Fingerprints given as
    paths must still be there when the shards are read.
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
    if camera is not None:
        camera = str(camera)
        if camera in ("", ".", "..") or "/" in camera or camera.startswith(".") or camera == "manifest.csv":
            raise ConfigError(f"camera {camera!r}: not usable as a folder name of the data set.")
        rows = rows[rows["camera"].astype(str) == camera]
    rows["_key"] = list(zip(rows["camera"].astype(str), rows["image"].astype(str), rows["quality"].astype(int)))
    rows = rows.sort_values("_key", kind="stable")
    unknown = sorted(set(rows["camera"].astype(str)) - set(prints.cameras))
    if unknown:
        raise SpnRestoreError(f"fingerprints: no fingerprint for camera(s) {unknown}; build them before the shards.")
    if sigma is None and any(_missing(r) for r in rows["residual"]):
        raise ConfigError("sigma: needed to compute the residuals that are not stored (examples with an empty "
                          "'residual'): pass the denoiser's sigma (config spn.sigma).")

    out_dir = Path(out_dir)
    split_dir = out_dir / split
    tmp = (split_dir / f".{camera}.tmp-{os.getpid()}" if camera is not None
           else out_dir / f".{split}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    cameras = [camera] if camera is not None else sorted(set(rows["camera"].astype(str)))
    try:
        frames, skipped = [], 0
        for cam in cameras:
            folder = tmp if camera is not None else tmp / cam
            frame, n_skipped = _write_camera(rows[rows["camera"].astype(str) == cam], prints, folder, split, cam,
                                             target, patch, stride, int(shard_size), rule, max_patches_per_image,
                                             sigma)
            frames.append(frame)
            skipped += n_skipped
        manifest = _concat(frames)
        if camera is None:
            tmp.mkdir(parents=True, exist_ok=True)
            save_csv(tmp / "manifest.csv", manifest)
            _replace(tmp, split_dir)
        else:
            _replace(tmp, split_dir / camera)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shards = sum(-(-len(f) // int(shard_size)) for f in frames)
    what = f"split {split}" + (f", camera {camera}" if camera is not None else "")
    logger.info(f"{what}: {len(rows) - skipped} JPEGs -> {len(manifest)} patches in {shards} shard(s)"
                f"{f', {skipped} skipped' if skipped else ''}")
    return manifest


def gather_manifests(out_dir: str | os.PathLike, splits: Iterable[str] | None = None) -> pd.DataFrame:
    """Gather the camera manifests of each split (all built splits by default) into
    ``<out_dir>/<split>/manifest.csv`` and all into ``<out_dir>/manifest.csv``; a split named in ``splits``
    that has no camera folder has no examples (the workflow plans no job for a split without images)."""
    out_dir = Path(out_dir)
    if splits is None:
        splits = [s for s in SPLITS if camera_folders(out_dir, s) or (out_dir / s / "manifest.csv").is_file()]
    frames = []
    for s in splits:
        frame = split_manifest(out_dir, s)
        if camera_folders(out_dir, s) or not (out_dir / s / "manifest.csv").is_file():
            (out_dir / s).mkdir(parents=True, exist_ok=True)
            save_csv(out_dir / s / "manifest.csv", frame)
        frames.append(frame)
    manifest = _concat(frames)
    save_csv(out_dir / "manifest.csv", manifest)
    return manifest
