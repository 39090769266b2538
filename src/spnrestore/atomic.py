"""Atomic file writes: a temporary name in the target's folder, then ``os.replace``.

A job killed while writing leaves at most a ``.<name>.*.tmp`` file behind, never
a file under the final name that looks complete; the next successful write of the
same file removes such leftovers once they are an hour old (a live writer's
temporary file is seconds old). Temporary files are removed when the write fails;
a full disk raises ``OSError(ENOSPC)`` naming the file and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import io
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The parent folder is created. On any exception the temporary file is removed
    and the exception propagates (a full disk or quota as an ``OSError`` that
    names ``path``); ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(exc.errno, f"{exc.strerror}: the disk is full while writing {path}; free space and "
                                     "re-run (nothing half-written was kept)", str(path)) from exc
        raise
    remove_stale_temporaries(path)


def remove_stale_temporaries(path: Path, age_s: float = 3600.0) -> None:
    """Remove temporary files of ``path`` (``.<name>.*.tmp``) left by writers killed over ``age_s`` seconds ago."""
    cutoff = time.time() - age_s
    for stale in glob.glob(os.path.join(glob.escape(str(path.parent)), f".{glob.escape(path.name)}.*.tmp")):
        with contextlib.suppress(OSError):
            if os.stat(stale).st_mtime < cutoff:
                os.unlink(stale)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed to disk before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save ``array`` as a ``.npy`` file atomically (loadable with ``mmap_mode='r'``)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    write_bytes(path, buf.getvalue())


def save_csv(path: str | os.PathLike, frame) -> None:
    """Save a pandas DataFrame as CSV (UTF-8, no index) atomically."""
    write_text(path, frame.to_csv(index=False))
