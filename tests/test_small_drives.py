"""End-to-end: drives too small for some stages run to the end, with an account of what could not be done.

A camera-forensics data set often has few natural images per device (Dresden, VISION: flat fields plus a
few dozen photos; a user's first try: a handful). Every such drive must finish `snakemake` with exit 0, the
reasons in the run's first lines and in ``results/skipped.csv``.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from spnrestore.demo import make_demo_drive
from workflow_runner import run_snakemake

pytestmark = pytest.mark.slow
QUALITIES = ("90", "60", "30")
#: Where a model evaluates: one model method (the drive's, trained or reused) and the calibration.
FEW_METHODS = "evaluation={methods: [plain, li2010, drive, calibrated]}"


def _camera(original, source, name, flats: int, naturals: int):
    """A camera folder ``name`` with ``flats`` images in ``flat/`` and ``naturals`` beside them, from ``source``."""
    files = sorted(p for p in source.iterdir() if p.suffix.lower() == ".dng")
    assert len(files) >= flats + naturals
    (original / name / "flat").mkdir(parents=True)
    for i, path in enumerate(files[:flats + naturals]):
        shutil.move(path, original / name / ("flat" if i < flats else "") / path.name)
    shutil.rmtree(source)


@pytest.fixture(scope="module")
def small_drive(tmp_path_factory):
    """Three cameras: flat fields only (6), Dresden-like (10 flat fields + 2 natural images), 3 shots."""
    base = tmp_path_factory.mktemp("small")
    drive = make_demo_drive(base / "drive", cameras=3, images_per_camera=12, height=128, width=192, seed=3)
    original = drive / "Images" / "Original"
    sources = sorted(p for p in original.iterdir() if p.is_dir())
    for source, (name, flats, naturals) in zip(sources, [("Flat_Only", 6, 0), ("Dresden_Like", 10, 2),
                                                          ("Few_Shots", 0, 3)]):
        _camera(original, source, name, flats, naturals)
    return drive


@pytest.fixture(scope="module")
def default_run(small_drive, tmp_path_factory):
    """The workflow with the default settings on the small drive (its working folder is reused below)."""
    work = tmp_path_factory.mktemp("defaults")
    return work, run_snakemake(work, small_drive)


def _skipped(results):
    return pd.read_csv(results / "skipped.csv", keep_default_na=False)


def test_drive_too_small_to_score_or_train_finishes(small_drive, default_run):
    work, run = default_run
    results = work / "results"
    for camera in ("Flat_Only", "Dresden_Like", "Few_Shots"):
        assert f"spnrestore: {camera}: " in run.output and "nothing left to score" in run.output
    assert "too few images to train: 0, need 2" in run.output
    scores = pd.read_csv(results / "spn" / "scores.csv")
    summary = pd.read_csv(results / "spn" / "identification.csv")
    assert scores.empty and summary.empty and "pce" in scores.columns and "accuracy" in summary.columns
    assert "no image was scored" in (results / "logs" / "identification.log").read_text()
    notes = _skipped(results)
    notes = notes[notes["stage"] == "plan"]
    assert set(notes["camera"]) == {"Flat_Only", "Dresden_Like", "Few_Shots", ""}
    assert notes["reason"].str.contains("lower spn.fingerprint_images").all()
    assert not (results / "model").exists() and not (results / "evaluation").exists()
    assert "evaluation.methods: 'drive' left out: this drive trains no model and reuses none" in run.output
    for camera in ("Flat_Only", "Dresden_Like", "Few_Shots"):
        assert (small_drive / "Images" / "SPN" / camera / "fingerprint.npy").is_file()
        # written with the fingerprint; the calibration itself is the evaluation's, and there is none
        assert (small_drive / "Images" / "SPN" / camera / "calibration_set.npz").is_file()
        assert not (small_drive / "Images" / "SPN" / camera / "calibration.json").exists()


def test_fewer_fingerprint_images_scores_the_natural_images(small_drive, tmp_path):
    run = run_snakemake(tmp_path, small_drive, config=("spn={fingerprint_images: 10}",))
    results = tmp_path / "results"
    assert "Dresden_Like: 12 originals: 10 fingerprint" in run.output
    scores = pd.read_csv(results / "spn" / "scores.csv", keep_default_na=False)
    assert set(scores["camera"]) == {"Dresden_Like"} and scores["image"].nunique() == 2
    own = scores[scores["match"] & (scores["quality"] == "original")]
    assert (own["pce"] > 60).all(), own  # 10 flat fields identify the two natural images
    summary = pd.read_csv(results / "spn" / "identification.csv", keep_default_na=False)
    assert set(summary["camera"]) == {"Dresden_Like", "all"}


def test_reused_model_on_a_drive_with_nothing_to_evaluate(small_drive, default_run, tmp_path):
    """model.checkpoint on a drive whose every image builds a fingerprint (the default run's folder: only the
    evaluation's jobs are added): the evaluation, results and figures are written, empty, and say why. Each
    camera is calibrated on its fingerprint's images; the one with 3 of them, too few, gets plain. The model
    is a copy of the shipped one, given by path as another drive's model would be."""
    from spnrestore.model.pretrained import pretrained_checkpoint

    work, _ = default_run
    checkpoint = tmp_path / "other_drive_restorer.pt"
    shutil.copyfile(pretrained_checkpoint(), checkpoint)
    run = run_snakemake(work, small_drive, config=(f"model={{checkpoint: {checkpoint}}}", FEW_METHODS))
    results = work / "results"
    assert "this drive trains nothing" in run.output
    assert pd.read_csv(results / "evaluation" / "metrics.csv").empty
    assert "No image was evaluated" in (results / "evaluation" / "results.md").read_text()
    assert "no image was evaluated" in (results / "logs" / "evaluation.log").read_text()
    for figure in ("roc_new_drive.png", "pce_new_drive.png", "residual_crops.png"):
        assert (results / "evaluation" / "plots" / figure).stat().st_size > 0
    calibrations = {camera: json.loads((small_drive / "Images" / "SPN" / camera / "calibration.json").read_text())
                    for camera in ("Flat_Only", "Dresden_Like", "Few_Shots")}
    assert {camera: c["images"] for camera, c in calibrations.items()} == {
        "Flat_Only": 6, "Dresden_Like": 12, "Few_Shots": 3}
    for calibration in calibrations.values():
        assert sorted(calibration["qualities"]) == sorted(QUALITIES)
        assert {e["chosen"] for e in calibration["qualities"].values()} <= {"plain", "li2010", "drive"}
    few = calibrations["Few_Shots"]
    assert few["usable"] is None and few["note"].startswith("too few known images to calibrate (3, need 6)")
    assert {e["chosen"] for e in few["qualities"].values()} == {"plain"}


TINY_TRAIN = ("train={settings: {steps: 4, batch_size: 4, checkpoint_every: 2, num_workers: 0, progress: false, "
              "model: {width: 8, max_width: 16, depth: 2, blocks: 1, hourglass: 1, hourglass_depth: 1, q_embed: 16}, "
              "discriminator: {width: 8, layers: 2}, val_images_per_camera: 1, val_image_crop: 256}}",
              "dataset={patch: 64, stride: 256, max_patches_per_image: 8}", FEW_METHODS)


def test_a_first_try_with_two_real_cameras_of_three_photos(samples, tmp_path):
    """The two real DNG samples copied three times each into two camera folders: with the defaults every image
    builds a fingerprint (nothing to score, nothing to train); with spn.fingerprint_images 2 the rest is
    scored, and the run still ends (exit 0) with every summary written, whatever the split gives."""
    original = tmp_path / "drive" / "Images" / "Original"
    for camera, sample in (("Blackmagic_4K", "Blackmagic_Pocket_Cinema_Camera_4K/Blackmagic.dng"),
                           ("Canon_6D", "Canon_EOS_6D_linear/canon_eos_6d.dng")):
        (original / camera).mkdir(parents=True)
        for i in range(3):
            shutil.copyfile(samples / sample, original / camera / f"IMG_{i}.DNG")
    work = tmp_path / "work"
    work.mkdir()
    first = run_snakemake(work, tmp_path / "drive", config=TINY_TRAIN)
    assert "too few images to train: 0, need 2" in first.output and "nothing left to score" in first.output
    assert pd.read_csv(work / "results" / "spn" / "scores.csv").empty
    second = run_snakemake(work, tmp_path / "drive", config=("spn={fingerprint_images: 2}", *TINY_TRAIN))
    assert "Blackmagic_4K: 3 originals: 2 fingerprint, 1 " in second.output
    scores = pd.read_csv(work / "results" / "spn" / "scores.csv", keep_default_na=False)
    assert len(scores[["camera", "image"]].drop_duplicates()) == 2  # one image of each camera
    own = scores[scores["match"] & (scores["quality"] == "original")]
    assert (own["pce"] > 60).all()  # copies of a fingerprint image: the same sensor, trivially
    results = work / "results"
    if (results / "model" / "restorer.pt").exists():  # the split gave at least two training images
        assert (results / "evaluation" / "metrics.csv").is_file() and (results / "evaluation" / "results.md").is_file()
        for camera in ("Blackmagic_4K", "Canon_6D"):
            calibration = json.loads((tmp_path / "drive" / "Images" / "SPN" / camera / "calibration.json").read_text())
            assert sorted(calibration["qualities"]) == sorted(QUALITIES)


def test_a_target_named_relative_to_the_working_folder(small_drive, tmp_path):
    """`snakemake results/spn/identification.csv`, a path the README names, plans that file's jobs."""
    run = run_snakemake(tmp_path, small_drive, "-n", "results/spn/identification.csv")
    assert "identification" in run.output and "MissingRuleException" not in run.output
