"""The report's HTML pages (rule report_tables): the summary with the headline and goals, and the tables."""

from __future__ import annotations

import pandas as pd
import pytest

from spnrestore.metrics import METRIC_COLUMNS
from spnrestore.stages import report

QUALITIES = (90, 60, 30)


def metrics_table(subsets=("seen", "holdout")) -> pd.DataFrame:
    """A metrics.csv: per subset, the all-camera rows and one camera, for every quality and method; the drive's
    model is 4x the plain one in median match PCE, calibrated 3x, the original 10x."""
    rows = []
    for subset in subsets:
        for camera in ("all", "cam_a"):
            for q in QUALITIES:
                for method, factor in (("plain", 1.0), ("original", 10.0), ("drive", 4.0), ("calibrated", 3.0)):
                    row = {c: 0.0 for c in METRIC_COLUMNS}
                    row.update(subset=subset, camera=camera, quality=q, method=method, n_images=12,
                               median_pce_match=q * factor, tpr_at_threshold=min(1.0, q * factor / 120),
                               tpr_at_fpr0=0.5, max_pce_nonmatch=12.5, p95_pce_nonmatch=5.0, auc=0.99)
                    rows.append(row)
    return pd.DataFrame(rows)[["subset", "camera", "quality", "method", *METRIC_COLUMNS]]


@pytest.fixture
def tables(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics_table().to_csv(metrics, index=False)
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"camera": ["cam_a"] * 3 + ["cam_b"] * 2, "image": list("abcde"),
                  "status": ["ok"] * 4 + ["skipped"]}).to_csv(manifest, index=False)
    identification = tmp_path / "identification.csv"
    pd.DataFrame({"camera": ["cam_a", "cam_a"], "quality": ["30", "original"], "n_images": [3, 3],
                  "accuracy": [0.5, 1.0], "tpr_at_threshold": [0.5, 1.0], "fpr_at_threshold": [0.0, 0.0],
                  "median_pce_match": [40.0, 5000.0]}).to_csv(identification, index=False)
    skipped = tmp_path / "skipped.csv"
    pd.DataFrame({"camera": ["cam_b"], "path": ["/d/cam_b/x.CR2"], "stage": ["develop"],
                  "reason": ["unreadable <RAW> & truncated"]}).to_csv(skipped, index=False)
    train_log = tmp_path / "train_log.csv"
    pd.DataFrame({"step": [1, 2, 3], "total": [1.0, 0.9, 0.8], "corr": [0.9, 0.8, 0.7], "lf": [0.2, 0.1, 0.1],
                  "time_s": [1.0, 2.0, 3.0]}).to_csv(train_log, index=False)
    val_log = tmp_path / "val_log.csv"
    pd.DataFrame({"step": [0, 2, 3], "ncc_plain": [0.03] * 3, "ncc_restored": [0.031, 0.036, 0.034],
                  "gain": [0.001, 0.006, 0.004], "is_best": [True, True, False]}).to_csv(val_log, index=False)
    gains = tmp_path / "gains.csv"
    pd.DataFrame([{"subset": "seen", "camera": "cam_a", "image": i, "quality": q, "method": m, "pce_plain": 10.0,
                   "pce_method": 10.0 * g, "gain": g, "lowered": g < 1}
                  for i, g in (("a", 2.0), ("b", 0.5), ("c", 3.0), ("d", 4.0)) for q in QUALITIES
                  for m in ("drive", "calibrated")]).to_csv(gains, index=False)
    calibration = tmp_path / "calibration.json"
    calibration.write_text('{"camera": "cam_a", "images": 8, "usable": false, "original_median_pce": 0.4, '
                           '"note": "fingerprint unusable", "qualities": {"30": {"chosen": "plain"}}}')
    return {"metrics": metrics, "manifest": manifest, "gains": gains, "calibration": calibration, "identification": identification, "skipped": skipped,
            "train_log": train_log, "val_log": val_log}


def test_headline_per_subset_quality_and_method():
    frames = report.headline(metrics_table(), 60)
    assert list(frames) == ["seen", "holdout"]
    seen = frames["seen"]
    assert list(seen["quality"]) == ["Q90"] * 4 + ["Q60"] * 4 + ["Q30"] * 4
    assert list(seen["method"][:4]) == ["plain", "drive", "calibrated", "original"]  # the registry's order
    assert {"median match PCE", "identified (PCE > 60)", "true matches at zero false matches", "lowered vs plain",
            "largest non-match PCE"} <= set(seen.columns)
    assert seen.loc[(seen["quality"] == "Q30") & (seen["method"] == "drive"), "median match PCE"].item() == 120


def test_write_report_tables_writes_every_page(tables, tmp_path):
    out = {key: tmp_path / "report" / f"{key}.html"
           for key in ("summary", "identification", "skipped", "metrics", "training")}
    written = report.write_report_tables(
        out, tables["identification"], tables["manifest"], tables["skipped"], 60, QUALITIES, "/drive",
        metrics_csv=tables["metrics"], plan=["cam_a: 3 originals"], train_log=tables["train_log"],
        val_log=tables["val_log"], gains_csv=tables["gains"],
        calibrations={"cam_a": tables["calibration"]})
    assert sorted(p.name for p in written) == sorted(p.name for p in out.values())
    summary = out["summary"].read_text()
    assert "drive: /drive" in summary and "2 camera(s), 4 image(s) used: cam_a (3), cam_b (1)" in summary
    assert "Q90, Q60, Q30" in summary and "<h3>seen:" in summary and "<h3>holdout:" in summary
    assert "median match PCE" in summary and "Goals:" in summary and ">met<" in summary
    assert "cam_a: 3 originals" in summary
    # the table of methods comes first, with the share lowered; the calibration names the unusable fingerprint
    assert summary.index("Methods side by side") < summary.index("What was run")
    assert "lowered vs plain" in summary and '<td class="">25%</td>' in summary
    assert "Calibration per camera" in summary and "UNUSABLE (own images: median PCE 0.4)" in summary
    assert "<table>" in out["metrics"].read_text() and "cam_a" in out["metrics"].read_text()
    skipped = out["skipped"].read_text()
    assert "unreadable &lt;RAW&gt; &amp; truncated" in skipped and "<RAW>" not in skipped
    assert "tpr_at_pce60" in out["identification"].read_text()
    training = out["training"].read_text()
    assert "low-frequency" in training and training.count('class="best"') == 1  # only the selected validation
    assert not list((tmp_path / "report").glob(".*.tmp"))


def test_summary_without_an_evaluation_says_why(tables, tmp_path):
    out = {"summary": tmp_path / "summary.html", "identification": tmp_path / "identification.html",
           "skipped": tmp_path / "skipped.html"}
    report.write_report_tables(out, tables["identification"], tables["manifest"], tables["skipped"], 60,
                               QUALITIES, "/drive")
    text = out["summary"].read_text()
    assert "No evaluation:" in text and "no camera has images to evaluate" in text
    with pytest.raises(ValueError, match="metrics"):
        report.write_report_tables({"metrics": tmp_path / "m.html"}, tables["identification"], tables["manifest"],
                                   tables["skipped"], 60, QUALITIES, "/drive")


def test_empty_skipped_table_says_nothing_was_skipped():
    assert "No file was skipped" in report.skipped_html(pd.DataFrame(columns=["camera", "path", "stage", "reason"]))


def test_goals_of_a_new_drive_subset():
    text = report.headline_html(metrics_table(subsets=("new_drive",)), 60)
    assert "new_drive: images of a drive evaluated with a model trained elsewhere" in text
    assert 'class="met">met<' in text
