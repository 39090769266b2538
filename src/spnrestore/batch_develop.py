"""The develop stage for one batch of originals: decode each RAW once, write every JPEG quality.

Called by ``workflow/scripts/develop.py``. The batch table it writes (one row
per image: metadata, status, reason) is the job's tracked output; the manifest
rule concatenates the tables of all batches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pandas as pd

from .atomic import save_csv
from .errors import BadImageError
from .develop import develop_raw
from .jpeg import write_jpeg

TABLE_COLUMNS = ["camera", "image", "path", "format", "batch", "status", "reason",
                 "width", "height", "make", "model", "raw_pattern", "orientation"]


def jpeg_path(compressed: str | os.PathLike, camera: str, quality: int, image: str) -> Path:
    """``Compressed/<camera>/<quality>/<image>.jpg``."""
    return Path(compressed) / camera / str(quality) / f"{image}.jpg"


def develop_batch(
    images: Iterable[Mapping],
    compressed: str | os.PathLike,
    qualities: Iterable[int],
    develop_settings: Mapping,
    subsampling: str,
    on_bad_image: str,
    table: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Develop each image of a batch and write its JPEGs at every quality.

    Args:
        images: mappings with keys camera, image, path, format, batch.
        compressed: the Compressed folder of the drive.
        qualities: JPEG qualities.
        develop_settings: the ``develop`` config section.
        subsampling: chroma subsampling, "420", "422" or "444".
        on_bad_image: "skip" records a bad original in the table and goes on; "fail" raises.
        table: CSV written (atomically) at the end, one row per image.
    """
    rows = []
    for item in images:
        row = {k: item[k] for k in ("camera", "image", "path", "format", "batch")}
        try:
            developed = develop_raw(item["path"], develop_settings)
        except BadImageError as exc:
            if on_bad_image == "fail":
                raise
            log(f"skipped: {exc}")
            rows.append({**row, "status": "skipped", "reason": exc.problem})
            continue
        for quality in qualities:
            write_jpeg(jpeg_path(compressed, item["camera"], quality, item["image"]), developed.rgb, quality, subsampling)
        height, width = developed.rgb.shape[:2]
        rows.append({**row, "status": "ok", "reason": "", "width": width, "height": height,
                     "make": developed.make, "model": developed.model,
                     "raw_pattern": developed.raw_pattern, "orientation": developed.orientation})
        log(f"developed {item['path']} ({width}x{height}, pattern {developed.raw_pattern})")
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    save_csv(table, frame)
    return frame
