"""NCC and PCE against direct definitions."""

import numpy as np
import pytest

import spn_reference as ref
from spnrestore.errors import SpnRestoreError
from spnrestore.spn import correlation_peak, crosscorr, ncc, pce


def _pair(shape=(160, 200), alpha=0.3, seed=0):
    rng = np.random.default_rng(seed)
    term = rng.normal(size=shape).astype(np.float32)
    res = (alpha * term + rng.normal(size=shape)).astype(np.float32)
    return res, term


def test_ncc_matches_pearson():
    a, b = _pair()
    assert ncc(a, b) == pytest.approx(ref.ncc(a, b), abs=1e-9)
    assert ncc(a, a) == pytest.approx(1.0, abs=1e-9)
    assert ncc(a, -a + 3) == pytest.approx(-1.0, abs=1e-9)


def test_crosscorr_definition():
    a, b = _pair((130, 141))
    c = crosscorr(a, b)
    np.testing.assert_allclose(c, ref.crosscorr(a, b), atol=1e-3)
    a0, b0 = a - a.mean(), b - b.mean()
    assert c[0, 0] == pytest.approx(float((a0.astype(np.float64) * b0).sum()), rel=1e-4)
    assert c[2, 3] == pytest.approx(float((np.roll(a0, (-2, -3), (0, 1)).astype(np.float64) * b0).sum()), rel=1e-4)


def test_planted_peak_and_unrelated():
    res, term = _pair(alpha=0.3)
    p = pce(res, term)
    expect, _ = ref.pce(res, term)
    assert p == pytest.approx(expect, rel=1e-4)
    assert p > 1000  # >> 60
    rng = np.random.default_rng(9)
    unrelated = rng.normal(size=term.shape).astype(np.float32)
    q = pce(unrelated, term)
    assert q == pytest.approx(ref.pce(unrelated, term)[0], rel=1e-3, abs=1e-3)
    assert abs(q) < 20
    # signed: an anti-correlated residual gives a large negative PCE
    assert pce(-res, term) == pytest.approx(-p, rel=1e-5)


def test_search_shifts_finds_circular_shift():
    res, term = _pair(alpha=0.3, seed=2)
    shifted = np.roll(res, (7, -12), axis=(0, 1))
    assert abs(pce(shifted, term)) < 60
    r = correlation_peak(shifted, term, search_shifts=True)
    assert r.shift == (7, -12)
    assert r.pce == pytest.approx(ref.pce(shifted, term, search=True)[0], rel=1e-4)
    assert r.pce > 1000


def test_neighbourhood_wraps_around_corner():
    """The 11x11 exclusion at zero shift is circular (covers the last rows/columns too)."""
    rng = np.random.default_rng(3)
    term = rng.normal(size=(140, 150)).astype(np.float32)
    res = term + np.roll(term, (-2, -3), (0, 1)) + rng.normal(size=term.shape).astype(np.float32)
    r = correlation_peak(res, term)
    assert r.pce == pytest.approx(ref.pce(res, term)[0], rel=1e-4)
    # the secondary peak at shift (-2,-3) is inside the wrapped neighbourhood: excluded from the energy
    assert r.energy < float(np.mean(crosscorr(res, term).astype(np.float64) ** 2))


def test_bad_inputs():
    a, b = _pair()
    with pytest.raises(SpnRestoreError, match="crop"):
        pce(a, b[:150])
    with pytest.raises(SpnRestoreError, match="transposed|rotate|sensor orientation"):
        ncc(a, np.ascontiguousarray(b.T))
    bad = a.copy()
    bad[3, 4] = np.nan
    with pytest.raises(SpnRestoreError, match="NaN"):
        pce(bad, b)
    with pytest.raises(SpnRestoreError, match="NaN"):
        ncc(a, np.where(b > 3, np.inf, b))
    with pytest.raises(SpnRestoreError, match="constant"):
        ncc(np.zeros_like(a), b)
    with pytest.raises(SpnRestoreError):
        pce(np.zeros_like(a), b)
