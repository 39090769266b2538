"""Rule ``evaluation``: every method's residual of the held-out images scored against every fingerprint,
and the metrics per subset, camera, quality and method.

The methods are those of ``evaluation.methods`` (:mod:`spnrestore.methods`): ``plain`` (the standard
residual, scored by the rule ``score``), the methods computed by the rule ``restore`` (classic enhancers,
restoration models), ``calibrated`` (per fingerprint and quality, the rows of the method that fingerprint's
calibration chose) and ``original`` (the uncompressed development, upper bound, scored by ``develop``).
Test images of cameras seen in training form the ``seen`` subset, every non-fingerprint image of a camera
held out of training the ``holdout`` subset; the two are reported separately. A drive evaluated with a model
trained elsewhere (``model.checkpoint``), or with no model, has one subset, ``new_drive``: every image that
did not build a fingerprint.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Mapping

import pandas as pd

from ..atomic import save_csv
from ..methods import CALIBRATED_NAME, ORIGINAL_NAME, PLAIN_NAME, method_order
from ..methods.calibration import chosen_method, load_calibration
from ..metrics import image_gains, metrics_table
from .identification import read_scores
from .roles import EVALUATED_ROLES, subset_of

logger = logging.getLogger(__name__)

SCORE_COLUMNS = ["camera", "image", "role", "subset", "quality", "method", "fingerprint", "pce", "ncc", "match"]


def evaluation_scores(spn_scores: pd.DataFrame, computed: pd.DataFrame, qualities: Iterable[int],
                      methods: Iterable[str] | None = None,
                      calibrations: Mapping[str, Mapping | None] | None = None) -> pd.DataFrame:
    """The rows of every method of the evaluated images: plain and original from the SPN stage's scores,
    the ``computed`` methods' rows (rule restore), and ``calibrated``: for each fingerprint and quality the
    rows of the method its calibration chose (``calibrations`` by fingerprint camera; plain without one).
    ``methods``: those kept (None: all found); ``original`` is kept wherever it exists.

    The ``original`` score does not depend on the JPEG quality; it is repeated for every quality so each
    quality has its methods side by side.
    """
    evaluated = spn_scores[spn_scores["role"].isin(EVALUATED_ROLES)].assign(
        subset=lambda f: f["role"].map(subset_of))
    plain = evaluated[evaluated["quality"] != "original"].assign(method=PLAIN_NAME)
    original = evaluated[evaluated["quality"] == "original"]
    originals = pd.concat([original.assign(quality=str(q), method=ORIGINAL_NAME) for q in qualities]
                          or [pd.DataFrame(columns=SCORE_COLUMNS)], ignore_index=True)
    frames = [plain, originals, computed.assign(quality=computed["quality"].astype(str))]
    scores = pd.concat([f for f in frames if len(f)] or [pd.DataFrame(columns=SCORE_COLUMNS)],
                       ignore_index=True)[SCORE_COLUMNS]
    wanted = None if methods is None else set(methods) | {ORIGINAL_NAME}
    if wanted is None or CALIBRATED_NAME in wanted:
        scores = pd.concat([scores, calibrated_rows(scores, calibrations or {})], ignore_index=True)
    if wanted is not None:
        scores = scores[scores["method"].isin(wanted)]
    scores["quality"] = scores["quality"].astype(int)
    order = {m: i for i, m in enumerate(method_order(scores["method"].unique()))}
    scores = scores.assign(_m=scores["method"].map(order))
    return (scores.sort_values(["subset", "camera", "image", "quality", "_m", "fingerprint"])
            .drop(columns="_m").reset_index(drop=True))


def calibrated_rows(scores: pd.DataFrame, calibrations: Mapping[str, Mapping | None]) -> pd.DataFrame:
    """The rows of method ``calibrated``: per fingerprint and quality, those of the method the fingerprint's
    calibration chose at the nearest calibrated quality (plain where it has none, or where the chosen
    method was not scored)."""
    if scores.empty:
        return scores.iloc[0:0]
    keys = scores[["fingerprint", "quality"]].drop_duplicates()
    pick = {(f, str(q)): chosen_method(calibrations.get(f), q) for f, q in keys.itertuples(index=False)}
    available = set(scores["method"])
    chosen = [pick[(f, str(q))] for f, q in zip(scores["fingerprint"], scores["quality"])]
    chosen = [m if m in available else PLAIN_NAME for m in chosen]
    rows = scores[scores["method"].to_numpy() == pd.Series(chosen, index=scores.index).to_numpy()]
    return rows.assign(method=CALIBRATED_NAME)


def read_calibrations(paths: Mapping[str, str | os.PathLike]) -> dict[str, dict | None]:
    """The calibration of each camera from its ``calibration.json`` (None where there is none)."""
    return {camera: load_calibration(path) for camera, path in paths.items()}


def write_evaluation(
    restored_tables: Iterable[str | os.PathLike],
    spn_scores: str | os.PathLike,
    qualities: Iterable[int],
    threshold: float,
    scores_out: str | os.PathLike,
    metrics_out: str | os.PathLike,
    gains_out: str | os.PathLike | None = None,
    methods: Iterable[str] | None = None,
    calibrations: Mapping[str, str | os.PathLike] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``scores.csv`` (every score of every method), ``metrics.csv`` (per subset, camera, quality and
    method, with ``camera == 'all'`` rows over all cameras of a subset) and ``gains.csv`` (per image, quality
    and method: its match PCE and plain's, their ratio, whether the method lowered it). ``calibrations``: the
    ``calibration.json`` of each camera (method ``calibrated``)."""
    frames = [f for f in map(read_scores, restored_tables) if len(f)]
    computed = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=SCORE_COLUMNS)
    scores = evaluation_scores(read_scores(spn_scores), computed, qualities, methods,
                               read_calibrations(calibrations or {}))
    if scores.empty:
        logger.warning("no image was evaluated: no camera has test or holdout images with a fingerprint; the "
                       "tables are empty (add images, lower spn.fingerprint_images, or evaluate a trained model on "
                       "every image: model.checkpoint)")
    metrics = metrics_table(scores, ["subset", "camera", "quality", "method"], threshold)
    order = {m: i for i, m in enumerate(method_order(metrics["method"].unique()))}
    metrics = (metrics.assign(_m=metrics["method"].map(order))
               .sort_values(["subset", "quality", "_m", "camera"], ascending=[False, False, True, True])
               .drop(columns="_m"))
    save_csv(scores_out, scores)
    save_csv(metrics_out, metrics)
    if gains_out is not None:
        save_csv(gains_out, image_gains(scores))
    return scores, metrics
