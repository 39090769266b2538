"""Rule ``plots``: the report's figures from the evaluation's scores, the training logs and the drive.

The figures themselves are drawn by :mod:`spnrestore.figures`; this stage picks what to draw and reads the
residuals of the example images from the drive (:func:`drive_crop_row`).
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from .. import figures
from ..figures import CropPanel, CropRow
from ..jpeg import read_rgb
from ..paths import ORIGINAL, DrivePaths
from ..residual_files import load_residual
from ..spn import fingerprint_term, score_pair
from .identification import read_scores


def drive_crop_row(
    drive: DrivePaths | Mapping,
    camera: str,
    image: str,
    quality: int,
    scores: pd.DataFrame | None = None,
) -> CropRow:
    """The maps of one evaluated image from the drive: plain, restored and original residuals and the term K * I.

    Reads the image's residuals (the restored one left out when the image was not restored), its camera's
    fingerprint and its JPEG (for the intensity of the term). PCEs (of the whole image, with its own
    camera's fingerprint) come from ``scores`` when given. An image turned by the camera without a tag is
    shown in the quarter turn that scoring chose (:func:`spnrestore.spn.score_pair`).
    """
    drive = DrivePaths.of(drive)
    own = None
    if scores is not None:
        own = scores[(scores["camera"].astype(str) == camera) & (scores["image"].astype(str) == image)
                     & (scores["fingerprint"].astype(str) == camera) & (scores["quality"].astype(int) == int(quality))]
    pce_of = lambda method: (None if own is None or not (own["method"] == method).any()  # noqa: E731
                             else float(own.loc[own["method"] == method, "pce"].iloc[0]))
    sources = [("plain", drive.residual(camera, quality, image)), ("restored", drive.restored(camera, quality, image)),
               ("original", drive.residual(camera, ORIGINAL, image))]
    panels = [CropPanel(f"{method} residual", load_residual(path), pce_of(method))
              for method, path in sources if method != "restored" or path.is_file()]
    k = load_residual(drive.fingerprint(camera))
    rgb = read_rgb(drive.jpeg(camera, quality, image))
    if k.shape != panels[0].array.shape:  # turned by the camera (no tag): the turn scoring kept
        turn = score_pair(panels[0].array, rgb, k, with_ncc=False)[2]
        panels = [CropPanel(p.label, np.rot90(p.array, turn), p.pce) for p in panels]
        rgb = np.rot90(rgb, turn)
    panels.append(CropPanel("fingerprint term K*I", fingerprint_term(k, rgb)))
    return CropRow(f"{camera}/{image} Q{quality}", panels)


def write_plots(
    scores_csv: str | os.PathLike,
    drive: DrivePaths | Mapping,
    subsets: Iterable[str],
    threshold: float,
    roc_out: Iterable[str | os.PathLike],
    pce_out: Iterable[str | os.PathLike],
    crops_out: str | os.PathLike,
    log: Callable[[str], None] = print,
) -> None:
    """ROC curves and PCE distributions per subset, and residual crops of the two weakest plain-residual
    matches per subset at the lowest quality. A subset without evaluated images (a small drive) gets a
    figure that says so instead of a plot."""
    scores = read_scores(scores_csv)
    scores["quality"] = scores["quality"].astype(int)
    for subset, roc, pce in zip(subsets, roc_out, pce_out):
        if (scores["subset"] == subset).any():
            figures.roc_curves(scores, roc, threshold, subset=subset)
            figures.pce_distributions(scores, pce, threshold, subset=subset)
        else:
            message = f"no image of subset {subset!r} was evaluated (see the run's first lines and skipped.csv)"
            for out in (roc, pce):
                figures.note_figure(out, f"{subset} images", message)
            log(message)
    if scores.empty:
        figures.note_figure(crops_out, "residual crops", "no image was evaluated")
        log("no image was evaluated: figures say so")
        return
    lowest = int(scores["quality"].min())
    examples = scores[scores["match"] & (scores["method"] == "plain") & (scores["quality"] == lowest)]
    examples = examples.sort_values("pce").groupby("subset").head(2)
    rows = [drive_crop_row(drive, r.camera, r.image, lowest, scores) for r in examples.itertuples()]
    figures.residual_crops(rows, crops_out)
    log(f"plots written; crops of {len(rows)} images at quality {lowest}")
