"""Discovery of cameras and RAW images on the drive, and their stable batching.

Every sub-folder of the Original folder is a camera model; every file in it with
a RAW extension (any case) is an image. Anything else is listed as skipped with
a reason, never silently dropped. Discovery only lists folders (no file is
opened), so it is cheap enough to run each time Snakemake parses the workflow.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

RAW_EXTENSIONS = (".dng", ".rw2", ".nef", ".cr2", ".arw", ".orf", ".raf", ".pef")


@dataclass(frozen=True)
class Image:
    """One original: ``camera`` folder name, ``image`` (file stem, names all outputs), ``path``."""

    camera: str
    image: str
    path: str
    format: str
    batch: str


@dataclass(frozen=True)
class Skipped:
    """A file or folder that is not used, with the reason and what to do."""

    camera: str
    path: str
    reason: str


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def batch_of(name: str, batches: int) -> str:
    """Batch label (``b0000``..) of an image file name: adding an image never moves another."""
    return f"b{stable_hash(name) % batches:04d}"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def discover(original: str | os.PathLike, batches: int) -> tuple[list[Image], list[Skipped]]:
    """List the images of every camera folder under ``original``.

    Returns the images sorted by (camera, image) and the skipped entries: files
    that are not RAW images, symlinks that point outside the drive folder,
    unreadable or empty camera folders, and a second file with an already used
    stem (its outputs would overwrite the first one's).
    """
    original = Path(original)
    images: list[Image] = []
    skipped: list[Skipped] = []
    for entry in sorted(os.scandir(original), key=lambda e: e.name):
        if not entry.is_dir():
            skipped.append(Skipped("", entry.path, "not a camera folder (files directly under Original are ignored)"))
            continue
        camera = entry.name
        if camera.startswith("."):
            continue
        try:
            files = sorted(os.scandir(entry.path), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(camera, entry.path, f"camera folder cannot be read ({exc.strerror}); check its permissions"))
            continue
        seen: dict[str, str] = {}
        count = 0
        for f in files:
            if f.name.startswith("."):
                continue
            stem, ext = os.path.splitext(f.name)
            if f.is_dir():
                skipped.append(Skipped(camera, f.path, "sub-folder inside a camera folder is not scanned"))
            elif ext.lower() not in RAW_EXTENSIONS:
                skipped.append(Skipped(camera, f.path, f"not a RAW image (extension {ext or 'none'!r})"))
            elif f.is_symlink() and not _inside(Path(f.path), original):
                skipped.append(Skipped(camera, f.path, "symlink pointing outside the Original folder; copy the file in"))
            elif stem in seen:
                skipped.append(Skipped(camera, f.path, f"same name as {seen[stem]}; rename one of them"))
            else:
                seen[stem] = f.name
                count += 1
                images.append(Image(camera, stem, f.path, ext.lower().lstrip("."), batch_of(f.name, batches)))
        if count == 0:
            skipped.append(Skipped(camera, entry.path, "camera folder has no RAW images"))
    return images, skipped


def images_table(images: list[Image]) -> pd.DataFrame:
    """Images as a DataFrame with columns camera, image, path, format, batch."""
    return pd.DataFrame([vars(i) for i in images], columns=["camera", "image", "path", "format", "batch"])
