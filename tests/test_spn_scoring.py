"""Scoring a residual against many fingerprints (issue 16): the zero-shift PCE from the residual's spectrum.

The fast PCE (``pce_with_spectrum`` and ``score_residual``) is compared with today's reference,
``correlation_peak(...).pce`` (full cross-correlation plane by inverse FFT). Tolerance on every pair:
``|fast - ref| <= 1e-5 * max(|ref|, 1)``, i.e. relative 1e-5, and for a PCE near 0 (|ref| < 1, non-matches)
an absolute 1e-5 in PCE units: the PCE is ``peak**2 / energy``, so that is a tolerance on ``peak**2`` of 1e-5
of the correlation energy (a relative tolerance on a PCE near 0 would measure the float32 rounding of a peak
that is itself almost 0). The NCC must equal ``ncc`` within 1e-9.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import spn_reference as ref
from spnrestore.errors import BadImageError, SpnRestoreError
from spnrestore.spn import (correlation_peak, fingerprint_term, ncc, pce, pce_with_spectrum, residual_spectrum,
                            score_pair, score_residual)

RTOL = 1e-5
NCC_TOL = 1e-9
#: the largest |fast - ref| / max(|ref|, 1) seen in this module (printed at the end with -s)
WORST = {"pce": 0.0}


def close(fast: float, reference: float) -> bool:
    diff = abs(fast - reference) / max(abs(reference), 1.0)
    WORST["pce"] = max(WORST["pce"], diff)
    return diff <= RTOL


def reference_rows(w, image, fingerprints, with_ncc=True):
    """The straightforward loop: per fingerprint (and quarter turn of a turned shot) ``pce`` and ``ncc`` of
    ``np.rot90(w, t)`` against ``fingerprint_term(k, np.rot90(image, t))``; the turn of higher PCE."""
    rows = []
    for camera, k in fingerprints.items():
        if k.shape == w.shape:
            turns = (0,)
        elif k.shape == w.shape[::-1]:
            turns = (1, -1)
        else:
            continue
        best = None
        for t in turns:
            wt, term = np.rot90(w, t), fingerprint_term(k, np.rot90(image, t))
            value = pce(wt, term)
            if best is None or value > best[0]:
                best = (value, ncc(wt, term) if with_ncc else float("nan"), t)
        rows.append({"fingerprint": camera, "pce": best[0], "ncc": best[1], "turn": best[2]})
    return rows


def assert_same_rows(rows, expected, with_ncc=True):
    assert [r["fingerprint"] for r in rows] == [r["fingerprint"] for r in expected]
    for r, e in zip(rows, expected):
        assert close(r["pce"], e["pce"]), (r, e)
        if with_ncc:
            assert abs(r["ncc"] - e["ncc"]) <= NCC_TOL, (r, e)
        else:
            assert np.isnan(r["ncc"])


def scene(h, w, seed=0):
    """A natural-looking uint8 RGB image: smooth gradients and blobs, a few saturated pixels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 120 + 80 * np.sin(x / 37.0) * np.cos(y / 23.0) + 40 * (x / w)
    img = np.stack([base, base * 0.9 + 10, base * 0.7 + 30], axis=-1) + rng.normal(0, 3, (h, w, 3))
    img[: h // 10, : w // 10] = 255  # a saturated corner
    return np.clip(img, 0, 255).astype(np.uint8)


def prnu_case(h, w, strengths, n_other=3, seed=0):
    """A residual containing the PRNU terms ``strength * I * K`` of the first fingerprints (one per
    strength) plus noise, and ``n_other`` unrelated fingerprints (non-matches)."""
    rng = np.random.default_rng(seed)
    image = scene(h, w, seed)
    fps = {f"cam{i}": rng.normal(0, 0.02, (h, w)).astype(np.float32) for i in range(len(strengths) + n_other)}
    residual = rng.normal(0, 1.0, (h, w)).astype(np.float32)
    for i, s in enumerate(strengths):
        residual += np.float32(s) * fingerprint_term(fps[f"cam{i}"], image)
    return residual, image, fps


@pytest.mark.parametrize("shape", [(97, 131), (128, 192), (300, 257), (130, 130)])
def test_fast_pce_equals_reference_random(shape):
    """Odd and even sizes (the half-spectrum weights of an even width's last column), random pairs from
    unrelated (PCE near 0) to strongly correlated, both signs."""
    rng = np.random.default_rng(sum(shape))
    a_base = rng.normal(size=shape).astype(np.float32) + 5  # a mean: removed by the DC coefficient
    spec = residual_spectrum(a_base)
    for alpha in (0.0, 0.003, 0.01, 0.05, 0.3, -0.3, 3.0):
        b = rng.normal(size=shape).astype(np.float32)
        a = (a_base + np.float32(alpha) * b).astype(np.float32)
        s = spec if alpha == 0 else residual_spectrum(a)
        fast = pce_with_spectrum(s, b)
        reference = correlation_peak(a, b).pce
        assert close(fast, reference), (shape, alpha, fast, reference)
        # and against the float64 textbook definition (full complex FFTs)
        assert fast == pytest.approx(ref.pce(a, b)[0], rel=1e-4, abs=1e-4)


def test_fast_pce_many_terms_one_spectrum():
    """One spectrum, many terms: the spectrum is not altered by scoring."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(150, 211)).astype(np.float32)
    spec = residual_spectrum(a)
    before = spec.spectrum.copy()
    for i in range(6):
        b = (0.02 * i * a + rng.normal(size=a.shape)).astype(np.float32)
        assert close(pce_with_spectrum(spec, b), pce(a, b))
    np.testing.assert_array_equal(spec.spectrum, before)


@pytest.mark.parametrize("shape", [(12, 9), (9, 40), (20, 11)])
def test_fast_pce_small_sides(shape):
    """Sides at or below the neighbourhood (11): its shifts wrap onto each other, counted once."""
    rng = np.random.default_rng(1)
    b = rng.normal(size=shape).astype(np.float32)
    for alpha in (0.0, 0.5):
        a = (alpha * b + rng.normal(size=shape)).astype(np.float32)
        assert close(pce_with_spectrum(residual_spectrum(a), b), pce(a, b))


def test_fast_pce_other_neighbourhood_and_dtypes():
    rng = np.random.default_rng(2)
    b = rng.normal(size=(64, 90))
    a = 0.2 * b + rng.normal(size=b.shape)  # float64 inputs: converted to float32 as pce does
    for n in (1, 5, 11, 21):
        spec = residual_spectrum(a, neighborhood=n)
        assert close(pce_with_spectrum(spec, b), correlation_peak(a, b, neighborhood=n).pce)
    with pytest.raises(ValueError):
        residual_spectrum(a, neighborhood=4)


def test_prnu_weak_strong_and_non_matches():
    """Real-looking data: a scene image, fingerprint terms I * K, a weak and a strong match and non-matches."""
    residual, image, fps = prnu_case(256, 384, strengths=(4.0, 25.0), n_other=4, seed=3)
    rows = score_residual(residual, image, fps)
    expected = reference_rows(residual, image, fps)
    assert_same_rows(rows, expected)
    pces = [r["pce"] for r in expected]
    assert 60 < pces[0] < 1000  # weak match
    assert pces[1] > 5000  # strong match
    assert max(abs(p) for p in pces[2:]) < 30  # non-matches
    assert min(abs(p) for p in pces[2:]) < 1  # at least one near 0: the absolute tolerance is exercised
    # pce_with_spectrum on the terms gives the same values
    spec = residual_spectrum(residual)
    for r in rows:
        assert close(pce_with_spectrum(spec, fingerprint_term(fps[r["fingerprint"]], image)), r["pce"])


def test_turned_shots_and_mixed_sizes(caplog):
    """A turned shot (its size the transpose of the sensor's): both quarter turns, the higher PCE; a
    fingerprint of the shot's own size, one of the sensor's, one of another size (logged, not scored)."""
    residual, image, fps = prnu_case(160, 224, strengths=(20.0,), n_other=2, seed=4)
    turned_w = np.ascontiguousarray(np.rot90(residual, -1))  # camera turned, no orientation tag
    turned_img = np.ascontiguousarray(np.rot90(image, -1))
    rng = np.random.default_rng(8)
    fps["own size"] = rng.normal(0, 0.02, turned_w.shape).astype(np.float32)
    fps["other size"] = rng.normal(0, 0.02, (100, 100)).astype(np.float32)
    caplog.set_level(logging.INFO, logger="spnrestore")
    rows = score_residual(turned_w, turned_img, fps, name="shot.dng")
    expected = reference_rows(turned_w, turned_img, fps)
    assert_same_rows(rows, expected)
    assert [r["fingerprint"] for r in rows] == ["cam0", "cam1", "cam2", "own size"]
    assert len(caplog.messages) == 1 and "shot.dng" in caplog.messages[0] and "'other size'" in caplog.messages[0]
    assert rows[0]["pce"] > 1000  # the match, found in the right quarter turn
    value, correlation, turn = score_pair(turned_w, turned_img, fps["cam0"])
    assert turn == expected[0]["turn"] == 1
    assert close(value, expected[0]["pce"]) and abs(correlation - expected[0]["ncc"]) <= NCC_TOL
    # without NCC, and a non-contiguous (view) residual and float64 fingerprint
    fps64 = {c: k.astype(np.float64) for c, k in fps.items()}
    rows = score_residual(np.rot90(residual, -1), turned_img, fps64, with_ncc=False)
    assert_same_rows(rows, reference_rows(turned_w, turned_img, fps, with_ncc=False), with_ncc=False)


def test_gray_image_and_float_residual():
    residual, image, fps = prnu_case(130, 150, strengths=(10.0,), n_other=1, seed=6)
    gray = image[:, :, 1]
    rows = score_residual(residual.astype(np.float64), gray, fps)
    assert_same_rows(rows, reference_rows(residual, gray, fps))


def test_bad_inputs_raise_as_before():
    residual, image, fps = prnu_case(130, 150, strengths=(1.0,), n_other=1, seed=7)
    bad = fps["cam0"].copy()
    bad[5, 7] = np.nan
    with pytest.raises(SpnRestoreError, match="fingerprint: contains NaN"):
        score_residual(residual, image, {"bad": bad})
    bad[5, 7] = np.inf
    with pytest.raises(SpnRestoreError, match="fingerprint: contains NaN"):
        score_residual(residual, image, {"bad": bad}, with_ncc=False)
    w = residual.copy()
    w[0, 0] = np.nan
    with pytest.raises(SpnRestoreError, match="NaN"):
        score_residual(w, image, fps)
    with pytest.raises(SpnRestoreError, match="cross-correlation is zero"):
        score_residual(np.zeros_like(residual), image, fps)
    with pytest.raises(SpnRestoreError, match="cross-correlation is zero"):
        score_residual(residual, image, {"zero": np.zeros_like(fps["cam0"])})
    with pytest.raises(SpnRestoreError, match="crop"):
        score_residual(residual, image[:100], fps)
    with pytest.raises(BadImageError):
        score_residual(residual, image[:, :, :, None], fps)
    with pytest.raises(SpnRestoreError, match="crop"):
        pce_with_spectrum(residual_spectrum(residual), residual[:100])
    assert score_residual(residual, image, {}) == []


def test_worst_difference_reported():
    """Runs last in this module: the largest PCE difference seen above stays within the tolerance."""
    print(f"\nlargest |fast - reference| / max(|reference|, 1) of the PCE in test_spn_scoring: {WORST['pce']:.2e}")
    assert WORST["pce"] <= RTOL


def test_several_residuals_of_one_image_score_as_each_alone():
    """score_residuals (each fingerprint's term transformed once for every residual method) gives the rows of
    score_residual residual by residual, bit for bit, turned fingerprints included."""
    from spnrestore.spn.scoring import score_residuals

    rng = np.random.default_rng(4)
    h, w = 160, 224
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    prints = {f"c{i}": rng.normal(0, 0.01, (h, w)).astype(np.float32) for i in range(3)}
    prints["turned"] = rng.normal(0, 0.01, (w, h)).astype(np.float32)
    prints["other size"] = rng.normal(0, 0.01, (h, w + 16)).astype(np.float32)
    residuals = {m: rng.normal(0, 1, (h, w)).astype(np.float32) for m in ("a", "b", "c")}
    residuals["a"] += (prints["c0"] * image.mean(-1) / 255 * 40).astype(np.float32)
    many = score_residuals(residuals, image, prints)
    for method, residual in residuals.items():
        assert many[method] == score_residual(residual, image, prints)
    assert many["a"][0]["pce"] > 1000 and [r["fingerprint"] for r in many["b"]] == ["c0", "c1", "c2", "turned"]
    assert score_residuals({}, image, prints) == {}
