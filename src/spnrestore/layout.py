"""Lay out a folder of camera images as a drive's ``Original/<camera>/<image>`` tree.

Public sensor-noise data sets (Dresden, VISION, Daxing) ship their images in one
folder, or in folders of their own design. :func:`plan_layout` decides, for every
file under a source folder, the camera folder it belongs to (from a regular
expression on its path, :func:`pattern_assigner`, or from its EXIF Make, Model
and serial number, :func:`exif_assigner`) and its file name there;
:func:`apply_layout` then creates hard links (default), symbolic links or copies.
Source files are never moved, renamed or written: a hard link is a second name
of the same file, so the laid-out tree must not be edited in place (deleting it
is safe). Re-running is idempotent: a target that already is the source (or an
identical copy) is left as it is; a target holding a different file is reported
as a conflict and never overwritten.

Every file appears in the plan: placed, or skipped with the reason (not an
image, no match, no EXIF...), never silently dropped. :func:`write_table`
writes the plan as CSV (``source, camera, target, action, reason``).
"""

from __future__ import annotations

import csv
import errno
import filecmp
import io
import os
import re
import shutil
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .atomic import atomic_path, write_text
from .discovery import DEVELOPED_EXTENSIONS, RAW_EXTENSIONS, stable_hash
from .errors import BadImageError, SpnRestoreError

#: Dresden Image Database names ``Make_Model_DeviceIndex_Number.JPG`` (the model may hold underscores).
DRESDEN_PATTERN = r"(?:^|/)(?P<make>[^_/]+)_(?P<model>[^/]+)_(?P<device>\d+)_\d+\.\w+$"
#: Developed images and the RAW formats the workflow reads (any case).
IMAGE_EXTENSIONS = (*DEVELOPED_EXTENSIONS, *RAW_EXTENSIONS)
MODES = ("hardlink", "symlink", "copy")
TABLE_COLUMNS = ("source", "camera", "target", "action", "reason")
NAME_PARTS = ("make", "model", "device")
MAX_NAME_CHARS = 100
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


@dataclass(frozen=True)
class Source:
    """An entry under the source folder: absolute ``path`` and ``relative`` path from the source folder with
    ``/`` separators (what patterns are matched against); ``skip``: why it is not laid out, for folders that
    are not scanned ("" for files)."""

    path: Path
    relative: str
    skip: str = ""


@dataclass(frozen=True)
class Assignment:
    """The camera folder of one source (``camera`` None: not placed) and why (``note``, shown in the table)."""

    camera: str | None
    note: str


@dataclass(frozen=True)
class Placement:
    """One row of the layout table.

    ``target``: path of the link, relative to the output folder (``camera/name``
    or ``camera/flat/name``), "" when skipped. ``action``: ``link`` or ``skip``
    in a plan; after :func:`apply_layout` one of ``linked``, ``symlinked``,
    ``copied``, ``exists`` (already in place), ``conflict`` (a different file is
    there), ``skip``, or ``would link`` in a dry run.
    """

    source: str
    camera: str
    target: str
    action: str
    reason: str


# ----------------------------------------------------------------------------- names
def safe_name(text: str) -> str:
    """``text`` as a folder or file name valid on Linux, macOS and Windows file systems ("" when nothing is left).

    Unicode is kept (NFC-normalised, so the same name is one folder on every
    system) and so are inner spaces; path separators, control characters and
    characters Windows forbids become ``_``; whitespace runs become one space;
    leading dots and spaces and trailing dots and spaces are removed (a
    leading dot would hide the folder, Windows drops trailing ones); reserved
    Windows device names get a ``_`` suffix; at most :data:`MAX_NAME_CHARS`.
    """
    name = " ".join(_FORBIDDEN.sub("_", unicodedata.normalize("NFC", text)).split())
    name = name.lstrip(". ")[:MAX_NAME_CHARS].rstrip(". ")
    return name + "_" if name.split(".")[0].casefold() in _WINDOWS_RESERVED else name


