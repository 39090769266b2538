"""Minimal reader of the first IFD of TIFF-based files (DNG, NEF, CR2, ARW, PEF...).

Used for the informative make/model columns of the manifest; it reads a few
hundred bytes and never decodes pixels.
"""

from __future__ import annotations

import os
import struct

MAKE, MODEL, ORIENTATION, UNIQUE_CAMERA_MODEL = 0x010F, 0x0110, 0x0112, 0xC614


def read_ifd0(path: str | os.PathLike, max_bytes: int = 1 << 16) -> dict[int, object]:
    """Tags of IFD0 as {tag: value}: ASCII tags as str, SHORT/LONG single values as int.

    Returns {} for files that are not TIFF-based or whose IFD0 lies beyond ``max_bytes``.
    """
    with open(path, "rb") as f:
        head = f.read(max_bytes)
    if head[:4] in (b"II*\x00", b"IIRO", b"IIRS", b"IIU\x00"):
        endian = "<"
    elif head[:4] == b"MM\x00*":
        endian = ">"
    else:
        return {}
    (offset,) = struct.unpack_from(endian + "I", head, 4)
    if offset + 2 > len(head):
        return {}
    (count,) = struct.unpack_from(endian + "H", head, offset)
    tags: dict[int, object] = {}
    for i in range(count):
        pos = offset + 2 + 12 * i
        if pos + 12 > len(head):
            break
        tag, typ, n, value = struct.unpack_from(endian + "HHII", head, pos)
        if typ == 2:  # ASCII
            start = pos + 8 if n <= 4 else value
            tags[tag] = head[start : start + n].split(b"\x00")[0].decode("utf-8", "replace").strip()
        elif typ == 3 and n == 1:  # SHORT, stored left-justified in the value field
            tags[tag] = struct.unpack_from(endian + "H", head, pos + 8)[0]
        elif typ == 4 and n == 1:  # LONG
            tags[tag] = value
    return tags


def make_model(path: str | os.PathLike) -> tuple[str, str]:
    """(Make, Model) of a TIFF-based RAW file (DNG UniqueCameraModel when Model is absent)."""
    tags = read_ifd0(path)
    return str(tags.get(MAKE, "")), str(tags.get(MODEL) or tags.get(UNIQUE_CAMERA_MODEL, ""))
