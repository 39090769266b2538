"""The drive manifest: every discovered original with its metadata and status, and the skipped report."""

from __future__ import annotations

import os
from typing import Iterable, Mapping

import pandas as pd

from .atomic import save_csv
from .batch_develop import TABLE_COLUMNS, read_develop_table


def write_manifest(
    tables: Iterable[str | os.PathLike],
    discovery_skipped: Iterable[Mapping],
    manifest: str | os.PathLike,
    skipped: str | os.PathLike,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate the develop batch tables into ``manifest``; list every unused file in ``skipped``.

    ``skipped`` has columns camera, path, stage, reason: files discovery did not take
    (not RAW, empty camera folder...) and originals the develop stage could not use.
    """
    frames = [read_develop_table(t) for t in tables]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TABLE_COLUMNS)
    table = table.sort_values(["camera", "image"], kind="stable").reset_index(drop=True)
    bad = table.loc[table["status"] != "ok", ["camera", "path", "reason"]].assign(stage="develop")
    listed = pd.DataFrame(list(discovery_skipped), columns=["camera", "path", "reason"]).assign(stage="discovery")
    report = pd.concat([listed, bad], ignore_index=True)[["camera", "path", "stage", "reason"]]
    save_csv(manifest, table)
    save_csv(skipped, report)
    return table, report