def camera_of_tags(make: str | None, model: str | None, serial: str | None) -> str:
    """Camera folder name from EXIF tags: ``Make Model`` (the make left out when the model already starts with
    one of its words, as in ``Canon`` / ``Canon EOS 6D``), then ``_serial`` when known; "" without make and model."""
    words = {w.casefold() for w in (make or "").split()}
    repeats_make = model and (not make or model.split()[0].casefold() in words)
    name = model if repeats_make else " ".join(filter(None, (make, model)))
    name = safe_name(name or "")
    return f"{name}_{safe_name(serial)}" if name and serial and safe_name(serial) else name


# ----------------------------------------------------------------------------- sources
def scan_sources(root: str | os.PathLike, recursive: bool = False) -> list[Source]:
    """Every file under ``root`` (only those directly in it unless ``recursive``; absolute paths), sorted by
    relative path, plus the folders that are not scanned, with the reason: sub-folders without ``recursive``,
    hidden folders, folder symlinks (not followed) and unreadable folders."""
    root = Path(root).absolute()
    found: list[Source] = []

    def unreadable(exc: OSError) -> None:
        found.append(Source(Path(exc.filename), Path(exc.filename).relative_to(root).as_posix(),
                            f"folder cannot be read ({exc.strerror})"))

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        here = Path(folder)
        prefix = "" if here == root else here.relative_to(root).as_posix() + "/"
        scanned = []
        for name in sorted(dirs):
            if name.startswith("."):
                found.append(Source(here / name, prefix + name, "hidden folder"))
            elif (here / name).is_symlink():
                found.append(Source(here / name, prefix + name, "folder symlink is not followed"))
            elif not recursive:
                found.append(Source(here / name, prefix + name,
                                    "sub-folder is not scanned (pass --recursive to lay out the files below it)"))
            else:
                scanned.append(name)
        dirs[:] = scanned
        found += [Source(here / name, prefix + name) for name in files]
    return sorted(found, key=lambda s: s.relative)


# ----------------------------------------------------------------------------- camera assignment
def compile_pattern(text: str) -> re.Pattern:
    """The ``--by pattern`` regular expression; it must name a ``camera`` group or a ``model`` group (with
    optional ``make`` and ``device``). Raises :class:`SpnRestoreError` when it does not compile or lacks them."""
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise SpnRestoreError(f"pattern {text!r}: not a valid regular expression ({exc}); check the brackets and "
                              "escape literal dots as '\\.'.") from None
    groups = set(pattern.groupindex)
    if "camera" not in groups and "model" not in groups:
        named = ", ".join(sorted(groups)) or "none"
        raise SpnRestoreError(f"pattern {text!r}: names no group 'camera' or 'model' (named groups: {named}); "
                              "write e.g. (?P<camera>...) or (?P<make>...)_(?P<model>...)_(?P<device>\\d+).")
    return pattern


def pattern_assigner(pattern: re.Pattern) -> Callable[[list[Source]], list[Assignment]]:
    """Assign cameras by a regular expression searched in each relative path: the ``camera`` group names the
    folder, else the ``make``, ``model`` and ``device`` groups that matched, joined by ``_`` (Dresden:
    ``Canon_Ixus70_0``). Pure: reads no file."""

    def assign_one(source: Source) -> Assignment:
        match = pattern.search(source.relative)
        if match is None:
            return Assignment(None, "name does not match the pattern")
        groups = {k: v for k, v in match.groupdict().items() if v}
        parts = [groups.get("camera")] if "camera" in pattern.groupindex else [groups.get(k) for k in NAME_PARTS]
        camera = "_".join(filter(None, (safe_name(p) for p in parts if p)))
        if not camera:
            return Assignment(None, "the pattern's camera groups matched nothing")
        return Assignment(camera, "pattern: " + ", ".join(f"{k}={v!r}" for k, v in groups.items()))

    return lambda sources: [assign_one(s) for s in sources]


