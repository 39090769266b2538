"""The torch scoring path (issue 16) equals ``score_residual`` (run on torch CPU here, small images).

Tolerance on every pair: ``|torch - numpy| <= 1e-5 * max(|numpy|, 60)`` for the PCE (relative 1e-5 for the
matches, PCE in the hundreds and thousands; for non-matches near 0, 1e-5 of the decision threshold 60), and
1e-6 for the NCC. Both paths compute the same statistic from float32 FFTs of the same terms, float64 sums.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spnrestore.errors import BadImageError, SpnRestoreError  # noqa: E402
from spnrestore.spn import score_residual  # noqa: E402
from spnrestore.spn.torch_scoring import TorchScorer  # noqa: E402
from test_spn_scoring import prnu_case as spn_case  # noqa: E402

RTOL = 1e-5
NCC_TOL = 1e-6


def prnu_case(h, w, strengths=(4.0, 25.0), n_other=3, seed=0):
    """A weak and a strong match by default (see tests/test_spn_scoring.py)."""
    return spn_case(h, w, strengths, n_other, seed)


def assert_same_rows(rows, expected, with_ncc=True):
    assert [r["fingerprint"] for r in rows] == [r["fingerprint"] for r in expected]
    for r, e in zip(rows, expected):
        assert abs(r["pce"] - e["pce"]) <= RTOL * max(abs(e["pce"]), 60.0), (r, e)
        if with_ncc:
            assert abs(r["ncc"] - e["ncc"]) <= NCC_TOL, (r, e)
        else:
            assert np.isnan(r["ncc"]) and np.isnan(e["ncc"])


@pytest.mark.parametrize("shape", [(256, 384), (203, 317)])
def test_equals_numpy_path(shape, caplog):
    """Even and odd sizes; a weak and a strong match, non-matches near 0, a fingerprint of another size
    (logged as the numpy path logs it, left out)."""
    residual, image, fps = prnu_case(*shape, seed=sum(shape))
    fps["other size"] = np.ones((130, 140), np.float32)
    caplog.set_level(logging.INFO, logger="spnrestore")
    expected = score_residual(residual, image, fps, name="a.jpg")
    expected_log = list(caplog.messages)
    caplog.clear()
    rows = TorchScorer(fps, "cpu").score(residual, image, name="a.jpg")
    log = caplog.messages
    assert_same_rows(rows, expected)
    assert log == expected_log and len(log) == 1 and "'other size'" in log[0]
    pces = [r["pce"] for r in rows]
    assert 60 < pces[0] < 1000 and pces[1] > 1000 and max(abs(p) for p in pces[2:]) < 30


def test_turned_shot_mixed_sizes_no_ncc_and_tensors():
    """A shot turned by the camera (the transpose of the sensor's size): both quarter turns, the higher PCE;
    a fingerprint of the shot's own size alongside; without NCC; tensor and gray inputs."""
    residual, image, fps = prnu_case(160, 224, strengths=(20.0,), n_other=2, seed=4)
    w = np.ascontiguousarray(np.rot90(residual, -1))
    img = np.ascontiguousarray(np.rot90(image, -1))
    fps["own size"] = np.random.default_rng(8).normal(0, 0.02, w.shape).astype(np.float32)
    scorer = TorchScorer(fps, "cpu")
    for with_ncc in (True, False):
        expected = score_residual(w, img, fps, with_ncc=with_ncc)
        rows = scorer.score(w, img, with_ncc=with_ncc)
        assert_same_rows(rows, expected, with_ncc)
        assert rows[0]["pce"] > 1000
    rows = scorer.score(torch.from_numpy(w), torch.from_numpy(img))
    assert_same_rows(rows, score_residual(w, img, fps))
    gray = img[:, :, 1].astype(np.float32)
    kept = gray.copy(), w.copy()
    assert_same_rows(scorer.score(np.rot90(residual, -1), gray), score_residual(w, gray, fps))
    assert_same_rows(scorer.score(w, gray), score_residual(w, gray, fps))
    np.testing.assert_array_equal(gray, kept[0])  # the inputs are not changed
    np.testing.assert_array_equal(w, kept[1])


def test_batch_equals_single(caplog):
    """Several residuals of one size in one call: the same rows as one by one, whatever the batch size
    (the memory bound forces one residual per group and a few pairs per FFT, or all in one)."""
    cases = [prnu_case(128, 192, strengths=(s,), n_other=3, seed=s) for s in (3, 5, 30)]
    fps = cases[0][2]
    residuals = [c[0] for c in cases]
    images = [c[1] for c in cases]
    fps["cam0"] = cases[1][2]["cam0"]  # the second residual's match
    fps["portrait"] = np.ascontiguousarray(fps["cam3"].T)  # scored in both quarter turns: two sizes of FFT
    caplog.set_level(logging.INFO, logger="spnrestore")
    single = TorchScorer(fps, "cpu")
    one_by_one = [single.score(r, i, name=f"r{n}") for n, (r, i) in enumerate(zip(residuals, images))]
    px = 128 * 192
    for max_memory in (None, 50 * px, 300 * px):  # all together; 1 residual and 1 pair; 1 residual, 5 pairs
        scorer = TorchScorer(fps, "cpu", max_memory=max_memory)
        caplog.clear()
        table = scorer.score_batch(np.stack(residuals), np.stack(images), names=["r0", "r1", "r2"])
        assert caplog.messages == []
        for rows, ref in zip(table, one_by_one):
            assert [r["fingerprint"] for r in rows] == [r["fingerprint"] for r in ref]
            for r, e in zip(rows, ref):
                assert r["pce"] == pytest.approx(e["pce"], rel=1e-9, abs=1e-9)
                assert r["ncc"] == pytest.approx(e["ncc"], rel=1e-12, abs=1e-12)
        for n, rows in enumerate(table):
            assert_same_rows(rows, score_residual(residuals[n], images[n], fps))
    assert table[1][0]["pce"] > 60 and table[0][0]["pce"] < 60
    assert scorer.score_batch([], []) == []


def test_a_full_device_splits_batches_then_falls_back_to_numpy(monkeypatch, caplog):
    """A GPU shared with other jobs can run out of memory between the budget and the batch: the batch is
    split in halves until it fits, and a residual whose single pairs do not fit is scored by numpy; the rows
    are those of ``score_residual`` either way (out-of-memory simulated on torch CPU)."""
    residual, image, fps = prnu_case(96, 128, n_other=4, seed=2)
    fps["portrait"] = np.ascontiguousarray(fps["cam3"].T)
    caplog.set_level(logging.INFO, logger="spnrestore")
    expected = score_residual(residual, image, fps)
    parts = TorchScorer._parts

    def fits(most):
        def limited(self, views, pairs, with_ncc):
            if len(pairs) > most:
                raise torch.OutOfMemoryError("simulated: CUDA out of memory")
            return parts(self, views, pairs, with_ncc)
        return limited

    monkeypatch.setattr(TorchScorer, "_parts", fits(2))
    caplog.clear()
    scorer = TorchScorer(fps, "cpu")
    assert_same_rows(scorer.score(residual, image, "r"), expected)
    assert scorer.batch_splits >= 2 and scorer.cpu_fallbacks == 0 and caplog.messages == []
    monkeypatch.setattr(TorchScorer, "_parts", fits(0))
    scorer = TorchScorer(fps, "cpu")
    table = scorer.score_batch([residual, residual], [image, image], ["a.jpg", "b.jpg"], with_ncc=False)
    log = list(caplog.messages)
    for rows in table:
        assert_same_rows(rows, score_residual(residual, image, fps, with_ncc=False), with_ncc=False)
    assert scorer.cpu_fallbacks == 2 and log == [f"{n}: the cpu had no memory left for it (shared with other "
                                                 "jobs?); scored on the CPU" for n in ("a.jpg", "b.jpg")]


def test_errors_name_the_input():
    residual, image, fps = prnu_case(130, 150, strengths=(1.0,), n_other=1, seed=7)
    bad = fps["cam0"].copy()
    bad[5, 7] = np.nan
    with pytest.raises(SpnRestoreError, match="fingerprint 'bad': contains NaN"):
        TorchScorer({"bad": bad}, "cpu")
    with pytest.raises(SpnRestoreError, match="fingerprint 'flat': expected a 2-D"):
        TorchScorer({"flat": bad.ravel()}, "cpu")
    scorer = TorchScorer(fps, "cpu")
    w = residual.copy()
    w[0, 0] = np.inf
    with pytest.raises(SpnRestoreError, match="x.jpg: the residual contains NaN"):
        scorer.score(w, image, name="x.jpg")
    with pytest.raises(SpnRestoreError, match="x.jpg: image is 130x149 px but residual is 130x150"):
        scorer.score(residual, image[:, :149], name="x.jpg")
    with pytest.raises(BadImageError, match="x.jpg"):
        scorer.score(residual, image[..., None], name="x.jpg")
    with pytest.raises(SpnRestoreError, match="cross-correlation is zero"):
        scorer.score(np.zeros_like(residual), image)
    with pytest.raises(SpnRestoreError, match="one size per call"):
        scorer.score_batch([residual, residual[:, :140]], [image, image[:, :140]])
    assert scorer.score(residual[:, :140], image[:, :140]) == []  # no fingerprint of its size


def test_the_stages_score_on_the_gpu_only_where_one_is_present(monkeypatch, tmp_path, caplog):
    """``stages.scorer.fingerprint_scorer``: the numpy path without an NVIDIA driver (torch not even asked); the
    torch path where the driver is loaded and CUDA is available (played here by torch CPU), same rows."""
    import spnrestore.spn.torch_scoring as torch_scoring
    from spnrestore.stages import scorer as stage

    residual, image, fps = prnu_case(256, 384, seed=7)
    expected = score_residual(residual, image, fps, "r")
    monkeypatch.setattr(stage, "NVIDIA_DEVICE_FILES", (str(tmp_path / "none"),))
    monkeypatch.setattr(torch_scoring, "torch_device_available", lambda: pytest.fail("torch was asked"))
    assert stage.fingerprint_scorer(fps)(residual, image, "r") == expected
    (tmp_path / "nvidiactl").touch()
    monkeypatch.setattr(stage, "NVIDIA_DEVICE_FILES", (str(tmp_path / "nvidiactl"),))
    monkeypatch.setattr(torch_scoring, "torch_device_available", lambda: True)
    built = []
    monkeypatch.setattr(torch_scoring, "TorchScorer",
                        lambda prints, device: built.append(device) or TorchScorer(prints, "cpu"))
    caplog.set_level(logging.INFO, logger="spnrestore")
    assert_same_rows(stage.fingerprint_scorer(fps)(residual, image, "r"), expected)
    assert built == ["cuda"] and caplog.messages == ["scoring on the GPU (torch FFT)"]
