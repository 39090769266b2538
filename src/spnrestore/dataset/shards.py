"""Training-pair shards: fixed-size folders of patch arrays, written deterministically.

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

The targets of ``target='camera_term'`` are not stored: :func:`open_shard` computes them when rows are
read, from the patch's pixels and the fingerprints (memory-mapped), exactly as
:func:`spnrestore.spn.fingerprint_term` gives them on the whole image (float32, the same bits): ``target``
= gray(rgb)/255 * K of the camera cropped at (y, x), ``other_target`` = the same with another camera's K
tiled from its top-left corner (wrapped) or cropped to the image (:func:`fit_crop`). Both are pointwise in
the patch.

The pixels are stored as lossless WebP files (:func:`pack_patches`, about 10 ms a 128 x 128 patch;
:class:`PackedPatches` decodes the rows asked for, 0.2-0.4 ms a patch): a decoded JPEG takes 0.1-0.25 of its 3
bytes a pixel (less at lower quality; PNG takes 0.2-0.4), so a shard stores about 2.3-2.8 bytes a patch pixel
(the float16 residual 2), where raw pixels took 5 and stored float32 targets 9. Shards with a plain
``rgb.npy`` (N, 3, P, P) read as before; any file ``cv2.imdecode`` reads losslessly would do.

Every shard holds ``shard_size`` examples except the last of a camera. Arrays are plain ``.npy`` files
opened with ``np.load(mmap_mode='r')``; the float maps are stored in half precision (:data:`FLOAT_DTYPE`;
relative rounding below 2**-11, far under the noise the model learns from) and :func:`open_shard` hands
them out as float32. The examples of a split are those of its cameras in sorted camera order, each in
sorted (image, quality) order and patches in raster order: the same order as when a split was one folder,
so the training batches do not depend on the layout. The same inputs and settings always give
byte-identical files.

Shards of the former layout (``<split>/shard-NNNNN/`` with ``target.npy`` and ``other_target.npy`` stored,
float16 or float32) are read as before.

One call of :func:`build_split` writes one camera of one split (or every camera of the split) into a
temporary folder renamed into place at the end; :func:`write_manifest` then gathers the manifests.
:func:`build_shards` does both for all splits.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Mapping

import cv2
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
#: The arrays of a batch (what :func:`open_shard` and :func:`read_rows` give).
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
                    rule: PatchRule, max_patches: int | None, sigma: float | None,
                    log: Log) -> tuple[dict, np.ndarray, str, str] | None:
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
        _say(log, f"{name}: skipped: image is {shape[0]}x{shape[1]} but the fingerprint of {camera} is "
                  f"{K.shape[0]}x{K.shape[1]}")
        return None
    corners = select_patches(rgb, patch, stride, rule, max_patches)
    if len(corners) == 0:
        _say(log, f"{name}: skipped: no {patch}x{patch} patch passes the flat/saturated rule")
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
                  sigma: float | None, log: Log) -> tuple[pd.DataFrame, int]:
    """Shards, fingerprint table and manifest of one camera's rows (sorted) in ``folder`` (created);
    returns the manifest and the number of JPEGs skipped."""
    folder.mkdir(parents=True)
    prints.write_table(folder)
    writer = _ShardWriter(folder, shard_size, STORED + (("target",) if target == "original_residual" else ()))
    records, skipped = [], 0
    for row in rows.itertuples(index=False):
        found = _image_examples(row, prints, target, patch, stride, rule, max_patches, sigma, log)
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
    log: Log = None,
    *,
    camera: str | None = None,
    sigma: float | None = None,
) -> pd.DataFrame:
    """Write the shards of one split to ``<out_dir>/<split>/<camera>/`` and return their manifest rows.

    ``camera``: only that camera's examples, into ``<out_dir>/<split>/<camera>/`` (replaced; a camera with
    no example of the split gets an empty folder with an empty manifest; ``<split>/manifest.csv`` is left to
    :func:`write_manifest`); None: every camera of the split, and ``<out_dir>/<split>/`` is replaced as a
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
    (I*K, computed when read, see the module docstring); ``'original_residual'``:
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
                                             sigma, log)
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
    _say(log, f"{what}: {len(rows) - skipped} JPEGs -> {len(manifest)} patches in {shards} shard(s)"
              f"{f', {skipped} skipped' if skipped else ''}")
    return manifest


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Manifest rows of several folders, in order (an empty manifest when there are none)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(MANIFEST_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV with every column as text (names such as 'NA' stay strings)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.astype({c: int for c in ("index", "quality", "y", "x")})


def camera_folders(dataset_dir: str | os.PathLike, split: str) -> list[Path]:
    """The camera folders of one split (those with a ``manifest.csv``), in sorted camera order; none for a
    split of the former layout (its shards directly in ``<split>/``) or a split that was not built."""
    split_dir = Path(dataset_dir) / split
    if not split_dir.is_dir():
        return []
    found = [p for p in split_dir.iterdir()
             if p.is_dir() and not p.name.startswith(".") and (p / "manifest.csv").is_file()]
    return sorted(found, key=lambda p: p.name)


def split_manifest(dataset_dir: str | os.PathLike, split: str) -> pd.DataFrame:
    """The manifest rows of one split: its camera folders' in sorted camera order (a split of the former
    layout: its ``manifest.csv``); empty for a split that has no examples or was not built."""
    folders = camera_folders(dataset_dir, split)
    if folders:
        return _concat([read_manifest(f / "manifest.csv") for f in folders])
    path = Path(dataset_dir) / split / "manifest.csv"
    return read_manifest(path) if path.is_file() else _concat([])


def write_manifest(out_dir: str | os.PathLike, splits: Iterable[str] | None = None) -> pd.DataFrame:
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
    *,
    sigma: float | None = None,
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
                    max_patches_per_image, log, sigma=sigma)
    return write_manifest(out_dir, splits)


