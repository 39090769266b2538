"""Training examples from real cameras: JPEG patches whose targets come from fingerprints of the same camera.

The synthetic generator knows the exact PRNU term of every example; a real camera does not. In the manner of
Zeng et al. (2021; a correlation loss against real cameras' fingerprints), a camera's images are cut in two
halves (natural images in capture order, then flat fields, each cut in two), and each half's images take
their target ``I * K`` from the **other** half's fingerprint: a ``K`` estimated without the image, whose
estimation noise is independent of the image's own noise. A fingerprint of 5-20 images is noisy, but a noise
independent of the input cannot be learned, so a correlation loss still pulls the model towards the camera's
term.

Each image is written as JPEG copies at the given qualities; of each copy the plain residual (the workflow's,
:func:`spnrestore.spn.extract_residual`) and the target are computed on the whole image, then patches are cut
on the 8 px grid (the JPEG blocks stay aligned with the model's block features).

A camera folder holds its natural images (JPEG) and, optionally, a ``flat/`` folder of flat fields (as the
development set ``real-jpeg`` and VISION have them). A camera is *usable* when its plain fingerprint
identifies its own images: the median plain PCE of its second half's natural images against its first half's
fingerprint is above the threshold. The others (a phone whose processing leaves no PRNU at the size given)
are neither trained on nor validated on. Numpy only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import atomic_path
from ..errors import SpnRestoreError
from ..jpeg import decode_rgb, encode_jpeg, read_rgb
from ..spn.detection import pce
from ..spn.fingerprint import estimate_fingerprint, fingerprint_term
from ..spn.residual import extract_residual

logger = logging.getLogger(__name__)

JPEG_SUFFIXES = (".jpg", ".jpeg")
FLAT_FOLDER = "flat"
#: The arrays of a camera's examples (``rgb`` uint8 N x 3 x P x P; ``residual``, ``target`` float32 N x 1 x P x P;
#: ``quality`` int64 N) and its usability figure ``own_pce`` (a 0-d float).
ARRAYS = ("rgb", "residual", "target", "quality")


def images_of(folder: Path) -> list[Path]:
    """The JPEG files of ``folder`` (not its sub-folders), by name: capture order for camera file names."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in JPEG_SUFFIXES)


