"""Rule ``manifest``: every discovered original with its metadata and status, and the skipped report."""

from __future__ import annotations

import os
from typing import Iterable, Mapping

import pandas as pd

from ..atomic import save_csv
from .develop import TABLE_COLUMNS, read_develop_table


def write_manifest(
    tables: Iterable[str | os.PathLike],
    discovery_skipped: Iterable[Mapping],
    manifest: str | os.PathLike,
    skipped: str | os.PathLike,
    plan_notes: Iterable[Mapping] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate the develop batch tables into ``manifest``; list every unused file in ``skipped``.

    ``skipped`` has columns camera, path, stage, reason: files discovery did not take
    (not RAW, empty camera folder...), originals the develop stage could not use, and what the drive's plan
    left undone (``plan_notes``, stage ``plan``: a camera with nothing left to score, a drive too small to
    train; camera empty for the whole drive).
    """
    frames = [read_develop_table(t) for t in tables]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TABLE_COLUMNS)
    table = table.sort_values(["camera", "image"], kind="stable").reset_index(drop=True)
    bad = table.loc[table["status"] != "ok", ["camera", "path", "reason"]].assign(stage="develop")
    listed = pd.DataFrame(list(discovery_skipped), columns=["camera", "path", "reason"]).assign(stage="discovery")
    noted = pd.DataFrame(list(plan_notes), columns=["camera", "path", "reason"]).assign(stage="plan")
    report = pd.concat([listed, bad, noted], ignore_index=True)[["camera", "path", "stage", "reason"]]
    save_csv(manifest, table)
    save_csv(skipped, report)
    return table, report
