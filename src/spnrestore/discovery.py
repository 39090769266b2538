"""Discovery of cameras and originals on the drive, and their stable batching.

Every sub-folder of the Original folder is a camera model; every file in it with
a RAW extension, or a developed-image extension (JPEG, TIFF, PNG), any case, is
an original. The camera's flat-field sub-folder (``spn.flat_field_folder``,
default ``flat``) is scanned too: its images, and those whose file name matches
``spn.flat_field_pattern``, are flat-field images (they build the fingerprint
first, see :mod:`spnrestore.stages.roles`). Anything else is listed as skipped with a
reason, never silently dropped. Discovery only lists folders (no file is
opened), so it is cheap enough to run each time Snakemake parses the workflow.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

RAW_EXTENSIONS = (".dng", ".rw2", ".nef", ".cr2", ".arw", ".orf", ".raf", ".pef")
#: Discovery ``format`` of each developed-image extension (lower case, with the dot).
DEVELOPED_EXTENSIONS = {".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff", ".png": "png"}
IMAGE_KINDS = "RAW (DNG, NEF, CR2, ARW, ORF, RAF, PEF, RW2), JPEG, TIFF or PNG"


def image_format(ext: str) -> str | None:
    """Discovery ``format`` of a file extension (with the dot, any case): the RAW extension without the dot
    (``dng``, ``nef``...), ``jpeg``, ``tiff`` or ``png``; None for files that are not originals."""
    ext = ext.lower()
    return ext.lstrip(".") if ext in RAW_EXTENSIONS else DEVELOPED_EXTENSIONS.get(ext)


@dataclass(frozen=True)
class Image:
    """One original: ``camera`` folder name, ``image`` (file stem, names all outputs), ``path``, ``format``
    (:func:`image_format`), ``batch``, and ``flat`` for flat-field images."""

    camera: str
    image: str
    path: str
    format: str
    batch: str
    flat: bool = False


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


def _flat_pattern(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern) if pattern else None
    except re.error as exc:
        raise ConfigError(f"spn.flat_field_pattern = {pattern!r}: not a valid regular expression ({exc}); "
                          "correct it (e.g. '^FLAT_' or '(?i)flat') or leave it empty") from None


def _entries(folder: str) -> list[os.DirEntry]:
    return sorted((e for e in os.scandir(folder) if not e.name.startswith(".")), key=lambda e: e.name)


def discover(
    original: str | os.PathLike, batches: int, flat_folder: str = "flat", flat_pattern: str = "",
) -> tuple[list[Image], list[Skipped]]:
    """List the originals of every camera folder under ``original``.

    ``flat_folder``: name of a camera's flat-field sub-folder (empty: none);
    ``flat_pattern``: regular expression searched in file names that marks
    flat-field images anywhere in a camera folder (empty: none; an invalid one
    raises ConfigError). Returns the images sorted by (camera, image) and the
    skipped entries: files that are not originals, other sub-folders, symlinks
    that point outside the drive folder, unreadable or empty camera folders,
    and a second file with an already used stem (its outputs would overwrite
    the first one's; the camera folder's own files come before the flat-field
    folder's).
    """
    original = Path(original)
    pattern = _flat_pattern(flat_pattern)
    images: list[Image] = []
    skipped: list[Skipped] = []
    for entry in sorted(os.scandir(original), key=lambda e: e.name):
        if not entry.is_dir():
            skipped.append(Skipped("", entry.path, "not a camera folder (files directly under Original are ignored)"))
            continue
        camera = entry.name
        if camera.startswith("."):
            continue
        if entry.is_symlink() and not _inside(Path(entry.path), original):
            skipped.append(Skipped(camera, entry.path, "camera folder is a symlink pointing outside the Original "
                                                       "folder; copy the folder in"))
            continue
        try:
            files = _entries(entry.path)
        except OSError as exc:
            skipped.append(Skipped(camera, entry.path, f"camera folder cannot be read ({exc.strerror}); check its permissions"))
            continue
        flats = [f for f in files if flat_folder and f.name == flat_folder and f.is_dir()]
        files = [(f, False) for f in files if f not in flats]
        for folder in flats:
            try:
                files += [(f, True) for f in _entries(folder.path)]
            except OSError as exc:
                skipped.append(Skipped(camera, folder.path, f"flat-field folder cannot be read ({exc.strerror}); "
                                                            "check its permissions"))
        seen: dict[str, str] = {}
        count = 0
        for f, in_flat_folder in files:
            stem, ext = os.path.splitext(f.name)
            fmt = image_format(ext)
            if f.is_dir():
                where = f"the flat-field folder {flat_folder!r}" if in_flat_folder else "a camera folder"
                skipped.append(Skipped(camera, f.path, f"sub-folder inside {where} is not scanned"))
            elif fmt is None:
                skipped.append(Skipped(camera, f.path, f"not a RAW image or a JPEG/TIFF/PNG (extension {ext or 'none'!r})"))
            elif (f.is_symlink() or in_flat_folder) and not _inside(Path(f.path), original):
                skipped.append(Skipped(camera, f.path, "symlink pointing outside the Original folder; copy the file in"))
            elif stem in seen:
                skipped.append(Skipped(camera, f.path, f"same name as {seen[stem]}; rename one of them"))
            else:
                seen[stem] = os.path.relpath(f.path, entry.path)
                count += 1
                flat = in_flat_folder or bool(pattern and pattern.search(f.name))
                images.append(Image(camera, stem, f.path, fmt, batch_of(f.name, batches), flat))
        if count == 0:
            skipped.append(Skipped(camera, entry.path, f"camera folder has no images ({IMAGE_KINDS})"))
    return sorted(images, key=lambda i: (i.camera, i.image)), skipped


def images_table(images: list[Image]) -> pd.DataFrame:
    """Images as a DataFrame with columns camera, image, path, format, batch, flat."""
    import pandas as pd

    return pd.DataFrame([vars(i) for i in images], columns=["camera", "image", "path", "format", "batch", "flat"])
