"""The registry of residual methods, leave-one-out fingerprints and the per-camera calibration rule."""

import numpy as np
import pandas as pd
import pytest

from spnrestore.config import default_config
from spnrestore.errors import SpnRestoreError
from spnrestore.methods import (CALIBRATED_NAME, MethodContext, compute_residual, get_method,
                                method_order, registered)
from spnrestore.methods.calibration import (CalibrationSet, LeaveOneOut, calibrate, choose, chosen_method, settings,
                                            select_images, usable)
from spnrestore.spn import FingerprintAccumulator
from spnrestore.spn.fingerprint import central_window, fingerprint_from_sums


def test_the_registry_holds_the_built_ins_in_table_order():
    assert list(registered()) == ["plain", "li2010", "phase", "shipped", "fused", "synthetic", "drive", "calibrated",
                                  "original"]
    assert get_method("synthetic").needs_model and get_method("synthetic").checkpoint == "synthetic"
    assert set(default_config()["evaluation"]["methods"]) <= set(registered())  # the schema's default
    assert method_order(["original", "shipped", "plain", "mine", "calibrated"]) == [
        "plain", "shipped", "calibrated", "original", "mine"]
    assert get_method("shipped").needs_model and not get_method("li2010").needs_model
    assert not get_method("original").computed and not get_method(CALIBRATED_NAME).computed
    with pytest.raises(SpnRestoreError, match="unknown; the methods are plain, li2010"):
        get_method("bm3d")


def test_a_checkpoint_by_path_is_a_model_method_named_after_it(tmp_path):
    method = get_method(f"mine={tmp_path}/restorer.pt")
    assert (method.name, method.checkpoint, method.needs_model) == ("mine", f"{tmp_path}/restorer.pt", True)
    assert get_method(f"{tmp_path}/other.pt").name == "other"
    with pytest.raises(SpnRestoreError, match="a name of its own"):
        get_method(f"plain={tmp_path}/x.pt")


def test_computed_methods_give_float32_residuals_of_the_plain_shape():
    rng = np.random.default_rng(1)
    plain = rng.normal(0, 2, (96, 128)).astype(np.float32)
    rgb = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    context = MethodContext(5.0)
    for name in ("plain", "li2010", "phase"):
        out = compute_residual(get_method(name), rgb, plain, 30, context)
        assert out.shape == plain.shape and out.dtype == np.float32
        assert np.isclose(out.std(), plain.std(), rtol=1e-3)
    assert np.array_equal(compute_residual(get_method("plain"), rgb, plain, 30, context), plain)
    with pytest.raises(SpnRestoreError, match="'drive': this drive has no model"):
        compute_residual(get_method("drive"), rgb, plain, 30, context)


def test_fused_sums_plain_and_the_model_at_unit_variance_and_runs_the_model_once(monkeypatch):
    """Two estimates of one PRNU term with independent noises: the sum correlates better with the term than
    either alone, in plain's units; where the model's residual is pure noise, plain's evidence is kept at
    1/sqrt(2) of its NCC (the model alone would lose all of it)."""
    from spnrestore.model import inference

    rng = np.random.default_rng(3)
    term = rng.normal(0, 1, (128, 128)).astype(np.float32)
    plain = (0.2 * term + rng.normal(0, 1, term.shape)).astype(np.float32)
    model_out = {"good": (0.5 * 0.2 * term + rng.normal(0, 0.5, term.shape)).astype(np.float32),
                 "blind": rng.normal(0, 3, term.shape).astype(np.float32)}
    calls = []

    def fake_restore(restorer, rgb, plain_, quality):
        calls.append(quality)
        return model_out[restorer]

    monkeypatch.setattr(inference, "restore_residual", fake_restore)
    rgb = np.zeros((128, 128, 3), np.uint8)

    def ncc(a):
        return np.corrcoef(a.ravel(), term.ravel())[0, 1]

    for kind in ("good", "blind"):
        context = MethodContext(5.0)
        context._restorers[context.checkpoint_path("shipped")] = kind
        calls.clear()
        shipped = compute_residual(get_method("shipped"), rgb, plain, 30, context)
        fused = compute_residual(get_method("fused"), rgb, plain, 30, context)
        assert calls == [30]  # the model ran once for both methods
        assert fused.dtype == np.float32 and np.isclose(fused.std(), plain.std(), rtol=1e-3)
        expected = plain / plain.std() + shipped / shipped.std()
        assert np.corrcoef(fused.ravel(), expected.ravel())[0, 1] > 0.99999
        if kind == "good":
            assert ncc(fused) > max(ncc(plain), ncc(shipped))
        else:
            assert abs(ncc(shipped)) < 0.03 and 0.6 * ncc(plain) < ncc(fused) < ncc(plain)
    compute_residual(get_method("fused"), rgb, plain.copy(), 30, context)  # another image: the model runs
    assert calls == [30, 30]


