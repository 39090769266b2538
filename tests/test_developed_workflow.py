"""End-to-end: the whole workflow (training and evaluation included) on a drive of developed originals only.

The drive holds camera JPEGs (some tagged portrait, some turned by the camera without a tag), PNG and 16-bit
TIFF originals, flat-field JPEGs in each camera's ``flat/`` folder, and a camera with a single image.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from conftest import sha256_tree
from spnrestore.batch_develop import read_develop_table
from spnrestore.demo.developed import make_developed_drive
from workflow_runner import run_snakemake

pytestmark = pytest.mark.slow

TINY = (
    "spn={fingerprint_images: 8}",
    "batches_per_camera=2",
    "dataset={fractions: {train: 0.5, val: 0.2, test: 0.3}, patch: 64, stride: 64, max_patches_per_image: 4}",
    "train={settings: {steps: 6, batch_size: 8, checkpoint_every: 3, num_workers: 0, progress: false, "
    "model: {width: 8, max_width: 16, depth: 2, blocks: 1, hourglass: 1, hourglass_depth: 1, q_embed: 16}, "
    "discriminator: {width: 8, layers: 2}, adv_start_step: 3}}",
)
LONELY = "Lonely_Cam"


@pytest.fixture(scope="module")
def developed_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("developed")
    drive = make_developed_drive(base / "drive", cameras=3, images_per_camera=16, flats=4, seed=1)
    original = drive / "Images" / "Original"
    first = sorted(p for p in original.iterdir())[0]
    (original / LONELY).mkdir()
    shutil.copyfile(first / sorted(p.name for p in first.glob("*.JPG"))[0], original / LONELY / "IMG_9999.JPG")
    before = sha256_tree(original)
    work = base / "work"
    work.mkdir()
    run = run_snakemake(work, drive, config=TINY)
    results = work / "results"
    return {"drive": drive, "results": results, "before": before, "run": run,
            "manifest": read_develop_table(results / "manifest.csv"),
            "scores": pd.read_csv(results / "spn" / "scores.csv", keep_default_na=False, dtype={"quality": str})}


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
    assert set(overall["method"]) == {"plain", "restored", "original"} and len(overall) == 18
    assert (overall["n_images"] > 0).all()
    assert (overall.loc[overall["method"] == "original", "auc"] > 0.95).all()


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
