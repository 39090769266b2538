"""The develop stage for one batch of originals: develop each RAW once (or load a developed
original: camera JPEG, TIFF, PNG), write every JPEG quality, the residual of the uncompressed
image and its gray intensity.

Called by ``workflow/scripts/develop.py``. The batch table it writes (one row
per image: metadata, status, reason) is the job's tracked output; the manifest
rule concatenates the tables of all batches.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from .atomic import save_csv
from .errors import BadImageError
from .developed import load_original
from .jpeg import write_jpeg, write_png
from .residual_files import ORIGINAL, residual_path, save_residual
from .spn import extract_residual, rgb2gray

INTEGER_COLUMNS = ["width", "height", "orientation", "source_quality"]
TABLE_COLUMNS = ["camera", "image", "path", "format", "batch", "role", "status", "reason",
                 "width", "height", "make", "model", "raw_pattern", "orientation", "source_quality"]


def jpeg_path(compressed: str | os.PathLike, camera: str, quality: int, image: str) -> Path:
    """``Compressed/<camera>/<quality>/<image>.jpg``."""
    return Path(compressed) / camera / str(quality) / f"{image}.jpg"


def read_develop_table(path: str | os.PathLike) -> pd.DataFrame:
    """A develop batch table with its column types (names stay text, sizes nullable integers).

    ``source_quality``: estimated quality of a camera JPEG original (empty for RAW, TIFF and PNG
    originals); its copies at each quality are then double-compressed.
    """
    text = {c: str for c in ("camera", "image", "path", "format", "batch", "role", "status", "reason",
                             "make", "model", "raw_pattern")}
    frame = pd.read_csv(path, dtype={**text, **{c: "Int64" for c in INTEGER_COLUMNS}}, keep_default_na=False,
                        na_values={c: [""] for c in INTEGER_COLUMNS})
    return frame


def gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """Gray intensity (the residual's colour weights) of uint8 RGB, rounded to uint8 H x W."""
    return np.clip(np.rint(rgb2gray(rgb.astype(np.float32))), 0, 255).astype(np.uint8)


def intensity_path(intensity_dir: str | os.PathLike, camera: str, image: str) -> Path:
    """Gray intensity of a developed original (uint8 PNG), kept for scoring its residual."""
    return Path(intensity_dir) / camera / f"{image}.png"


def develop_batch(
    images: Iterable[Mapping],
    compressed: str | os.PathLike,
    qualities: Iterable[int],
    develop_settings: Mapping,
    subsampling: str,
    on_bad_image: str,
    spn: str | os.PathLike,
    intensity_dir: str | os.PathLike,
    sigma: float,
    table: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Develop (RAW) or load (JPEG, TIFF, PNG) each image of a batch and write its JPEGs at every quality.

    Args:
        images: mappings with keys camera, image, path, format, batch, role.
        compressed: the Compressed folder of the drive.
        qualities: JPEG qualities.
        develop_settings: the ``develop`` config section (RAW originals).
        subsampling: chroma subsampling, "420", "422" or "444".
        on_bad_image: "skip" records a bad original in the table and goes on; "fail" raises.
        spn: the SPN folder of the drive (``SPN/<camera>/original/<image>.npy``).
        intensity_dir: where the uint8 gray intensity of each development is kept (PNG).
        sigma: noise standard deviation of the residual's wavelet denoiser (0..255 units).
        table: CSV written (atomically) at the end, one row per image.
    """
    rows = []
    for item in images:
        row = {k: item[k] for k in ("camera", "image", "path", "format", "batch", "role")}
        try:
            developed = load_original(item["path"], item["format"], develop_settings)
            residual = extract_residual(developed.rgb, sigma=sigma, name=item["path"])
        except BadImageError as exc:
            if on_bad_image == "fail":
                raise
            log(f"skipped: {exc}")
            rows.append({**row, "status": "skipped", "reason": exc.problem})
            continue
        for quality in qualities:
            write_jpeg(jpeg_path(compressed, item["camera"], quality, item["image"]), developed.rgb, quality, subsampling)
        save_residual(residual_path(spn, item["camera"], ORIGINAL, item["image"]), residual)
        write_png(intensity_path(intensity_dir, item["camera"], item["image"]), gray_uint8(developed.rgb))
        height, width = developed.rgb.shape[:2]
        rows.append({**row, "status": "ok", "reason": "", "width": width, "height": height,
                     "make": developed.make, "model": developed.model,
                     "raw_pattern": developed.raw_pattern, "orientation": developed.orientation,
                     "source_quality": developed.source_quality})
        source = f"pattern {developed.raw_pattern}" if developed.raw_pattern else f"{item['format']} original"
        log(f"developed {item['path']} ({width}x{height}, {source}, orientation tag {developed.orientation})")
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({c: "Int64" for c in INTEGER_COLUMNS})
    save_csv(table, frame)
    return frame
