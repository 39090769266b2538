"""End-to-end: the whole workflow (training and evaluation included) on a drive of developed originals only
(the session fixture ``developed_run`` of conftest.py), casework on its outputs, and its model reused on
another drive."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
import yaml

from conftest import LONELY, TINY, sha256_tree
from spnrestore.config import default_config
from workflow_runner import run_snakemake

pytestmark = pytest.mark.slow
QUALITIES = ("90", "60", "30")
#: The methods of the reuse test's evaluation: one model (the reused one, as method drive) and the calibration.
FEW_METHODS = "evaluation={methods: [plain, li2010, drive, calibrated]}"


def evaluated_methods(config: tuple[str, ...]) -> list[str]:
    """evaluation.methods of a run's ``--config`` entries (the defaults where they set none)."""
    for entry in config:
        if entry.startswith("evaluation="):
            return list(yaml.safe_load(entry.split("=", 1)[1])["methods"])
    return list(default_config()["evaluation"]["methods"])


def test_manifest_of_developed_originals(developed_run):
    manifest = developed_run["manifest"]
    assert (manifest["status"] == "ok").all() and len(manifest) == 3 * (16 + 4) + 1
    assert set(manifest["format"]) == {"jpeg", "png", "tiff"} and (manifest["raw_pattern"] == "").all()
    jpeg = manifest["format"] == "jpeg"
    assert (manifest.loc[jpeg, "source_quality"] == 95).all() and manifest.loc[~jpeg, "source_quality"].isna().all()
    assert set(manifest["orientation"]) == {0, 1, 6}
    assert sha256_tree(developed_run["drive"] / "Images" / "Original") == developed_run["before"]


def test_evaluation_covers_every_quality_and_method(developed_run):
    metrics = pd.read_csv(developed_run["results"] / "evaluation" / "metrics.csv", keep_default_na=False)
    overall = metrics[metrics["camera"] == "all"]
    assert set(overall["subset"]) == {"seen", "holdout"} and set(overall["quality"]) == {90, 60, 30}
    methods = {*evaluated_methods(TINY), "original"}  # the drive trains its model: method drive is scored
    assert "drive" in methods and "calibrated" in methods
    assert set(overall["method"]) == methods and len(overall) == 2 * 3 * len(methods)
    assert (overall["n_images"] > 0).all()
    assert (overall.loc[overall["method"] == "original", "auc"] > 0.95).all()


def test_each_camera_with_a_fingerprint_is_calibrated(developed_run):
    """SPN/<camera>: the fingerprint, its calibration set and its calibration (an entry per JPEG quality, the
    method chosen among those scored); nothing for the camera without a fingerprint. The calibration's known
    images are the fingerprint's (fewer than calibration.min_images natural ones: the flat fields too, and the
    account says so)."""
    spn, manifest = developed_run["drive"] / "Images" / "SPN", developed_run["manifest"]
    cameras = sorted(set(manifest["camera"]) - {LONELY})
    files = sorted(p.relative_to(spn).as_posix() for p in spn.rglob("*") if p.is_file())
    assert files == [f"{c}/{name}" for c in cameras for name in ("calibration.json", "calibration_set.npz",
                                                                  "fingerprint.npy")]
    computed = set(evaluated_methods(TINY)) - {"calibrated"}
    for camera in cameras:
        calibration = json.loads((spn / camera / "calibration.json").read_text())
        used = pd.read_csv(developed_run["results"] / "fingerprints" / f"{camera}.csv")["used"]
        assert calibration["camera"] == camera and calibration["images"] == used.sum() >= 6
        assert "flat fields" in calibration["how"]
        assert sorted(calibration["qualities"]) == sorted(QUALITIES)
        for entry in calibration["qualities"].values():
            assert entry["chosen"] in computed and set(entry["methods"]) == computed


def test_flat_fields_are_never_scored_or_trained_on(developed_run):
    results, manifest = developed_run["results"], developed_run["manifest"]
    flats = set(manifest.loc[manifest["path"].str.contains("/flat/"), "image"])
    assert len(flats) == 4 and set(manifest.loc[manifest["image"].isin(flats), "role"]) == {"fingerprint"}
    used = pd.concat(pd.read_csv(p) for p in (results / "fingerprints").glob("*.csv"))
    assert flats <= set(used.loc[used["used"], "image"])
    evaluation = pd.read_csv(results / "evaluation" / "scores.csv", keep_default_na=False)
    training = pd.read_csv(results / "dataset" / "manifest.csv", keep_default_na=False)
    for images in (developed_run["scores"]["image"], evaluation["image"], training["image"]):
        assert not flats & set(images)


