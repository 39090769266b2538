"""ROC metrics on hand-computed cases."""

import numpy as np
import pandas as pd
import pytest

from spnrestore.errors import SpnRestoreError
from spnrestore.spn import (
    equal_error_rate,
    decide,
    rates_at_threshold,
    roc_auc,
    roc_curve,
    tpr_at_fpr,
)

# matches: 90, 70, 50, 30 ; non-matches: 80, 40, 20, 10
SCORES = [90, 80, 70, 50, 40, 30, 20, 10]
MATCH = [1, 0, 1, 1, 0, 1, 0, 0]


def test_roc_curve_points():
    fpr, tpr, thr = roc_curve(SCORES, MATCH)
    np.testing.assert_allclose(thr, [np.inf, 90, 80, 70, 50, 40, 30, 20, 10])
    np.testing.assert_allclose(tpr, [0, 0.25, 0.25, 0.5, 0.75, 0.75, 1, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.25, 0.25, 0.25, 0.5, 0.5, 0.75, 1])


def test_auc_mann_whitney_with_ties():
    # pairs (match > nonmatch): 90 beats 4, 70 beats 3, 50 beats 3, 30 beats 2 -> 12 of 16
    assert roc_auc(SCORES, MATCH) == pytest.approx(12 / 16)
    # a tie counts 1/2
    assert roc_auc([1.0, 1.0], [True, False]) == pytest.approx(0.5)
    assert roc_auc([2.0, 1.0, 1.0, 0.0], [1, 1, 0, 0]) == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    assert roc_auc(pd.Series(SCORES), pd.Series(MATCH).astype(bool)) == pytest.approx(12 / 16)


def test_eer():
    # fnr = 1 - tpr; crossing between points (0.25, fnr .25) at index 4 -> fpr = fnr = 0.25
    assert equal_error_rate(SCORES, MATCH) == pytest.approx(0.25)
    assert equal_error_rate([3, 2, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.0)
    # interpolated: one match below one non-match of two each
    assert equal_error_rate([4, 3, 2, 1], [1, 0, 1, 0]) == pytest.approx(0.5)


def test_tpr_at_fpr():
    assert tpr_at_fpr(SCORES, MATCH, 0.0) == pytest.approx(0.25)  # only 90 > max non-match 80
    assert tpr_at_fpr(SCORES, MATCH, 0.25) == pytest.approx(0.75)
    assert tpr_at_fpr(SCORES, MATCH, 0.5) == pytest.approx(1.0)
    assert tpr_at_fpr([5, 5, 1], [1, 0, 0], 0.0) == pytest.approx(0.0)  # a tie with a non-match is not above it


def test_rates_at_threshold():
    assert rates_at_threshold(SCORES, MATCH, 60) == (pytest.approx(0.5), pytest.approx(0.25))
    assert rates_at_threshold([60, 61], [1, 1], 60)[0] == pytest.approx(0.5)  # strictly above


def test_decide():
    table = pd.DataFrame(
        {
            "image": ["a", "a", "b", "b", "c", "c"],
            "fingerprint": ["X", "Y", "X", "Y", "X", "Y"],
            "pce": [500.0, 3.0, 12.0, 59.0, -4.0, 61.0],
        }
    )
    out = decide(table, 60, keys=["image"])
    assert list(out["image"]) == ["a", "b", "c"]
    assert list(out["decision"]) == ["X", "unknown", "Y"]
    assert list(out["best"]) == ["X", "Y", "Y"] and "correct" not in out
    assert decide(table.iloc[:0], 60, keys=["image"]).empty  # nothing scored: no decision, no error


def test_bad_inputs():
    with pytest.raises(SpnRestoreError, match="NaN"):
        roc_auc([1.0, np.nan], [1, 0])
    with pytest.raises(SpnRestoreError, match="both"):
        roc_auc([1.0, 2.0], [1, 1])
    with pytest.raises(SpnRestoreError, match="lengths"):
        roc_curve([1.0, 2.0], [1])
    with pytest.raises(SpnRestoreError, match="column"):
        decide(pd.DataFrame({"image": ["a"], "pce": [1.0]}), 60, keys=["image"])
    with pytest.raises(SpnRestoreError, match="missing|non-numeric"):
        decide(pd.DataFrame({"image": ["a"], "fingerprint": ["X"], "pce": [np.nan]}), 60, keys=["image"])


def _former_roc_curve(s, m):
    """The hand-written ROC this project used before scikit-learn's (kept here as the reference)."""
    order = np.argsort(-s, kind="mergesort")
    s, m = s[order], m[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(m)[distinct]
    fp = (distinct + 1) - tp
    return np.r_[0.0, fp / (~m).sum()], np.r_[0.0, tp / m.sum()], np.r_[np.inf, s[distinct]]


def _former_auc(s, m):
    from scipy.stats import rankdata

    ranks = rankdata(s)
    npos, nneg = int(m.sum()), int((~m).sum())
    return (ranks[m].sum() - npos * (npos + 1) / 2.0) / (npos * nneg)


def test_scikit_learn_gives_the_former_figures():
    """roc_curve and roc_auc (scikit-learn's) equal the former hand-written ones, ties and PCE-like scales
    included, so every table and figure is unchanged."""
    rng = np.random.default_rng(0)
    for n, rounding in ((50, 0), (400, 1), (2000, 2)):
        m = rng.random(n) < 0.2
        s = np.round(np.where(m, rng.lognormal(4, 1.5, n), rng.normal(0, 3, n)), rounding)
        for got, want in zip(roc_curve(s, m), _former_roc_curve(s, m)):
            np.testing.assert_array_equal(got, want)
        assert roc_auc(s, m) == pytest.approx(_former_auc(s, m), rel=1e-12, abs=1e-15)
