"""Rule ``identification``: every score of the drive in one table, and the identification summary per
camera and quality (:mod:`spnrestore.metrics`)."""

from __future__ import annotations

import logging
import os
from typing import Iterable

import pandas as pd

from ..atomic import save_csv
from ..metrics import metrics_table

logger = logging.getLogger(__name__)

SCORE_TABLE_COLUMNS = ["camera", "image", "role", "quality", "fingerprint", "pce", "ncc", "match"]


def read_scores(path: str | os.PathLike) -> pd.DataFrame:
    """A table of scores with its column types (names and quality stay text)."""
    return pd.read_csv(path, dtype={"camera": str, "image": str, "quality": str, "fingerprint": str},
                       keep_default_na=False)


def write_identification(
    tables: Iterable[str | os.PathLike], threshold: float, scores_out: str | os.PathLike,
    summary_out: str | os.PathLike,
) -> pd.DataFrame:
    """Concatenate the per-batch score tables; write them and the per camera and quality summary.

    A drive where nothing is scored (every image built a fingerprint, or no camera has one) gets
    well-formed empty tables and a log line saying so."""
    frames = [f for f in map(read_scores, tables) if len(f)]
    scores = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_TABLE_COLUMNS)
    summary = metrics_table(scores, ["camera", "quality"], threshold, keys=("camera", "image"))
    if scores.empty:
        logger.warning("no image was scored: every usable image built its camera's fingerprint, or no camera has "
                       "one; add images or lower spn.fingerprint_images (see the run's first lines per camera)")
    save_csv(scores_out, scores)
    save_csv(summary_out, summary)
    return summary