def test_portraits_match_their_camera_at_original(developed_run):
    """Tagged portraits (stored in sensor layout) and portraits turned by the camera without a tag."""
    manifest, scores = developed_run["manifest"], developed_run["scores"]
    original = scores[scores["quality"] == "original"]
    best = original.loc[original.groupby("image")["pce"].idxmax()].set_index("image")
    match = original[original["match"]].set_index("image")["pce"]
    tagged = set(manifest.loc[manifest["orientation"] == 6, "image"]) & set(match.index)
    turned = set(manifest.loc[manifest["width"] < manifest["height"], "image"]) & set(match.index)
    assert len(tagged) >= 2 and len(turned) >= 2
    for images in (tagged, turned):
        assert (best.loc[sorted(images), "match"]).all()
        assert match[sorted(images)].median() > 60


def test_camera_with_one_image_is_reported_and_the_rest_finishes(developed_run):
    results, manifest = developed_run["results"], developed_run["manifest"]
    skipped = pd.read_csv(results / "skipped.csv", keep_default_na=False)
    reason = skipped.loc[skipped["camera"] == LONELY, "reason"].item()
    assert "1 image(s)" in reason and "at least 2" in reason
    assert manifest.loc[manifest["camera"] == LONELY, "role"].tolist() == ["no_fingerprint"]
    assert not (developed_run["drive"] / "Images" / "SPN" / LONELY / "fingerprint.npy").exists()
    assert (developed_run["drive"] / "Images" / "Compressed" / LONELY / "30" / "IMG_9999.jpg").is_file()
    assert LONELY not in set(developed_run["scores"]["camera"]) | set(developed_run["scores"]["fingerprint"])
    assert LONELY in developed_run["run"].output


@pytest.mark.parametrize("gpu_scorer", [False, True])
def test_restoring_with_threads_gives_the_rows_of_the_workflow(developed_run, tmp_path, monkeypatch, gpu_scorer,
                                                               caplog):
    """The restore job with 3 threads (residuals read ahead, scores behind the model, or in the main thread
    where the scorer is a GPU one: stood in by the numpy scorer marked so) writes the rows the workflow's
    restore job wrote, in the same order."""
    from spnrestore.paths import DrivePaths
    from spnrestore.stages import restore
    from spnrestore.stages.restore import restore_camera

    if gpu_scorer:
        numpy_scorer = restore.fingerprint_scorer

        def marked(fingerprints):
            score = numpy_scorer(fingerprints)
            score.on_gpu = True
            return score

        monkeypatch.setattr(restore, "fingerprint_scorer", marked)

    results, manifest = developed_run["results"], developed_run["manifest"]
    # two of the workflow's methods (a classic one and the drive's model: the shipped model would only add
    # time), the rows of those in the workflow's table
    methods = ["li2010", "drive"]
    assert set(methods) <= set(evaluated_methods(TINY))
    expected = pd.read_csv(results / "restore" / "Synth_Alpha_A1.csv", keep_default_na=False)
    expected = expected[expected["method"].isin(methods)].reset_index(drop=True)
    images = manifest[manifest["camera"] == "Synth_Alpha_A1"]
    images_drive = developed_run["drive"] / "Images"
    caplog.set_level(logging.INFO, logger="spnrestore")
    frame = restore_camera(
        develop_tables=sorted((results / "batches" / "develop" / "Synth_Alpha_A1").glob("*.csv")),
        roles=dict(zip(images["image"], images["role"])), qualities=[90, 60, 30],
        drive=DrivePaths(developed_run["drive"], images_drive / "Original", images_drive / "Compressed",
                         images_drive / "SPN", results),
        cameras=sorted(set(expected["fingerprint"])), methods=["plain", *methods],
        checkpoint=results / "model" / "restorer.pt", sigma=5.0, table=tmp_path / "restore.csv",
        storage={}, threads=3)
    written = pd.read_csv(tmp_path / "restore.csv", keep_default_na=False)
    assert len(expected) > 20 and written.shape == expected.shape == frame.shape
    keys = ["image", "quality", "method", "fingerprint", "match"]
    assert written[keys].equals(expected[keys])
    assert ((written["pce"] - expected["pce"]).abs() <= 1e-6 * expected["pce"].abs().clip(lower=60)).all()
    roles = images.set_index("image")["role"]
    assert [m for m in caplog.messages if m.startswith("li2010, drive: ")] == [
        f"li2010, drive: Synth_Alpha_A1/{image} ({roles[image]})" for image in expected["image"].unique()]


