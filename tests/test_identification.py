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
    assert overall["tpr_at_pce60"] == pytest.approx(0.5)
    assert overall["fpr_at_pce60"] == pytest.approx(0.25)
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


def test_evaluation_scores_combine_three_methods():
    spn = pd.DataFrame(
        score_rows("A", "t", {"A": 100.0, "B": 1.0}, role="test", quality="original")
        + score_rows("A", "t", {"A": 5.0, "B": 2.0}, role="test", quality="30")
        + score_rows("A", "f", {"A": 9.0, "B": 2.0}, role="train", quality="30")
    )
    restored = pd.DataFrame(score_rows("A", "t", {"A": 20.0, "B": 1.5}, role="test", subset="seen",
                                       quality=30, method="restored"))
    table = evaluation_scores(spn, restored, [30])
    assert set(table["method"]) == {"plain", "restored", "original"}
    assert set(table["image"]) == {"t"} and set(table["quality"]) == {30}
    pivot = table[table["match"]].set_index("method")["pce"]
    assert pivot["original"] == 100.0 and pivot["plain"] == 5.0 and pivot["restored"] == 20.0
    assert np.all(table["subset"] == "seen")


def test_results_markdown_checks_goals_from_the_figures():
    from spnrestore.stages.results import goal_checks, results_markdown

    rows = []
    for quality, plain, restored in [(30, 10.0, 40.0), (90, 500.0, 450.0)]:
        for method, median, tpr, worst, p95 in [("plain", plain, 0.1, 20.0, 6.0), ("restored", restored, 0.4, 25.0, 5.0),
                                                 ("original", 3000.0, 1.0, 10.0, 4.0)]:
            rows.append({"subset": "seen", "camera": "all", "quality": quality, "method": method,
                         "n_images": 5, "accuracy": tpr, "auc": 0.9, "eer": 0.1, "tpr_at_pce60": tpr,
                         "fpr_at_pce60": 0.0, "tpr_at_fpr0": tpr, "median_pce_match": median,
                         "median_pce_nonmatch": 0.0, "max_pce_nonmatch": worst, "p95_pce_nonmatch": p95,
                         "mean_ncc_match": 0.01})
    metrics = pd.DataFrame(rows)
    checks = {goal.split(": ", 1)[1]: (measured, met) for goal, measured, met in goal_checks(metrics, 60)}
    assert checks["median match PCE at Q30, restored / plain >= 3"] == ("40 / 10 = 4.00", True)
    assert checks["rate of true matches above PCE 60 at Q30, restored > plain"][1] is True
    assert checks["no non-matching pair above PCE 60 (any quality, any method)"][1] is True
    assert checks["non-match PCE of restored no wider than plain (largest value)"][1] is False
    assert checks["non-match PCE of restored no wider than plain (95th percentile, every quality)"] == (
        "Q90 5 vs 6; Q30 5 vs 6", True)
    assert checks["restored never below plain in median match PCE"] == ("below at Q90", False)
    text = results_markdown(metrics, 60)
    assert "| seen: median match PCE at Q30, restored / plain >= 3 | 40 / 10 = 4.00 | yes |" in text


def test_results_without_non_matching_pairs_say_so(tmp_path):
    """A drive whose cameras all differ in sensor size scores no non-matching pair: the goals that need one
    are n/a with the reason, not a crash, and results.md is written."""
    from spnrestore.stages.results import results_markdown, write_results

    rows = [{"subset": "new_drive", "camera": "all", "quality": q, "method": m, "n_images": 3, "accuracy": 1.0,
             "auc": np.nan, "eer": np.nan, "tpr_at_pce60": 1.0, "fpr_at_pce60": np.nan, "tpr_at_fpr0": np.nan,
             "median_pce_match": median, "median_pce_nonmatch": np.nan, "max_pce_nonmatch": np.nan,
             "p95_pce_nonmatch": np.nan, "mean_ncc_match": 0.01}
            for q in (90, 30) for m, median in (("plain", 80.0), ("restored", 200.0), ("original", 900.0))]
    csv = tmp_path / "metrics.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    text = write_results(csv, 60, tmp_path / "results.md", log=lambda m: None)
    assert "no non-matching pair was scored" in text and "| n/a |" in text
    assert "| new_drive: restored never below plain in median match PCE | at no quality | yes |" in text
    assert text == (tmp_path / "results.md").read_text() and results_markdown(pd.DataFrame(rows), 60) in text


def test_per_image_gains_and_the_do_no_harm_checks():
    """gains.csv: the match PCE of each image plain and restored, their ratio with both floored at PCE 1 (an image
    with no evidence before or after counts as unchanged), and whether the restoration lowered it; results.md
    checks the per-image goals from it."""
    from spnrestore.metrics import gain_summary, image_gains
    from spnrestore.stages.results import harm_checks, results_markdown

    rows = []
    for camera, image, q, plain, restored in [("A", "a1", 30, 10.0, 40.0), ("A", "a2", 30, 20.0, 10.0),
                                              ("B", "b1", 30, -3.0, 0.5), ("B", "b2", 30, 50.0, 200.0),
                                              ("A", "a1", 90, 500.0, 450.0), ("A", "a2", 90, 300.0, 200.0),
                                              ("B", "b1", 90, 100.0, 100.0), ("B", "b2", 90, 80.0, 100.0)]:
        for method, pce in (("plain", plain), ("restored", restored)):
            rows += score_rows(camera, image, {camera: pce, "C": 1.0}, subset="new_drive", quality=q, method=method)
    gains = image_gains(pd.DataFrame(rows))
    assert len(gains) == 8 and set(gains.columns) >= {"pce_plain", "pce_restored", "gain", "lowered"}
    by = gains.set_index(["image", "quality"])
    assert by.loc[("a1", 30), "gain"] == 4.0 and by.loc[("a2", 30), "gain"] == 0.5
    assert by.loc[("b1", 30), "gain"] == 1.0 and not by.loc[("b1", 30), "lowered"]  # both below PCE 1: unchanged
    assert by.loc[("a2", 30), "lowered"] and not by.loc[("b1", 90), "lowered"]
    summary = gain_summary(gains).set_index("quality")
    assert summary.loc[30, "median_gain"] == 2.5 and summary.loc[30, "share_lowered"] == 0.25
    assert summary.loc[90, "worst_gain"] == pytest.approx(200 / 300) and summary.loc[30, "worst_camera"] == "A"
    checks = {goal.split(": ", 1)[1]: (measured, met) for goal, measured, met in harm_checks(gains)}
    assert checks["median per-image match-PCE gain at Q30 >= 2"] == ("2.50 over 4 images", True)
    assert checks["no camera below 1x in median gain at Q30"] == ("lowest 2.25 (A)", True)
    assert checks["fewer than a quarter of the images lowered (every quality)"] == ("Q90 0.50; Q30 0.25", False)
    assert checks["no image below 0.8x of its plain match PCE at Q90"] == ("worst 0.67", False)
    metrics = pd.DataFrame([{"subset": "new_drive", "camera": "all", "quality": q, "method": m, "median_pce_match": 1.0,
                             "tpr_at_pce60": 0.0, "max_pce_nonmatch": np.nan} for q in (30, 90)
                            for m in ("plain", "restored", "original")])
    assert "## Do no harm" in results_markdown(metrics.reindex(columns=["subset", "camera", "quality", "method",
                                                                        *METRIC_COLUMNS]), 60, gains=gains)
