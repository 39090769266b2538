"""Scoring a residual against camera fingerprints, and the identification decision: the one path that the
score rule, the evaluation, the image validation of training, the figures and ``spnrestore identify`` take.

:func:`score_residual` gives the PCE (and NCC) of a residual against the fingerprint term ``K * I`` of
every camera of the image's size; an image turned by the camera without an orientation tag (its size is
the transpose of the fingerprint's) is scored against both quarter turns and keeps the higher PCE.
:func:`decide` turns a table of such scores into decisions: the highest-PCE camera when its PCE is above
the threshold, else ``unknown``.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from spnrestore.errors import SpnRestoreError

from .detection import ncc, pce
from .fingerprint import fingerprint_term

__all__ = ["UNKNOWN", "score_residual", "score_pair", "decide"]

UNKNOWN = "unknown"


def score_residual(
    residual: np.ndarray,
    image: np.ndarray,
    fingerprints: Mapping[str, np.ndarray],
    name: str = "residual",
    log: Callable[[str], None] | None = print,
    with_ncc: bool = True,
) -> list[dict]:
    """Rows ``{fingerprint, pce, ncc}`` of ``residual`` against each fingerprint's term ``K * I(image)``.

    ``image`` is the tested image (uint8 RGB or gray) whose residual is ``residual``. A residual of the
    transposed size (an image turned by the camera without an orientation tag) is turned a quarter turn
    each way and the higher PCE is kept: the direction is unknown, which doubles the chances of a chance
    non-match peak for those images only. A fingerprint of another size is not scored; the mismatch is
    logged with the file ``name``. ``with_ncc=False`` leaves ``ncc`` out (NaN) for callers that rank by PCE
    alone.
    """
    rows = []
    for camera, k in fingerprints.items():
        if k.shape not in (residual.shape, residual.shape[::-1]):
            if log is not None:
                log(f"not scored: {name} is {residual.shape[1]}x{residual.shape[0]}, the fingerprint of {camera!r} "
                    f"is {k.shape[1]}x{k.shape[0]} (crop or rotate the image to the sensor size)")
            continue
        value, correlation, _ = score_pair(residual, image, k, with_ncc)
        rows.append({"fingerprint": camera, "pce": value, "ncc": correlation})
    return rows


def score_pair(residual: np.ndarray, image: np.ndarray, k: np.ndarray, with_ncc: bool = True) -> tuple[float, float, int]:
    """(PCE, NCC, quarter turn) of ``residual`` against the term ``K * I(image)`` of one fingerprint ``k`` of
    the residual's size or of its transpose; for the transpose, the turn (1 or -1, of ``np.rot90``) of the
    residual and image with the higher PCE. NCC is NaN when ``with_ncc`` is False."""
    turns = (0,) if k.shape == residual.shape else (1, -1)
    best = None
    for turn in turns:
        w, term = np.rot90(residual, turn), fingerprint_term(k, np.rot90(image, turn))
        value = float(pce(w, term))
        if best is None or value > best[0]:
            best = (value, float(ncc(w, term)) if with_ncc else float("nan"), turn)
    return best


def decide(scores, threshold: float, keys: Sequence[str] = ("camera", "image")):
    """Per tested residual (the rows sharing ``keys``): the decision of source-camera identification.

    ``scores``: a DataFrame (or rows) with columns ``keys``, ``fingerprint`` and ``pce``. Returns one row per
    tested residual, in order of first appearance, with ``keys``, ``best`` (the highest-PCE fingerprint),
    ``best_pce``, ``decision`` (``best`` when ``best_pce > threshold``, else ``unknown``) and, when the
    table has a ``camera`` column (the true camera), ``correct``. An empty table gives an empty result; a
    missing column or a non-finite PCE is an error.
    """
    import pandas as pd

    frame = pd.DataFrame(scores)
    keys = list(keys)
    missing = [c for c in (*keys, "fingerprint", "pce") if c not in frame.columns]
    if missing and len(frame):
        raise SpnRestoreError(f"scores table: no column {missing[0]!r} (columns: {list(frame.columns)})")
    columns = [*keys, "best", "best_pce", "decision", *(["correct"] if "camera" in frame.columns else [])]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    values = pd.to_numeric(frame["pce"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise SpnRestoreError("scores table: a PCE is missing, not a number or infinite; recompute the scores")
    best = frame.loc[frame.assign(pce=values).groupby(keys, sort=False)["pce"].idxmax()]
    accepted = best["pce"].to_numpy(dtype=float) > threshold
    out = best[keys].assign(best=best["fingerprint"].to_numpy(), best_pce=best["pce"].to_numpy(dtype=float),
                            decision=np.where(accepted, best["fingerprint"].astype(object).to_numpy(), UNKNOWN))
    if "camera" in frame.columns:
        out["correct"] = out["decision"].to_numpy() == best["camera"].to_numpy()
    return out[columns].reset_index(drop=True)