def camera_folders(root: str | os.PathLike) -> list[Path]:
    """The camera folders of ``root`` (each sub-folder with JPEG images), by name; an error names the folder
    when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise SpnRestoreError(f"{root}: not a folder; give a folder with one sub-folder of JPEG images per camera "
                              "(flat fields, where a camera has them, in its 'flat' sub-folder).")
    cams = [p for p in sorted(root.iterdir()) if p.is_dir() and images_of(p)]
    if not cams:
        raise SpnRestoreError(f"{root}: no camera folder with JPEG images in it; give a folder with one "
                              "sub-folder of JPEG images per camera.")
    return cams


def _one_size(paths: list[Path], cam: str) -> list[tuple[Path, np.ndarray]]:
    """The images of ``paths`` read, keeping those of the camera's most common size (a fingerprint needs one
    size; rotated or resized images are left out, and the log says how many)."""
    images = [(p, read_rgb(p)) for p in paths]
    if not images:
        return []
    size = Counter(rgb.shape for _, rgb in images).most_common(1)[0][0]
    kept = [(p, rgb) for p, rgb in images if rgb.shape == size]
    if len(kept) < len(images):
        logger.warning(f"{cam}: {len(images) - len(kept)} image(s) of another size than {size[1]}x{size[0]} left out "
                       "of the real-camera examples")
    return kept


def halves(cam: Path) -> tuple[list[tuple[Path, np.ndarray]], list[tuple[Path, np.ndarray]]]:
    """The camera's images (path, pixels), of one size, in two halves: natural images in capture order, then
    flat fields, each cut in two."""
    natural = _one_size(images_of(cam), cam.name)
    flat = _one_size(images_of(cam / FLAT_FOLDER), cam.name) if (cam / FLAT_FOLDER).is_dir() else []
    if flat and natural and flat[0][1].shape != natural[0][1].shape:
        logger.warning(f"{cam.name}: flat fields of another size than its images left out")
        flat = []
    a = natural[:len(natural) // 2] + flat[:len(flat) // 2]
    b = natural[len(natural) // 2:] + flat[len(flat) // 2:]
    return a, b


def _key(cam: Path, settings: dict) -> str:
    """The cache key of a camera's examples: its files (names, sizes, times) and the settings."""
    files = images_of(cam) + (images_of(cam / FLAT_FOLDER) if (cam / FLAT_FOLDER).is_dir() else [])
    listing = []
    for p in files:
        st = p.stat()
        listing.append([str(p.relative_to(cam)), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps([cam.name, listing, settings], sort_keys=True).encode()).hexdigest()[:16]


def camera_examples(cam: Path, qualities: Sequence[int], patch: int, per_copy: int, seed: int, sigma: float,
                    cache: Path | None = None) -> dict:
    """The training examples of one camera: :data:`ARRAYS` and ``own_pce`` (the median plain PCE of the second
    half's natural images against the first half's fingerprint; 0 with too few images). ``per_copy`` patches
    of ``patch`` px are drawn from each JPEG copy with a generator seeded by ``seed`` and the camera's name.
    Kept in ``cache`` (a folder) when given, keyed by the camera's files and the settings."""
    settings = {"qualities": [int(q) for q in qualities], "patch": int(patch), "per_copy": int(per_copy),
                "seed": int(seed), "sigma": float(sigma)}
    path = cache / f"{cam.name}-{_key(cam, settings)}.npz" if cache is not None else None
    if path is not None and path.exists():
        with np.load(path) as data:
            return dict(data)
    a, b = halves(cam)
    if not a or not b:
        logger.warning(f"{cam.name}: fewer than 2 images of one size; no real-camera examples")
        return {"own_pce": np.array(0.0)}
    Ka = estimate_fingerprint((rgb for _, rgb in a), sigma, names=[p.name for p, _ in a])
    Kb = estimate_fingerprint((rgb for _, rgb in b), sigma, names=[p.name for p, _ in b])
    own = [pce(extract_residual(rgb, sigma), fingerprint_term(Ka, rgb)) for p, rgb in b if p.parent == cam]
    rng = np.random.default_rng([seed, int(hashlib.sha256(cam.name.encode()).hexdigest()[:8], 16)])
    out: dict[str, list] = {k: [] for k in ARRAYS}
    for (_, rgb), K in [(x, Kb) for x in a] + [(x, Ka) for x in b]:
        h, w = rgb.shape[:2]
        if min(h, w) < patch:
            continue
        for q in settings["qualities"]:
            version = decode_rgb(encode_jpeg(rgb, q))
            plain = extract_residual(version, sigma)
            term = fingerprint_term(K, version)
            ys = rng.integers(0, (h - patch) // 8 + 1, per_copy) * 8
            xs = rng.integers(0, (w - patch) // 8 + 1, per_copy) * 8
            for y, x in zip(ys, xs):
                out["rgb"].append(version[y:y + patch, x:x + patch].transpose(2, 0, 1))
                out["residual"].append(plain[None, y:y + patch, x:x + patch])
                out["target"].append(term[None, y:y + patch, x:x + patch])
                out["quality"].append(q)
    if not out["quality"]:
        return {"own_pce": np.array(0.0)}
    arrays = {"rgb": np.ascontiguousarray(np.stack(out["rgb"]), dtype=np.uint8),
              "residual": np.ascontiguousarray(np.stack(out["residual"]), dtype=np.float32),
              "target": np.ascontiguousarray(np.stack(out["target"]), dtype=np.float32),
              "quality": np.asarray(out["quality"], dtype=np.int64),
              "own_pce": np.array(float(np.median(own)) if own else 0.0)}
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
    return arrays