def exif_assigner(sources: list[Source]) -> list[Assignment]:
    """Assign cameras by EXIF Make, Model and serial number (:func:`camera_of_tags`), reading each file's header.

    Files without readable metadata are not placed (the reason says why).
    Images without a serial go to the ``Make Model`` folder with a note: their
    devices cannot be told apart, and when other images of the model do carry
    a serial the note says so.
    """
    from .exif import read_camera_tags

    tags: list = []
    for source in sources:
        try:
            tags.append(read_camera_tags(source.path))
        except BadImageError as exc:
            tags.append(exc.problem)
    with_serial = {camera_of_tags(t.make, t.model, None) for t in tags if not isinstance(t, str) and t.serial}
    out = []
    for t in tags:
        if isinstance(t, str):
            out.append(Assignment(None, t))
            continue
        camera = camera_of_tags(t.make, t.model, t.serial)
        described = f"EXIF Make {t.make!r}, Model {t.model!r}" + (f", serial {t.serial!r}" if t.serial else "")
        if not camera:
            out.append(Assignment(None, "no EXIF Make or Model; lay it out with --by pattern"))
        elif t.serial:
            out.append(Assignment(camera, described))
        elif camera in with_serial:
            out.append(Assignment(camera, described + "; no serial number although other images of this model have "
                                                      "one: its device is unknown"))
        else:
            out.append(Assignment(camera, described + "; no serial number: devices of this model are not told apart"))
    return out


# ----------------------------------------------------------------------------- plan
def plan_layout(sources: list[Source], assign: Callable[[list[Source]], list[Assignment]],
                flat: re.Pattern | None = None, flat_folder: str = "flat") -> list[Placement]:
    """The placement of every source, in the order of ``sources``; touches no file (``assign`` may read some).

    Image files (:data:`IMAGE_EXTENSIONS`, any case, not hidden) are passed to
    ``assign``; the others are skipped. A source whose relative path matches
    ``flat`` goes to ``camera/<flat_folder>/``. Camera names that differ only
    in case are merged into the first one's spelling (a case-insensitive file
    system would merge them anyway). A file stem already taken in its camera
    (in any case, with any extension, in the camera folder or its flat-field
    folder: the workflow names outputs by stem and would refuse the second
    file) gets a ``_<hash of its source path>`` suffix; the first source in
    order keeps the plain name.
    """
    skips: dict[int, str] = {}
    for i, s in enumerate(sources):
        ext = os.path.splitext(s.relative)[1]
        if s.skip:
            skips[i] = s.skip
        elif s.relative.rsplit("/", 1)[-1].startswith("."):
            skips[i] = "hidden file"
        elif ext.lower() not in IMAGE_EXTENSIONS:
            skips[i] = f"not an image (extension {ext or 'none'!r})"
    images = [i for i in range(len(sources)) if i not in skips]
    assignments = dict(zip(images, assign([sources[i] for i in images])))
    spelling: dict[str, str] = {}
    taken: set[tuple[str, str]] = set()
    shots: dict[tuple[str, str], str] = {}  # (source folder, stem) -> first file: RAW+JPEG pairs of one shot
    plan: list[Placement] = []
    for i, source in enumerate(sources):
        a = assignments.get(i)
        if a is None or a.camera is None:
            plan.append(Placement(str(source.path), "", "", "skip", skips.get(i) or a.note))
            continue
        camera = spelling.setdefault(a.camera.casefold(), a.camera)
        folder = f"{camera}/{flat_folder}" if flat is not None and flat.search(source.relative) else camera
        name = source.relative.rsplit("/", 1)[-1]
        stem, ext = os.path.splitext(name)
        note = a.note
        shot = (source.relative.rsplit("/", 1)[0] if "/" in source.relative else "", stem.casefold())
        if shot in shots:  # the same exposure twice (e.g. IMG_1.DNG and IMG_1.JPG): one may not build the
            plan.append(Placement(str(source.path), camera, "", "skip",  # fingerprint while the other is tested
                                  f"same shot as {shots[shot]} (same name, other format); one copy is kept"))
            continue
        shots[shot] = name
        if (camera.casefold(), stem.casefold()) in taken:
            stem = f"{stem}_{stable_hash(source.relative) % 16**8:08x}"
            note += f"; renamed: the name {Path(name).stem} is already taken in camera {camera}"
        if (camera.casefold(), stem.casefold()) in taken:  # only if a source is named like a renamed one
            plan.append(Placement(str(source.path), camera, "", "skip", f"{name}: name clash in {camera}; rename it"))
            continue
        taken.add((camera.casefold(), stem.casefold()))
        plan.append(Placement(str(source.path), camera, f"{folder}/{stem}{ext}", "link", note))
    return plan