def test_casework_identify_scores_like_the_workflow(developed_run, tmp_path):
    """One scoring path: ``spnrestore identify`` on the workflow's JPEGs and SPN folder (its fingerprints and
    their calibrations) gives the workflow's PCE and decision, plain, by the drive's model (``--checkpoint``:
    the CLI names it after its file, the workflow ``drive``) and calibrated, for images turned by the camera
    without a tag (quarter-turn match) as for the others."""
    from spnrestore.cli import main
    from spnrestore.spn import decide

    drive, results, manifest = developed_run["drive"], developed_run["results"], developed_run["manifest"]
    quality = 30
    evaluation = pd.read_csv(results / "evaluation" / "scores.csv", keep_default_na=False,
                             dtype={"camera": str, "image": str, "fingerprint": str})
    cli_name = {"plain": "plain", "restorer": "drive", "calibrated": "calibrated"}  # CLI method -> workflow's
    evaluated = evaluation[(evaluation["quality"] == quality) & evaluation["method"].isin(cli_name.values())]
    turned = set(manifest.loc[manifest["width"] < manifest["height"], "image"])
    pick = sorted(set(evaluated["image"]) & turned)[:2] + sorted(set(evaluated["image"]) - turned)[:2]
    assert len(set(pick) & turned) >= 1 and len(set(pick) - turned) == 2, "evaluated images of both kinds"
    camera = manifest.set_index("image")["camera"]
    jpegs = [drive / "Images" / "Compressed" / camera[image] / str(quality) / f"{image}.jpg" for image in pick]
    out = tmp_path / "identify.csv"
    assert main(["identify", *map(str, jpegs), "--fingerprints", str(drive / "Images" / "SPN"), "--checkpoint",
                 str(results / "model" / "restorer.pt"), "--quality", str(quality), "--csv", str(out)]) == 0
    cli = pd.read_csv(out, keep_default_na=False, dtype={"fingerprint": str})
    cli["image"] = [p.rsplit("/", 1)[-1].removesuffix(".jpg") for p in cli["image"]]
    assert set(cli["method"]) == set(cli_name)  # by default: plain, the model given, calibrated (calibrations found)
    cli["method"] = cli["method"].map(cli_name)
    workflow = evaluated[evaluated["image"].isin(pick)]
    merged = cli.merge(workflow, on=["image", "method", "fingerprint"], suffixes=("_cli", "_workflow"))
    assert len(merged) == len(cli) == len(workflow) > 0
    # the workflow scores residuals stored in float16 (storage.residual_dtype), the CLI its float32 residuals in
    # memory: equal within the storage contract, 0.1 % of max(|PCE|, 60) (tests/test_residual_storage.py)
    for method in cli_name.values():
        rows = merged[merged["method"] == method]
        assert len(rows) and ((rows["pce_cli"] - rows["pce_workflow"]).abs()
                              <= 1e-3 * rows["pce_workflow"].abs().clip(lower=60)).all(), rows
    decided = decide(workflow, 60, keys=("image", "method")).set_index(["image", "method"])["decision"]
    given = cli.drop_duplicates(["image", "method"]).set_index(["image", "method"])["decision"]
    assert given.sort_index().equals(decided.sort_index())


def test_a_trained_model_is_reused_on_another_drive(developed_run, tmp_path):
    """model.checkpoint: a second drive trains nothing and evaluates every non-fingerprint image with the model
    (subset new_drive), naming it in results.md; a model of other residual settings is refused before any job."""
    from spnrestore.checksums import file_sha256
    from spnrestore.demo import make_demo_drive

    checkpoint = developed_run["results"] / "model" / "restorer.pt"
    drive = make_demo_drive(tmp_path / "second", cameras=2, images_per_camera=10, height=128, width=192, seed=7)
    work = tmp_path / "work"
    work.mkdir()
    reuse = (f"model={{checkpoint: {checkpoint}}}", "spn={fingerprint_images: 4}", FEW_METHODS)
    run = run_snakemake(work, drive, config=reuse)
    results = work / "results"
    assert "this drive trains nothing" in run.output
    assert not (results / "model").exists() and not (results / "dataset").exists()
    metrics = pd.read_csv(results / "evaluation" / "metrics.csv", keep_default_na=False)
    overall = metrics[metrics["camera"] == "all"]
    # the reused model is the method drive; with plain, li2010, calibrated and the original: 5 methods x 3 qualities
    assert set(overall["method"]) == {"plain", "li2010", "drive", "calibrated", "original"}
    assert set(overall["subset"]) == {"new_drive"} and len(overall) == 15 and (overall["n_images"] == 12).all()
    restored = pd.concat(pd.read_csv(p, keep_default_na=False) for p in (results / "restore").glob("*.csv"))
    assert set(restored["method"]) == {"li2010", "drive"}
    for camera in (p.name for p in (drive / "Images" / "Original").iterdir()):
        calibration = json.loads((drive / "Images" / "SPN" / camera / "calibration.json").read_text())
        assert sorted(calibration["qualities"]) == sorted(QUALITIES)
        assert {e["chosen"] for e in calibration["qualities"].values()} <= {"plain", "li2010", "drive"}
    text = (results / "evaluation" / "results.md").read_text()
    assert file_sha256(checkpoint) in text and "trained elsewhere" in text and "## new_drive" in text
    assert "- `drive`: " in text and "calibrated / plain" in text
    assert (results / "evaluation" / "plots" / "roc_new_drive.png").is_file()
    refused = run_snakemake(work, drive, config=(*reuse[:1], "spn={fingerprint_images: 4, sigma: 3}"), check=False)
    assert refused.returncode != 0 and "sigma: 5.0 (recorded) vs 3.0 (now)" in refused.output