def _images(n, shape=(160, 192), seed=0):
    rng = np.random.default_rng(seed)
    k = rng.normal(0, 0.02, shape[:2])
    base = rng.integers(60, 200, (*shape, 3)).astype(np.float64)
    return [np.clip(base * (1 + k[..., None]) + rng.normal(0, 3, (*shape, 3)), 0, 255).astype(np.uint8)
            for _ in range(n)]


def test_leave_one_out_fingerprint_equals_the_fingerprint_rebuilt_without_the_image():
    images = _images(5)
    acc = FingerprintAccumulator()
    loo = LeaveOneOut(acc, [f"i{j}" for j in (0, 2, 4)], window_side=96)
    for j, img in enumerate(images):
        loo.add(f"i{j}", img, flat=False)
    cset = loo.finish("cam")
    assert cset.images == ["i0", "i2", "i4"] and cset.loo.shape == (3, 96, 96)
    y0, y1, x0, x1 = cset.window
    assert (y0, y1, x0, x1) == central_window((160, 192), 96) and y0 % 16 == 0 and x0 % 16 == 0
    for k, j in enumerate((0, 2, 4)):
        again = FingerprintAccumulator()
        for m, img in enumerate(images):
            if m != j:
                again.add(img)
        rebuilt = fingerprint_from_sums(*again.window_sums(cset.window))
        assert np.allclose(cset.loo[k], rebuilt, rtol=0, atol=1e-5 * np.abs(rebuilt).max())
        assert np.corrcoef(cset.loo[k].ravel(), rebuilt.ravel())[0, 1] > 0.999999
        assert np.array_equal(cset.pixels[k], images[j][y0:y1, x0:x1])
    # the sums of the whole image give finalize's fingerprint bit for bit
    assert np.array_equal(fingerprint_from_sums(*acc.window_sums((0, 160, 0, 192))), acc.finalize())


def test_natural_images_are_preferred_and_flat_fields_are_said(tmp_path):
    cfg = settings({"min_images": 3, "max_images": 4})
    records = [{"image": f"n{i}", "flat": False} for i in range(5)] + [{"image": f"f{i}", "flat": True} for i in range(3)]
    chosen, how = select_images(records, cfg)
    assert chosen == ["n0", "n1", "n2", "n3"] and how == "4 natural images"
    chosen, how = select_images(records[3:], cfg)
    assert chosen == ["n3", "n4", "f0", "f1"] and "2 of them flat fields" in how


def _rows(gains, plain_pce=100.0, nonmatch=(1.0, -2.0, 0.5)):
    rows = []
    for i, gain in enumerate(gains):
        rows.append({"image": f"i{i}", "quality": "original", "method": "plain", "fingerprint": "cam",
                     "pce": 400.0, "match": True})
        for method, value in (("plain", plain_pce), ("shipped", plain_pce * gain), ("li2010", plain_pce * 1.2)):
            rows.append({"image": f"i{i}", "quality": "30", "method": method, "fingerprint": "cam", "pce": value,
                         "match": True})
            for j, v in enumerate(nonmatch):
                rows.append({"image": f"i{i}", "quality": "30", "method": method, "fingerprint": f"o{j}",
                             "pce": v, "match": False})
    return rows


def test_the_rule_chooses_plain_where_a_method_lowers_images():
    cfg = settings(None)
    # shipped: 3x in median but lowers 2 of 8 images; li2010: 1.2x on every image
    result = choose(_rows([3, 3, 3, 3, 3, 3, 0.5, 0.5]), "cam", [30], cfg, 60.0, 8)
    q = result["qualities"]["30"]
    assert q["methods"]["shipped"]["share_lowered"] == 0.25 and not q["methods"]["shipped"]["eligible"]
    assert q["chosen"] == "li2010" and result["usable"] is True
    # with li2010 below min_gain too, plain
    rows = [r if r["method"] != "li2010" else {**r, "pce": r["pce"] / 1.2 * 1.05} for r in _rows([3] * 6 + [0.5] * 2)]
    assert choose(rows, "cam", [30], cfg, 60.0, 8)["qualities"]["30"]["chosen"] == "plain"
    # a method whose non-matches spread wider is never chosen
    wide = [r if r["match"] or r["method"] != "shipped" else {**r, "pce": r["pce"] * 4} for r in _rows([3] * 8)]
    fig = choose(wide, "cam", [30], cfg, 60.0, 8)["qualities"]["30"]
    assert fig["chosen"] == "li2010" and any("widens" in f for f in fig["methods"]["shipped"]["fails"])