# ----------------------------------------------------------------------------- apply
def _same_content(a: Path, b: Path) -> bool:
    """Whether ``b`` is ``a`` (a link to it) or holds the same bytes."""
    return os.path.samefile(a, b) or filecmp.cmp(a, b, shallow=False)


def _place(source: Path, target: Path, mode: str) -> None:
    """Create ``target`` as a hard link, symbolic link or (atomic) copy of ``source``."""
    if mode == "hardlink":
        os.link(source, target)
    elif mode == "symlink":
        os.symlink(source.resolve(), target)
    else:
        with atomic_path(target) as tmp:
            shutil.copy2(source, tmp)


def _link_error(exc: OSError, source: Path, target: Path, mode: str) -> SpnRestoreError:
    """A clear message for a link that the file systems refuse."""
    if mode == "hardlink" and exc.errno == errno.EXDEV:
        why = ("the source and the output are on different file systems, where hard links are impossible; pass "
               "--copy (the drive then holds its own copies) or --symlink")
    elif mode == "hardlink" and exc.errno == errno.EPERM:
        why = ("hard link refused (a file system without hard links such as exFAT/FAT, or a file owned by another "
               "user with protected hard links); pass --copy, or --symlink")
    elif mode == "symlink" and exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
        why = "the output's file system does not support symbolic links; pass --copy"
    else:
        why = f"{exc.strerror}"
    return SpnRestoreError(f"{source} -> {target}: {why}.")


def apply_layout(plan: list[Placement], output: str | os.PathLike, mode: str = "hardlink",
                 dry_run: bool = False) -> list[Placement]:
    """Create the links of ``plan`` under ``output``; returns the plan with each row's outcome as its action.

    ``mode``: ``hardlink`` (default; same file system only), ``symlink``
    (absolute links to the resolved source) or ``copy`` (written under a
    temporary name, then renamed; times kept). A target that is already the
    source, or holds identical bytes, is ``exists``; one that holds anything
    else is ``conflict`` and left alone. With ``dry_run`` nothing is written
    and new targets are ``would link``. A link the file system refuses raises
    :class:`SpnRestoreError` saying which option to use; links made before stay
    (a re-run completes them).
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    output = Path(output)
    done = {"hardlink": "linked", "symlink": "symlinked", "copy": "copied"}[mode]
    out: list[Placement] = []
    for p in plan:
        if p.action != "link":
            out.append(p)
            continue
        source, target = Path(p.source), output / p.target
        if os.path.lexists(target):
            if target.exists() and target.is_file() and _same_content(source, target):
                out.append(replace(p, action="exists"))
            else:
                out.append(replace(p, action="conflict", reason=p.reason + "; a different file is already there: "
                                                                          "left as it is"))
            continue
        if not dry_run:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                _place(source, target, mode)
            except OSError as exc:
                raise _link_error(exc, source, target, mode) from None
        out.append(replace(p, action="would link" if dry_run else done))
    return out


# ----------------------------------------------------------------------------- reports
def write_table(plan: list[Placement], path: str | os.PathLike) -> None:
    """Write the placements as CSV (:data:`TABLE_COLUMNS`, UTF-8) atomically; ``target`` is relative to the output."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TABLE_COLUMNS)
    writer.writerows((p.source, p.camera, p.target, p.action, p.reason) for p in plan)
    write_text(path, buffer.getvalue())


def camera_counts(plan: list[Placement], flat_folder: str = "flat") -> dict[str, tuple[int, int, Counter]]:
    """Per camera folder, sorted by name: (images, flat-field images, Counter of the rows' actions)."""
    counts: dict[str, tuple[int, int, Counter]] = {}
    for p in sorted((p for p in plan if p.target), key=lambda p: p.camera):
        images, flats, actions = counts.get(p.camera, (0, 0, Counter()))
        is_flat = p.target.startswith(f"{p.camera}/{flat_folder}/")
        actions[p.action] += 1
        counts[p.camera] = (images + (not is_flat), flats + is_flat, actions)
    return counts
