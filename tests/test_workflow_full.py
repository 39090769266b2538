"""End-to-end: the whole DAG, training and evaluation included, then Snakemake's report."""

from __future__ import annotations

import pandas as pd
import pytest

from spnrestore.demo import make_demo_drive
from workflow_runner import run_snakemake

pytestmark = pytest.mark.slow

TINY = (
    "spn={fingerprint_images: 4}",
    "batches_per_camera=2",
    "dataset={fractions: {train: 0.5, val: 0.2, test: 0.3}, patch: 64, stride: 64, max_patches_per_image: 8}",
    "train={settings: {steps: 12, batch_size: 8, checkpoint_every: 6, num_workers: 0, progress: false, "
    "model: {width: 8, max_width: 16, depth: 2, blocks: 1, hourglass: 1, hourglass_depth: 1, q_embed: 16}, "
    "discriminator: {width: 8, layers: 2}, adv_start_step: 6}}",
)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("full")
    drive = make_demo_drive(base / "drive", cameras=3, images_per_camera=12, height=256, width=256, seed=5)
    work = base / "work"
    work.mkdir()
    run_snakemake(work, drive, config=TINY)
    return {"drive": drive, "work": work, "results": work / "results"}


def test_training_writes_a_checkpoint_and_logs(full_run):
    import torch

    results = full_run["results"]
    checkpoint = torch.load(results / "model" / "restorer.pt", weights_only=True)
    assert checkpoint["metrics"]["steps_done"] == 12
    train_log = pd.read_csv(results / "model" / "work" / "train_log.csv")
    assert train_log["step"].max() == 12
    assert len(pd.read_csv(results / "model" / "work" / "val_log.csv")) >= 2


def test_metrics_cover_subsets_qualities_and_methods(full_run):
    metrics = pd.read_csv(full_run["results"] / "evaluation" / "metrics.csv", keep_default_na=False)
    overall = metrics[metrics["camera"] == "all"]
    assert set(overall["subset"]) == {"seen", "holdout"}
    assert set(overall["quality"]) == {90, 60, 30}
    assert set(overall["method"]) == {"plain", "restored", "original"}
    assert len(overall) == 2 * 3 * 3
    assert (overall["n_images"] > 0).all()
    scores = pd.read_csv(full_run["results"] / "evaluation" / "scores.csv", keep_default_na=False)
    fingerprint_images = set(pd.concat(
        pd.read_csv(p) for p in (full_run["results"] / "fingerprints").glob("*.csv"))["image"])
    assert not set(scores["image"]) & fingerprint_images  # never scored against their own fingerprint
    restored = scores[scores["method"] == "restored"]
    evaluated = scores[scores["method"] == "plain"][["image", "quality"]].drop_duplicates()
    assert len(restored[["image", "quality"]].drop_duplicates()) == len(evaluated)  # every evaluated JPEG restored
    assert not any((full_run["drive"] / "Images" / "SPN").glob("*/restored/*/*.npy"))  # and scored, not stored


def test_results_and_figures(full_run):
    evaluation = full_run["results"] / "evaluation"
    text = (evaluation / "results.md").read_text()
    assert "## Goals" in text and "## seen" in text and "## holdout" in text
    for name in ("roc_seen", "roc_holdout", "pce_seen", "pce_holdout", "training", "residual_crops"):
        assert (evaluation / "plots" / f"{name}.png").stat().st_size > 5000


def test_snakemake_report(full_run):
    report = full_run["work"] / "report.html"
    run_snakemake(full_run["work"], full_run["drive"], "--report", str(report), config=TINY)
    html = report.read_text(errors="replace")
    assert report.stat().st_size > 50_000 and "metrics.csv" in html and "roc_seen.png" in html
    # the landing page (the report: directive) holds the headline and the goals, read from summary.html
    assert "which camera took this compressed JPEG" in html and "median match PCE" in html and "Goals:" in html
    # items are labelled and in the categories a reader navigates, tables included as HTML pages
    for text in ("1. Summary", "Identification", "Restoration", "Training", "Data", "ROC curves per quality",
                 "identification.html", "metrics.html", "skipped.html", "training.html"):
        assert text in html, text
    summary = (full_run["results"] / "report" / "summary.html").read_text()
    assert "<h3>seen:" in summary and "<h3>holdout:" in summary and "selected model" in summary


def test_nothing_left_to_do(full_run):
    dry = run_snakemake(full_run["work"], full_run["drive"], "-n", config=TINY)
    assert "Nothing to be done" in dry.output, dry.output[-3000:]


def test_report_renders_in_headless_chromium(full_run, tmp_path):
    """The report opens in a real browser: a screenshot of it is not blank (skipped without Chromium)."""
    import shutil
    import subprocess

    import cv2

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium not installed (Debian package 'chromium')")
    report = full_run["work"] / "report.html"
    if not report.exists():
        run_snakemake(full_run["work"], full_run["drive"], "--report", str(report), config=TINY)
    shot = tmp_path / "report.png"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1600",
             "--virtual-time-budget=8000"]
    subprocess.run([*flags, f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=120, check=True)
    image = cv2.imread(str(shot), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (1600, 1280)
    assert image.std() > 10  # rendered content, not an empty page
    # the landing page as the browser built it (the report is a JavaScript app): the headline figures and
    # the goals are there as text, in tables shown without any download
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    landing = dom.split("which camera took this compressed JPEG", 1)
    assert len(landing) == 2, "the workflow description is not the landing page"
    for text in ("median match PCE", "identified (PCE &gt; 60)", "true matches at zero false matches",
                 "largest non-match PCE", "Goals:", "restored", "<table>"):
        assert text in landing[1], text