def manifest_sha256(dataset_dir: str | os.PathLike) -> str:
    """SHA-256 of ``<dataset_dir>/manifest.csv``: identifies the data a model was trained on."""
    path = Path(dataset_dir) / "manifest.csv"
    if not path.is_file():
        raise SpnRestoreError(f"{path}: missing; build the data set with spnrestore.dataset.build_shards first.")
    return file_sha256(path)


def list_shards(dataset_dir: str | os.PathLike, split: str) -> list[Path]:
    """Shard folders of one split, in example order: camera folders in sorted order, each one's shards in
    order (a split of the former layout: its ``shard-*`` folders); empty when the split has none."""
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
    """The arrays of one shard (``rgb``, ``residual``, ``target``, ``other_target``, ``quality``; see the module
    docstring for shapes), memory-mapped read-only; packed pixels as :class:`PackedPatches` (decoded per row
    read); the float maps as :class:`Float32Map` (float32 rows, whatever precision they are stored in) or,
    for targets that are not stored, :class:`FingerprintTerms`
    (computed from the patch and the fingerprints, memory-mapped through ``fingerprints``: pass one
    :class:`FingerprintFiles` to the shards opened in a process). Shards of the former layout read the
    same."""
    shard_dir = Path(shard_dir)
    stored = {}
    names = [p.stem for p in shard_dir.glob("*.npy")]
    legacy = "other_target" in names
    need = ("rgb", "residual", "target", "other_target", "quality") if legacy else STORED
    files = list(dict.fromkeys(need + tuple(n for n in ("target",) if n in names)))
    if "rgb" not in names:
        files[files.index("rgb"):files.index("rgb") + 1] = PACKED_RGB
    for name in files:
        path = shard_dir / f"{name}.npy"
        if not path.is_file():
            raise SpnRestoreError(f"{path}: missing; the shard is incomplete — rebuild the data set.")
        stored[name] = np.load(path, mmap_mode="r", allow_pickle=False)
    if "rgb" not in stored:
        stored["rgb"] = PackedPatches(stored.pop(PACKED_RGB[0]), stored.pop(PACKED_RGB[1]), shard_dir)
    n = {len(a) for a in stored.values()}
    if len(n) != 1:
        raise SpnRestoreError(f"{shard_dir}: arrays have different lengths {n}; rebuild the data set.")
    arrays = {name: Float32Map(a) if name in FLOAT_ARRAYS else a for name, a in stored.items()}
    if not legacy:
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
