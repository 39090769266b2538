"""Identification figures from score tables, roles of originals, evaluation tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spnrestore.metrics import METRIC_COLUMNS, metrics_table
from spnrestore.spn import decide
from spnrestore.stages.evaluation import evaluation_scores
from spnrestore.stages.roles import assign_roles, holdout_cameras


def score_rows(camera, image, pces, **extra):
    return [{"camera": camera, "image": image, "fingerprint": fp, "pce": p, "ncc": p / 1000,
             "match": fp == camera, **extra} for fp, p in pces.items()]


@pytest.fixture()
def scores():
    rows = []
    rows += score_rows("A", "a1", {"A": 500.0, "B": 3.0})
    rows += score_rows("A", "a2", {"A": 40.0, "B": -2.0})     # match below the threshold: unknown
    rows += score_rows("B", "b1", {"A": 70.0, "B": 20.0})     # false attribution to A
    rows += score_rows("B", "b2", {"A": 1.0, "B": 900.0})
    return pd.DataFrame(rows)


def test_decisions(scores):
    d = decide(scores, threshold=60).set_index("image")
    assert d.loc["a1", "decision"] == "A" and d.loc["a1", "correct"]
    assert d.loc["a2", "decision"] == "unknown" and not d.loc["a2", "correct"]
    assert d.loc["b1", "decision"] == "A" and not d.loc["b1", "correct"]


def test_metrics_by_hand(scores):
    table = metrics_table(scores, ["camera"], threshold=60).set_index("camera")
    overall = table.loc["all"]
    assert overall["n_images"] == 4
    assert overall["accuracy"] == pytest.approx(0.5)
    # matches 500, 40, 20, 900; non-matches 3, -2, 70, 1
    assert overall["tpr_at_threshold"] == pytest.approx(0.5)
    assert overall["fpr_at_threshold"] == pytest.approx(0.25)
    assert overall["tpr_at_fpr0"] == pytest.approx(0.5)  # above the highest non-match (70)
    # AUC: pairs (match > non-match): 500:4, 40:3, 20:3, 900:4 -> 14 of 16
    assert overall["auc"] == pytest.approx(14 / 16)
    assert overall["median_pce_match"] == pytest.approx(270.0)
    assert overall["max_pce_nonmatch"] == pytest.approx(70.0)
    assert overall["p95_pce_nonmatch"] == pytest.approx(3 + 0.85 * 67)  # linear between 3 and 70
    assert table.loc["A", "n_images"] == 2 and table.loc["A", "median_pce_match"] == pytest.approx(270.0)
    assert table.loc["B", "accuracy"] == pytest.approx(0.5)


def test_roles_are_stable_and_fingerprints_first():
    images = pd.DataFrame({"camera": ["C1"] * 30 + ["C2"] * 30,
                           "image": [f"IMG_{i:03d}" for i in range(30)] * 2})
    roles = assign_roles(images, n_fingerprint=10, fractions={"train": 0.6, "val": 0.2, "test": 0.2})
    assert (roles.groupby(images["camera"]).apply(lambda r: (r == "fingerprint").sum()) == 10).all()
    more = pd.concat([images, pd.DataFrame({"camera": ["C1"], "image": ["IMG_new"]})], ignore_index=True)
    again = assign_roles(more, 10, {"train": 0.6, "val": 0.2, "test": 0.2})
    changed = (again.iloc[:60] != roles).sum()
    assert changed <= 1  # only if the new image took a fingerprint place


def test_holdout_cameras():
    assert holdout_cameras(["a", "b", "c", "d"], [], 1) != []
    assert holdout_cameras(["a", "b", "c"], [], 2) == []  # too few left for training
    assert holdout_cameras(["a", "b", "c"], ["b"], 1) == ["b"]
    roles = assign_roles(pd.DataFrame({"camera": ["a", "a", "b"], "image": ["1", "2", "3"]}), 1,
                         {"train": 1.0, "val": 0.0, "test": 0.0}, ["a"])
    assert set(roles[:2]) == {"fingerprint", "holdout"}


def test_evaluation_scores_combine_the_methods():
    spn = pd.DataFrame(
        score_rows("A", "t", {"A": 100.0, "B": 1.0}, role="test", quality="original")
        + score_rows("A", "t", {"A": 5.0, "B": 2.0}, role="test", quality="30")
        + score_rows("A", "f", {"A": 9.0, "B": 2.0}, role="train", quality="30")
    )
    restored = pd.DataFrame(score_rows("A", "t", {"A": 20.0, "B": 1.5}, role="test", subset="seen",
                                       quality=30, method="drive"))
    table = evaluation_scores(spn, restored, [30], ["plain", "drive"])
    assert set(table["method"]) == {"plain", "drive", "original"}
    assert set(table["image"]) == {"t"} and set(table["quality"]) == {30}
    pivot = table[table["match"]].set_index("method")["pce"]
    assert pivot["original"] == 100.0 and pivot["plain"] == 5.0 and pivot["drive"] == 20.0
    assert np.all(table["subset"] == "seen")
    # calibrated: per fingerprint, the rows of the method its calibration chose (plain without one)
    cal = {"A": {"qualities": {"30": {"chosen": "drive"}}}, "B": {"qualities": {"90": {"chosen": "plain"}}}}
    table = evaluation_scores(spn, restored, [30], ["plain", "drive", "calibrated"], cal)
    picked = table[table["method"] == "calibrated"].set_index("fingerprint")["pce"]
    assert picked["A"] == 20.0 and picked["B"] == 2.0
    assert list(table[table["fingerprint"] == "A"]["method"]) == ["plain", "drive", "calibrated", "original"]


def _metrics(rows):
    return pd.DataFrame([{"subset": "seen", "camera": "all", "quality": q, "method": m, "n_images": 5,
                          "accuracy": 0.5, "auc": 0.9, "eer": 0.1, "threshold": 60.0, "tpr_at_threshold": 0.5, "fpr_at_threshold": 0.0,
                          "tpr_at_fpr0": 0.5, "median_pce_match": median, "median_pce_nonmatch": 0.0,
                          "max_pce_nonmatch": worst, "p95_pce_nonmatch": 5.0, "mean_ncc_match": 0.01}
                         for q, m, median, worst in rows])


def test_results_markdown_checks_goals_from_the_figures():
    from spnrestore.stages.results import goal_checks, results_markdown

    metrics = _metrics([(30, "plain", 10.0, 20.0), (30, "drive", 40.0, 25.0), (30, "calibrated", 30.0, 20.0),
                        (30, "original", 3000.0, 70.0), (90, "plain", 500.0, 6.0), (90, "drive", 450.0, 5.0),
                        (90, "calibrated", 500.0, 6.0), (90, "original", 3000.0, 4.0)])
    checks = {goal.split(": ", 1)[1]: (measured, met) for goal, measured, met in goal_checks(metrics, 60)}
    assert checks["median match PCE at Q30, calibrated / plain >= 2"] == ("30 / 10 = 3.00", True)
    # the original (the upper bound, not a method of the JPEG) is not judged
    assert checks["no non-matching pair above PCE 60 (any quality, any method)"] == (
        "largest non-match PCE 25 (drive, Q30)", True)
    text = results_markdown(metrics, 60)
    assert "| seen: median match PCE at Q30, calibrated / plain >= 2 | 30 / 10 = 3.00 | yes |" in text
    assert "- `li2010`" not in text and "- `calibrated`: per fingerprint and quality" in text


def test_results_without_non_matching_pairs_say_so(tmp_path):
    """A drive whose cameras all differ in sensor size scores no non-matching pair: the goals that need one
    are n/a with the reason, not a crash, and results.md is written."""
    from spnrestore.stages.results import results_markdown, write_results

    rows = [{"subset": "new_drive", "camera": "all", "quality": q, "method": m, "n_images": 3, "accuracy": 1.0,
             "auc": np.nan, "eer": np.nan, "threshold": 60.0, "tpr_at_threshold": 1.0, "fpr_at_threshold": np.nan, "tpr_at_fpr0": np.nan,
             "median_pce_match": median, "median_pce_nonmatch": np.nan, "max_pce_nonmatch": np.nan,
             "p95_pce_nonmatch": np.nan, "mean_ncc_match": 0.01}
            for q in (90, 30) for m, median in (("plain", 80.0), ("shipped", 200.0), ("original", 900.0))]
    csv = tmp_path / "metrics.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    text = write_results(csv, 60, tmp_path / "results.md")
    assert "no non-matching pair was scored" in text and "| n/a |" in text
    assert "| new_drive: median match PCE at Q30, shipped / plain >= 2 | 200 / 80 = 2.50 | yes |" in text
    assert text == (tmp_path / "results.md").read_text() and results_markdown(pd.DataFrame(rows), 60) in text


def test_per_image_gains_and_the_do_no_harm_checks():
    """gains.csv: per image, quality and method, its match PCE and plain's, their ratio with both floored at PCE 1
    (an image with no evidence before or after counts as unchanged), and whether the method lowered it;
    results.md checks the per-image goals of the deciding method from it."""
    from spnrestore.metrics import gain_summary, image_gains
    from spnrestore.stages.results import harm_checks, results_markdown

    rows = []
    for camera, image, q, plain, restored in [("A", "a1", 30, 10.0, 40.0), ("A", "a2", 30, 20.0, 10.0),
                                              ("B", "b1", 30, -3.0, 0.5), ("B", "b2", 30, 50.0, 200.0),
                                              ("A", "a1", 90, 500.0, 450.0), ("A", "a2", 90, 300.0, 200.0),
                                              ("B", "b1", 90, 100.0, 100.0), ("B", "b2", 90, 80.0, 100.0)]:
        for method, pce in (("plain", plain), ("shipped", restored), ("li2010", plain * 1.5)):
            rows += score_rows(camera, image, {camera: pce, "C": 1.0}, subset="new_drive", quality=q, method=method)
    gains = image_gains(pd.DataFrame(rows))
    assert len(gains) == 16 and set(gains.columns) >= {"method", "pce_plain", "pce_method", "gain", "lowered"}
    by = gains[gains["method"] == "shipped"].set_index(["image", "quality"])
    assert by.loc[("a1", 30), "gain"] == 4.0 and by.loc[("a2", 30), "gain"] == 0.5
    assert by.loc[("b1", 30), "gain"] == 1.0 and not by.loc[("b1", 30), "lowered"]  # both below PCE 1: unchanged
    assert by.loc[("a2", 30), "lowered"] and not by.loc[("b1", 90), "lowered"]
    summary = gain_summary(gains).set_index(["quality", "method"])
    assert summary.loc[(30, "shipped"), "median_gain"] == 2.5 and summary.loc[(30, "shipped"), "share_lowered"] == 0.25
    assert summary.loc[(90, "shipped"), "worst_gain"] == pytest.approx(200 / 300)
    assert summary.loc[(30, "li2010"), "share_lowered"] == 0.25  # b1: -3 x 1.5 = -4.5, lower
    checks = {goal.split(": ", 1)[1]: (measured, met) for goal, measured, met in harm_checks(gains)}
    assert checks["shipped lowers fewer than 1 image in 10 (every quality)"] == ("Q90 0.50; Q30 0.25", False)
    assert checks["shipped: no camera below plain in median gain (every quality)"][1] is False
    metrics = pd.DataFrame([{"subset": "new_drive", "camera": "all", "quality": q, "method": m, "median_pce_match": 1.0,
                             "tpr_at_threshold": 0.0, "max_pce_nonmatch": np.nan} for q in (30, 90)
                            for m in ("plain", "shipped", "original")])
    assert "## Do no harm" in results_markdown(metrics.reindex(columns=["subset", "camera", "quality", "method",
                                                                        *METRIC_COLUMNS]), 60, gains=gains)
