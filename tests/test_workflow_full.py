"""End-to-end: the whole DAG, training and evaluation included, then Snakemake's report."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from spnrestore.config import default_config
from spnrestore.demo import make_demo_drive
from workflow_runner import ROOT, run_snakemake

pytestmark = pytest.mark.slow

TINY = (
    # 6 fingerprint images: as many as calibration.min_images, so that each camera's calibration chooses on its
    # own images (with fewer it is plain at every quality without choosing)
    "spn={fingerprint_images: 6}",
    "batches_per_camera=2",
    "dataset={fractions: {train: 0.5, val: 0.2, test: 0.3}, patch: 64, stride: 64, max_patches_per_image: 8}",
    "train={settings: {steps: 12, batch_size: 8, checkpoint_every: 6, num_workers: 0, progress: false, "
    "model: {width: 8, max_width: 16, depth: 2, blocks: 1, hourglass: 1, hourglass_depth: 1, q_embed: 16}, "
    "discriminator: {width: 8, layers: 2}, adv_start_step: 6}}",
)
#: The methods scored: the default evaluation.methods (this run sets none; the drive trains its model, so
#: ``drive`` is among them) and the uncompressed original, in the registry's order.
METHODS = ("plain", "li2010", "phase", "shipped", "fused", "drive", "calibrated", "original")


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
    """The default evaluation.methods (this is the suite's one run with them), each scored on every evaluated
    JPEG, and the uncompressed original; no method's residual is stored (storage.keep_residuals false)."""
    metrics = pd.read_csv(full_run["results"] / "evaluation" / "metrics.csv", keep_default_na=False)
    overall = metrics[metrics["camera"] == "all"]
    assert set(overall["subset"]) == {"seen", "holdout"}
    assert set(overall["quality"]) == {90, 60, 30}
    assert [*default_config()["evaluation"]["methods"], "original"] == list(METHODS)
    assert set(overall["method"]) == set(METHODS)
    assert len(overall) == 2 * 3 * len(METHODS)
    assert (overall["n_images"] > 0).all()
    scores = pd.read_csv(full_run["results"] / "evaluation" / "scores.csv", keep_default_na=False)
    fingerprint_images = set(pd.concat(
        pd.read_csv(p) for p in (full_run["results"] / "fingerprints").glob("*.csv"))["image"])
    assert not set(scores["image"]) & fingerprint_images  # never scored against their own fingerprint
    keys = ["image", "quality", "fingerprint"]
    plain = scores[scores["method"] == "plain"].set_index(keys).sort_index()
    for method in METHODS:  # every evaluated JPEG scored by every method, against every fingerprint
        rows = scores[scores["method"] == method].set_index(keys).sort_index()
        assert rows.index.equals(plain.index), method
    spn = full_run["drive"] / "Images" / "SPN"
    assert not any(spn.glob("*/methods/*/*/*.npy"))  # scored, not stored
    restore = {p.stem: p for p in (full_run["results"] / "restore").glob("*.csv")}
    assert set(restore) == set(scores["camera"])
    computed = pd.concat(pd.read_csv(p, keep_default_na=False) for p in restore.values())
    assert set(computed["method"]) == {"li2010", "phase", "shipped", "fused", "drive"}  # the rule restore: computed, not plain


def test_spn_folder_holds_fingerprints_and_calibrations(full_run):
    """Per camera: its fingerprint, its calibration set (written with it) and its calibration (rule calibrate),
    one entry per JPEG quality, choosing among the computed methods evaluated."""
    spn = full_run["drive"] / "Images" / "SPN"
    cameras = sorted(p.name for p in spn.iterdir())
    assert len(cameras) == 3
    files = sorted(p.relative_to(spn).as_posix() for p in spn.rglob("*") if p.is_file())
    assert files == [f"{c}/{name}" for c in cameras
                     for name in ("calibration.json", "calibration_set.npz", "fingerprint.npy")]
    for camera in cameras:
        calibration = json.loads((spn / camera / "calibration.json").read_text())
        # its 6 fingerprint images, enough to calibrate: whether the fingerprint identifies them is known
        assert calibration["camera"] == camera and calibration["images"] == 6
        assert calibration["usable"] in (True, False)
        assert calibration["nonmatch_cameras"] == sorted(set(cameras) - {camera})
        assert set(calibration["qualities"]) == {"90", "60", "30"}
        for entry in calibration["qualities"].values():
            assert entry["chosen"] in {"plain", "li2010", "phase", "shipped", "fused", "drive"} and entry["reason"]
            # the figures it chose on: plain and every computed method, on the camera's own images
            assert set(entry["methods"]) == {"plain", "li2010", "phase", "shipped", "fused", "drive"}
            assert all(f["n_images"] == 6 for f in entry["methods"].values())


def test_calibrated_rows_are_those_of_the_chosen_method(full_run):
    """Method ``calibrated``: per fingerprint and quality, exactly the rows of the method that fingerprint's
    calibration chose; its per-image gains are in gains.csv with every other method's but plain."""
    scores = pd.read_csv(full_run["results"] / "evaluation" / "scores.csv", keep_default_na=False)
    spn = full_run["drive"] / "Images" / "SPN"
    keys = ["image", "quality", "fingerprint"]
    calibrated = scores[scores["method"] == "calibrated"].set_index(keys).sort_index()
    assert len(calibrated) > 0
    for (fingerprint, quality), rows in calibrated.groupby(["fingerprint", "quality"]):
        chosen = json.loads((spn / fingerprint / "calibration.json").read_text())["qualities"][str(quality)]["chosen"]
        source = scores[(scores["method"] == chosen) & (scores["fingerprint"] == fingerprint)
                        & (scores["quality"] == quality)].set_index(keys).sort_index()
        assert source.index.equals(rows.index)
        assert (source["pce"] == rows["pce"]).all() and (source["match"] == rows["match"]).all()
    gains = pd.read_csv(full_run["results"] / "evaluation" / "gains.csv", keep_default_na=False)
    assert list(gains.columns) == ["subset", "camera", "image", "quality", "method", "pce_plain", "pce_method",
                                   "gain", "lowered"]
    assert set(gains["method"]) == set(METHODS) - {"plain"}
    matched = scores[(scores["method"] == "plain") & (scores["match"].astype(str) == "True")]
    per_method = gains.groupby("method").size()
    assert (per_method == len(matched)).all(), per_method  # one row per evaluated JPEG and method


def test_restore_jobs_log_every_image_with_its_methods(full_run):
    """The restore job of each camera says, per image, the methods it computed (every computed one but plain)."""
    manifest = pd.read_csv(full_run["results"] / "manifest.csv", keep_default_na=False)
    scores = pd.read_csv(full_run["results"] / "evaluation" / "scores.csv", keep_default_na=False)
    for camera, images in scores.groupby("camera"):
        log = (full_run["results"] / "logs" / "restore" / f"{camera}.log").read_text()
        roles = manifest[manifest["camera"] == camera].set_index("image")["role"]
        for image in sorted(set(images["image"])):
            assert f"li2010, phase, shipped, fused, drive: {camera}/{image} ({roles[image]})" in log, (camera, image)


def test_results_and_figures(full_run):
    evaluation = full_run["results"] / "evaluation"
    text = (evaluation / "results.md").read_text()
    assert "## Goals" in text and "## seen" in text and "## holdout" in text and "## Do no harm" in text
    for method in METHODS:  # the methods are listed, each with what it is
        assert f"- `{method}`: " in text, method
    # the goals judge the deciding method: calibrated, where it is scored
    for subset in ("seen", "holdout"):
        assert f"| {subset}: median match PCE at Q30, calibrated / plain >= 2 |" in text
        assert f"| {subset}: calibrated lowers fewer than 1 image in 10 (every quality) |" in text
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
    headings = re.findall(r"<h3>(.*?)</h3>", summary)
    assert headings[0] == "Methods side by side" and "Calibration per camera" in headings, headings
    calibrations = summary.split("<h3>Calibration per camera</h3>", 1)[1].split("<h3>", 1)[0]
    for camera in (p.name for p in (full_run["drive"] / "Images" / "SPN").iterdir()):
        assert camera in calibrations and "Q90: " in calibrations and "Q30: " in calibrations


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
                 "largest non-match PCE", "Goals:", "Methods side by side", "calibrated", "shipped",
                 "Calibration per camera", "<table>"):
        assert text in landing[1], text
