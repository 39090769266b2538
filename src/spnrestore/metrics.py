"""The field's measures of identification from tables of scores, per group (camera, quality, method...).

A scores table has one row per (tested residual, fingerprint camera) with at
least the columns camera (true camera), image, fingerprint, pce, ncc, match.
PCE-based figures come first (match PCE, the rate of true matches above the
decision threshold and at zero false matches), ROC measures alongside.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .spn import decide, equal_error_rate, roc_auc, tpr_at_fpr

METRIC_COLUMNS = ["n_images", "accuracy", "auc", "eer", "threshold", "tpr_at_threshold", "fpr_at_threshold", "tpr_at_fpr0",
                  "median_pce_match", "median_pce_nonmatch", "max_pce_nonmatch", "p95_pce_nonmatch", "mean_ncc_match"]


def group_metrics(scores: pd.DataFrame, threshold: float, keys: Sequence[str] = ("camera", "image")) -> dict:
    """The METRIC_COLUMNS figures of one group of scores (all its match and non-match pairs)."""
    match = scores["match"].astype(bool).to_numpy()
    pce = scores["pce"].to_numpy(dtype=float)
    hit, miss = pce[match], pce[~match]
    both = match.any() and (~match).any()
    return {
        "n_images": int(scores[list(keys)].drop_duplicates().shape[0]),
        "accuracy": float(decide(scores, threshold, keys)["correct"].mean()) if len(scores) else np.nan,
        "auc": roc_auc(pce, match) if both else np.nan,
        "eer": equal_error_rate(pce, match) if both else np.nan,
        "threshold": float(threshold),
        "tpr_at_threshold": float((hit > threshold).mean()) if hit.size else np.nan,
        "fpr_at_threshold": float((miss > threshold).mean()) if miss.size else np.nan,
        "tpr_at_fpr0": tpr_at_fpr(pce, match, 0.0) if both else np.nan,
        "median_pce_match": float(np.median(hit)) if hit.size else np.nan,
        "median_pce_nonmatch": float(np.median(miss)) if miss.size else np.nan,
        "max_pce_nonmatch": float(miss.max()) if miss.size else np.nan,
        "p95_pce_nonmatch": float(np.percentile(miss, 95)) if miss.size else np.nan,
        "mean_ncc_match": float(scores.loc[match, "ncc"].mean()) if hit.size else np.nan,
    }


def metrics_table(scores: pd.DataFrame, by: Sequence[str], threshold: float,
                  keys: Sequence[str] = ("camera", "image")) -> pd.DataFrame:
    """METRIC_COLUMNS for every group of ``by``, plus the same over all cameras (camera = ``all``).

    ``by`` must include ``camera``; the per-camera rows score that camera's images
    against every fingerprint, the ``all`` rows every image.
    """
    others = [c for c in by if c != "camera"]
    rows = []
    for name, group in scores.groupby(list(by), sort=True):
        rows.append({**dict(zip(by, name)), **group_metrics(group, threshold, keys)})
    for name, group in (scores.groupby(others, sort=True) if others else [((), scores)]):
        name = name if isinstance(name, tuple) else (name,)
        rows.append({**dict(zip(others, name)), "camera": "all", **group_metrics(group, threshold, keys)})
    return pd.DataFrame(rows, columns=[*by, *METRIC_COLUMNS])


GAIN_FLOOR = 1.0
"""PCE below this is no evidence either way: both match PCEs are floored here before their ratio is taken, so that
an image with no evidence before and after counts as unchanged (gain 1) rather than as a ratio of noise."""
GAIN_COLUMNS = ["subset", "camera", "image", "quality", "method", "pce_plain", "pce_method", "gain", "lowered"]


def gain_and_lowered(pce, pce_plain, rtol: float = 1e-4):
    """A method's match PCE against plain's: ``gain`` (both floored at :data:`GAIN_FLOOR`) and ``lowered``
    (below plain's by more than ``rtol`` relative: float noise of an identity restoration is not harm)."""
    gain = np.maximum(pce, GAIN_FLOOR) / np.maximum(pce_plain, GAIN_FLOOR)
    return gain, pce < pce_plain - rtol * abs(pce_plain)


def image_gains(scores: pd.DataFrame, rtol: float = 1e-4, baseline: str | None = None) -> pd.DataFrame:
    """Per image, quality and method other than the ``baseline`` (plain; subset too where the table has one),
    the match PCE of the baseline and of the method and their ratio ``gain`` (both floored at
    :data:`GAIN_FLOOR`); ``lowered``: the method's match PCE is below the baseline's by more than ``rtol``
    relative (float noise of an identity restoration is not harm)."""
    from .methods import PLAIN_NAME, method_order

    baseline = baseline or PLAIN_NAME
    match = scores[scores["match"].astype(bool)]
    keys = [k for k in ("subset", "camera", "image", "quality") if k in match.columns]
    columns = [c for c in GAIN_COLUMNS if c != "subset" or c in keys]
    base = match[match["method"] == baseline][keys + ["pce"]].rename(columns={"pce": "pce_plain"})
    other = match[match["method"] != baseline][keys + ["method", "pce"]].rename(columns={"pce": "pce_method"})
    wide = other.merge(base, on=keys, how="inner")
    if wide.empty:
        return pd.DataFrame(columns=columns)
    wide = wide.drop_duplicates(keys + ["method"])
    wide["gain"], wide["lowered"] = gain_and_lowered(wide["pce_method"], wide["pce_plain"], rtol)
    order = {m: i for i, m in enumerate(method_order(wide["method"].unique()))}
    wide = wide.assign(_m=wide["method"].map(order)).sort_values([*keys[:-1], "quality", "_m"] if "quality" in keys
                                                                  else keys + ["_m"])
    return wide[columns].reset_index(drop=True)


def gain_summary(gains: pd.DataFrame) -> pd.DataFrame:
    """Per subset, quality and method: images, median gain over plain, share of images lowered, the worst
    gain, and the lowest median gain of any camera (with that camera)."""
    rows = []
    keys = [k for k in ("subset", "quality", "method") if k in gains.columns]
    for name, g in gains.groupby(keys, sort=False):
        per_camera = g.groupby("camera")["gain"].median()
        rows.append({**dict(zip(keys, name if isinstance(name, tuple) else (name,))), "n_images": len(g),
                     "median_gain": float(g["gain"].median()), "share_lowered": float(g["lowered"].mean()),
                     "worst_gain": float(g["gain"].min()), "worst_camera_median_gain": float(per_camera.min()),
                     "worst_camera": str(per_camera.idxmin())})
    return pd.DataFrame(rows)
