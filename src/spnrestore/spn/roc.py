"""ROC metrics of detection scores (PCE or NCC); the identification decision is :func:`.scoring.decide`.

All functions take ``scores`` (higher = more likely the same camera) and
``is_match`` (True for a same-camera pair) as arrays, lists or pandas columns
of equal length. A pair is declared a match when ``score > threshold``.
"""

from __future__ import annotations

import numpy as np

from spnrestore.errors import SpnRestoreError

__all__ = [
    "roc_curve",
    "roc_auc",
    "equal_error_rate",
    "tpr_at_fpr",
    "rates_at_threshold",
    "PCE_THRESHOLD",
]

#: The usual PCE decision threshold for "same camera" where none is configured: the default of the
#: configuration's ``spn.pce_threshold`` (config/schema.yaml; tests/test_config.py checks that they agree).
PCE_THRESHOLD = 60.0


def _prepare(scores, is_match, need_both: bool = True):
    s = np.asarray(scores, dtype=np.float64).ravel()
    m = np.asarray(is_match)
    if m.dtype != bool:
        if not np.isin(m, [0, 1]).all():
            raise SpnRestoreError("is_match must be boolean (or 0/1)")
        m = m.astype(bool)
    m = m.ravel()
    if s.size != m.size:
        raise SpnRestoreError(f"scores ({s.size}) and is_match ({m.size}) have different lengths")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise SpnRestoreError(f"{bad} score(s) are NaN or infinite: recompute them (a failed or corrupt residual?)")
    if need_both and (m.all() or (~m).all()):
        raise SpnRestoreError(
            f"need both matching and non-matching pairs (got {int(m.sum())} matches of {m.size}) for ROC metrics"
        )
    return s, m


def roc_curve(scores, is_match):
    """ROC curve points (scikit-learn's ``roc_curve``, every distinct score kept).

    Returns ``(fpr, tpr, thresholds)``: float64 arrays, one point per distinct
    score plus the starting point (0, 0) at threshold +inf; point i is the
    operating point "match when score >= thresholds[i]", thresholds decreasing.
    """
    from sklearn.metrics import roc_curve as sk_roc_curve

    s, m = _prepare(scores, is_match)
    fpr, tpr, thr = sk_roc_curve(m, s, drop_intermediate=False)
    return fpr.astype(np.float64), tpr.astype(np.float64), thr.astype(np.float64)


def roc_auc(scores, is_match) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``): the Mann-Whitney U / (n_match *
    n_nonmatch), ties counting 1/2, the probability that a random matching pair scores higher than a random
    non-matching one (+ half the probability of a tie)."""
    from sklearn.metrics import roc_auc_score

    s, m = _prepare(scores, is_match)
    return float(roc_auc_score(m, s))


def equal_error_rate(scores, is_match) -> float:
    """Equal error rate: where the false-positive rate equals the false-negative rate (1 - TPR).

    Linear interpolation between the two ROC points around the crossing.
    """
    fpr, tpr, _ = roc_curve(scores, is_match)
    fnr = 1.0 - tpr
    d = fpr - fnr  # increasing along the curve, from -1 to +1
    i = int(np.argmax(d >= 0))
    if d[i] == 0 or i == 0:
        return float(fpr[i])
    # segment (i-1, i): fpr and fnr linear in t, solve fpr(t) = fnr(t)
    t = -d[i - 1] / (d[i] - d[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def tpr_at_fpr(scores, is_match, fpr: float = 0.0) -> float:
    """Highest true-positive rate among thresholds whose false-positive rate is <= ``fpr``.

    ``fpr=0``: the fraction of matching pairs scoring strictly above the highest
    non-matching score. No interpolation (an operating point that exists).
    """
    if not 0.0 <= fpr <= 1.0:
        raise SpnRestoreError(f"fpr must be within [0, 1], not {fpr}")
    f, t, _ = roc_curve(scores, is_match)
    return float(t[f <= fpr + 1e-12].max())


def rates_at_threshold(scores, is_match, threshold: float = PCE_THRESHOLD):
    """(TPR, FPR) of the decision ``score > threshold`` (default PCE 60).

    A rate whose class is empty is returned as NaN.
    """
    s, m = _prepare(scores, is_match, need_both=False)
    pred = s > threshold
    npos, nneg = m.sum(), (~m).sum()
    tpr = float((pred & m).sum() / npos) if npos else float("nan")
    fpr = float((pred & ~m).sum() / nneg) if nneg else float("nan")
    return tpr, fpr