def test_an_unusable_fingerprint_gets_plain_and_is_named():
    rows = [r if r["quality"] != "original" else {**r, "pce": 0.5} for r in _rows([3] * 8)]
    result = choose(rows, "cam", [30], settings(None), 60.0, 8)
    assert result["usable"] is False and "unusable" in result["note"]
    assert result["qualities"]["30"]["chosen"] == "plain" and not usable(result)
    few = choose(_rows([3] * 3), "cam", [30], settings(None), 60.0, 3)
    assert few["usable"] is None and "too few known images" in few["note"] and usable(few)
    assert few["qualities"]["30"]["chosen"] == "plain"


def test_a_scene_driven_fingerprint_is_unusable_and_says_why():
    scene = [{"image": f"i{i}", "quality": "scene", "method": "plain", "fingerprint": "cam", "pce": np.nan,
              "match": False, "ncc_smooth": 0.002, "ncc_textured": 0.02} for i in range(8)]
    result = choose(_rows([3] * 8) + scene, "cam", [30], settings(None), 60.0, 8)
    assert result["scene_check"] == {"ncc_smooth": 0.002, "ncc_textured": 0.02, "ratio": 0.1, "scene_driven": True}
    assert result["usable"] is False and "scene-driven" in result["note"] and not usable(result)
    assert result["qualities"]["30"]["chosen"] == "plain"
    sensor = [{**r, "ncc_smooth": 0.018} for r in scene]  # the match is as strong on the smooth half: the sensor's
    result = choose(_rows([3] * 8) + sensor, "cam", [30], settings(None), 60.0, 8)
    assert result["scene_check"]["scene_driven"] is False and result["usable"] is True


def test_the_chosen_method_is_that_of_the_nearest_calibrated_quality():
    cal = {"qualities": {"90": {"chosen": "plain"}, "60": {"chosen": "li2010"}, "30": {"chosen": "shipped"}}}
    assert [chosen_method(cal, q) for q in (95, 75, 70, 45, 40, 10)] == [
        "plain", "plain", "li2010", "li2010", "shipped", "shipped"]  # 45: a tie, the higher
    assert chosen_method(None, 30) == "plain"


def test_calibrate_scores_every_method_on_the_jpeg_copies(tmp_path):
    images = _images(6, (128, 128))
    acc = FingerprintAccumulator()
    loo = LeaveOneOut(acc, [f"i{j}" for j in range(6)], window_side=128)
    for j, img in enumerate(images):
        loo.add(f"i{j}", img)
    cset = loo.finish("cam", "6 natural images")
    cset.save(tmp_path / "set.npz")
    cset = CalibrationSet.load(tmp_path / "set.npz")
    other = np.random.default_rng(9).normal(0, 0.02, (128, 128)).astype(np.float32)
    result = calibrate(cset, [get_method(m) for m in ("plain", "li2010", "phase")], MethodContext(5.0),
                       {"cam": acc.finalize(), "other": other}, [90, 30], 60.0, {"min_images": 4})
    assert result["usable"] is True and result["original_median_pce"] > 60
    assert result["scene_check"]["ratio"] > 0.5 and not result["scene_check"]["scene_driven"]  # a sensor's match
    assert set(result["qualities"]) == {"90", "30"} and result["nonmatch_cameras"] == ["other"]
    for q in result["qualities"].values():
        assert set(q["methods"]) == {"plain", "li2010", "phase"} and q["chosen"] in q["methods"]
        assert q["methods"]["plain"]["n_images"] == 6 and q["methods"]["plain"]["n_nonmatch"] == 6


def test_a_method_is_one_module_of_the_package(tmp_path):
    """A module dropped into spnrestore/methods registers its method: it comes after the built-ins."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import spnrestore.methods

    package = Path(spnrestore.methods.__file__).parent
    copy = tmp_path / "spnrestore"
    shutil.copytree(package.parent, copy, ignore=shutil.ignore_patterns("__pycache__", "*.pt"))
    (copy / "methods" / "mine.py").write_text(
        "from .registry import COMPUTED, Method, register\n"
        "MINE = register(Method('mine', 'twice plain', COMPUTED, lambda rgb, plain, quality, context: 2 * plain))\n")
    code = ("from spnrestore.methods import registered, method_order; "
            "print(list(registered())[-2:], method_order(['mine', 'plain', 'original']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, check=True)
    assert done.stdout.strip() == "['original', 'mine'] ['plain', 'original', 'mine']"
