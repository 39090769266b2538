"""Rule ``evaluation``: plain, restored and original residuals of held-out images scored against every
fingerprint, and the metrics per subset, camera, quality and method.

``plain`` is the standard residual of the JPEG, ``restored`` the plain residual
after the trained model, ``original`` the residual of the uncompressed
development (upper bound). Test images of cameras seen in training form the
``seen`` subset, every non-fingerprint image of a camera held out of training
the ``holdout`` subset; the two are reported separately. A drive evaluated with a
model trained elsewhere (``model.checkpoint``) has one subset, ``new_drive``:
every image that did not build a fingerprint.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

import pandas as pd

from ..atomic import save_csv
from ..metrics import image_gains, metrics_table
from .identification import read_scores
from .roles import EVALUATED_ROLES, subset_of

SCORE_COLUMNS = ["camera", "image", "role", "subset", "quality", "method", "fingerprint", "pce", "ncc", "match"]


def evaluation_scores(spn_scores: pd.DataFrame, restored: pd.DataFrame, qualities: Iterable[int]) -> pd.DataFrame:
    """Plain and original rows of the evaluated images from the SPN stage's scores, plus the restored rows.

    The ``original`` score does not depend on the JPEG quality; it is repeated for
    every quality so each quality has its three methods side by side.
    """
    evaluated = spn_scores[spn_scores["role"].isin(EVALUATED_ROLES)].assign(
        subset=lambda f: f["role"].map(subset_of))
    plain = evaluated[evaluated["quality"] != "original"].assign(method="plain")
    original = evaluated[evaluated["quality"] == "original"]
    originals = pd.concat([original.assign(quality=str(q), method="original") for q in qualities], ignore_index=True)
    frames = [plain, originals, restored.assign(quality=restored["quality"].astype(str))]
    scores = pd.concat(frames, ignore_index=True)[SCORE_COLUMNS]
    scores["quality"] = scores["quality"].astype(int)
    return scores.sort_values(["subset", "camera", "image", "quality", "method", "fingerprint"]).reset_index(drop=True)


def write_evaluation(
    restored_tables: Iterable[str | os.PathLike],
    spn_scores: str | os.PathLike,
    qualities: Iterable[int],
    threshold: float,
    scores_out: str | os.PathLike,
    metrics_out: str | os.PathLike,
    gains_out: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``scores.csv`` (every score of the three methods), ``metrics.csv`` (per subset, camera,
    quality and method, with ``camera == 'all'`` rows over all cameras of a subset) and ``gains.csv`` (per
    image and quality: match PCE plain and restored, their ratio, whether the restoration lowered it)."""
    frames = [f for f in map(read_scores, restored_tables) if len(f)]
    restored = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    scores = evaluation_scores(read_scores(spn_scores), restored, qualities)
    if scores.empty:
        log("no image was evaluated: no camera has test or holdout images with a fingerprint; the tables are "
            "empty (add images, lower spn.fingerprint_images, or evaluate a trained model on every image: "
            "model.checkpoint)")
    metrics = metrics_table(scores, ["subset", "camera", "quality", "method"], threshold)
    metrics = metrics.sort_values(["subset", "quality", "method", "camera"], ascending=[False, False, True, True])
    save_csv(scores_out, scores)
    save_csv(metrics_out, metrics)
    if gains_out is not None:
        save_csv(gains_out, image_gains(scores))
    return scores, metrics
