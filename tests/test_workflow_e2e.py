"""End-to-end: the workflow on a small generated drive, then incremental re-runs."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import sha256_tree
from spnrestore.stages.develop import read_develop_table
from spnrestore.demo import make_demo_drive
from spnrestore.methods.calibration import CalibrationSet
from workflow_runner import pending_by_rule, run_snakemake

pytestmark = pytest.mark.slow

QUALITIES = (90, 60, 30)
SMALL = ("spn={fingerprint_images: 4}", "batches_per_camera=4", "dataset={holdout_count: 0}")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """Generate a 3-camera drive, add bad files, run the workflow once; yield paths and checksums."""
    base = tmp_path_factory.mktemp("e2e")
    drive = make_demo_drive(base / "drive", cameras=3, images_per_camera=8, height=256, width=384, seed=3)
    original = drive / "Images" / "Original"
    camera = sorted(p.name for p in original.iterdir())[0]
    (original / camera / "empty.DNG").write_bytes(b"")
    (original / camera / "notes.txt").write_text("lens cap on for the flat fields\n")
    before = sha256_tree(original)
    workdir = base / "work"
    workdir.mkdir()
    run = run_snakemake(workdir, drive, "manifest", "identification", config=SMALL)
    return {"drive": drive, "work": workdir, "before": before, "camera": camera, "run": run}


def test_every_jpeg_exists_and_no_residual_is_stored(finished_run):
    """By default (storage.keep_residuals false, camera-term target) the drive receives the JPEGs, the
    fingerprints and their calibration sets (the known images' leave-one-out fingerprints, written with the
    fingerprint) only: every residual is computed where it is scored. (No evaluation is asked for here, so no
    calibration.json: that is the rule calibrate's, tests/test_workflow_full.py.)"""
    drive, work = finished_run["drive"], finished_run["work"]
    manifest = read_develop_table(work / "results" / "manifest.csv")
    ok = manifest[manifest["status"] == "ok"]
    assert len(ok) == 24
    for row in ok.itertuples():
        for q in QUALITIES:
            jpeg = drive / "Images" / "Compressed" / row.camera / str(q) / f"{row.image}.jpg"
            assert jpeg.stat().st_size > 1000, jpeg
    spn = sorted(p.relative_to(drive / "Images" / "SPN").as_posix() for p in (drive / "Images" / "SPN").rglob("*")
                 if p.is_file())
    assert spn == [f"{camera}/{name}" for camera in sorted(set(ok["camera"]))
                   for name in ("calibration_set.npz", "fingerprint.npy")]
    # each calibration set holds the camera's usable fingerprint images (fewer than calibration.min_images
    # natural ones: all of them; the camera with empty.DNG among its 4 has 3)
    known = ok[ok["role"] == "fingerprint"]
    for camera in sorted(set(ok["camera"])):
        cset = CalibrationSet.load(drive / "Images" / "SPN" / camera / "calibration_set.npz")
        assert cset.camera == camera
        assert sorted(cset.images) == sorted(known.loc[known["camera"] == camera, "image"])
        assert cset.loo.shape[0] == cset.pixels.shape[0] == len(cset.images) >= 3
        assert cset.pixels.shape[1:] == (*cset.loo.shape[1:], 3)
    scores = pd.read_csv(work / "results" / "spn" / "scores.csv", keep_default_na=False)
    scored = ok[~ok["role"].isin(["fingerprint"])]
    assert len(scores) == len(scored) * (1 + len(QUALITIES)) * ok["camera"].nunique()
    assert set(ok["width"]) == {384} and set(ok["height"]) == {256}
    assert set(ok["raw_pattern"]) >= {"RGGB", "BGGR"}


def test_bad_files_are_reported_not_fatal(finished_run):
    skipped = pd.read_csv(finished_run["work"] / "results" / "skipped.csv", keep_default_na=False)
    reasons = dict(zip(skipped["path"].map(lambda p: p.rsplit("/", 1)[-1]), skipped["reason"]))
    assert "empty" in reasons["empty.DNG"]
    assert "not a RAW image" in reasons["notes.txt"]


def test_originals_are_unchanged(finished_run):
    assert sha256_tree(finished_run["drive"] / "Images" / "Original") == finished_run["before"]


def test_identification_summary(finished_run):
    """Small fingerprints (4 images of 256x384) identify weakly, but never falsely; JPEG lowers the PCE."""
    summary = pd.read_csv(finished_run["work"] / "results" / "spn" / "identification.csv", keep_default_na=False)
    overall = summary[summary["camera"] == "all"].set_index("quality")
    assert set(overall.index) == {"original", "90", "60", "30"}
    assert (overall["max_pce_nonmatch"] < 60).all()
    assert overall.loc["original", "median_pce_match"] > overall.loc["30", "median_pce_match"]
    assert (overall["n_images"] == overall.loc["original", "n_images"]).all()


def test_kept_residuals_score_as_computed_ones(finished_run, tmp_path):
    """storage.keep_residuals: true stores every residual (float16) and reads them back: the same scores as the
    default run that computes them, every PCE within 0.1 % of max(|PCE|, 60) (the storage contract of
    tests/test_residual_storage.py) and the same decisions."""
    import shutil

    import numpy as np

    drive = tmp_path / "drive"
    shutil.copytree(finished_run["drive"] / "Images" / "Original", drive / "Images" / "Original")
    work = tmp_path / "work"
    work.mkdir()
    run_snakemake(work, drive, "manifest", "identification", config=(*SMALL, "storage={keep_residuals: true}"))
    keys = ["camera", "image", "quality", "fingerprint"]
    kept, computed = (pd.read_csv(w / "results" / "spn" / "scores.csv", keep_default_na=False).set_index(keys)
                      .sort_index() for w in (work, finished_run["work"]))
    assert kept.index.equals(computed.index) and len(kept) > 0
    assert (np.abs(kept["pce"] - computed["pce"]) <= 1e-3 * np.maximum(computed["pce"].abs(), 60)).all()
    assert ((kept["pce"] > 60) == (computed["pce"] > 60)).all()
    scored = computed.reset_index()[["camera", "image"]].drop_duplicates()
    for row in scored.itertuples():
        for source in ("original", *map(str, QUALITIES)):
            assert (drive / "Images" / "SPN" / row.camera / source / f"{row.image}.npy").is_file()


def test_up_to_date_then_one_changed_original(finished_run):
    drive, work, camera = finished_run["drive"], finished_run["work"], finished_run["camera"]
    dry = run_snakemake(work, drive, "-n", "manifest", "identification", config=SMALL)
    assert "Nothing to be done" in dry.output, dry.output[-2000:]

    manifest = read_develop_table(work / "results" / "manifest.csv")
    usable = manifest[(manifest["camera"] == camera) & (manifest["status"] == "ok")]
    changed = usable[usable["role"] != "fingerprint"].iloc[0]
    donor = usable[usable["image"] != changed.image].iloc[0]
    path = drive / "Images" / "Original" / camera / changed.path.rsplit("/", 1)[-1]
    path.write_bytes((drive / "Images" / "Original" / camera / donor.path.rsplit("/", 1)[-1]).read_bytes())
    dry = run_snakemake(work, drive, "-n", "manifest", "identification", config=SMALL)
    pending = pending_by_rule(dry.output)
    assert pending == {"develop": 1, "manifest": 1, "score": 1, "identification": 1}


def _restore_threads(output: str) -> dict[str, int]:
    """camera -> threads of each restore job of a dry-run's listing."""
    found = {}
    for block in output.split("rule restore:")[1:]:
        block = block.split("\n\n", 1)[0]
        camera = block.split("wildcards: camera=", 1)[1].split()[0]
        threads = block.split("threads: ", 1)[1].split()[0] if "threads: " in block else "1"
        found[camera] = int(threads)
    return found


def test_restore_jobs_share_the_cores_by_their_evaluated_images(tmp_path):
    """Without --resources (a CPU, or a cluster) the restore jobs run side by side: each takes its camera's
    share of the cores (at most 4), so the holdout camera, all of whose images are evaluated, gets more than a
    seen camera, of which only the test images are; where the jobs take turns on a GPU each has 4."""
    drive = make_demo_drive(tmp_path / "drive", cameras=3, images_per_camera=10, height=256, width=384, seed=5)
    work = tmp_path / "work"
    work.mkdir()
    config = ("spn={fingerprint_images: 4}", "dataset={holdout_count: 1}")
    many = _restore_threads(run_snakemake(work, drive, "-n", "evaluation", "--cores", "16", config=config).output)
    assert len(many) == 3 and all(1 <= t <= 4 for t in many.values()), many
    holdout = max(many, key=many.get)
    assert all(many[holdout] > t for c, t in many.items() if c != holdout), many
    few = _restore_threads(run_snakemake(work, drive, "-n", "evaluation", config=config).output)  # 2 cores
    assert set(few.values()) == {1}
    turns = run_snakemake(work, drive, "-n", "evaluation", "--cores", "16", "--resources", "gpu=1", config=config)
    assert set(_restore_threads(turns.output).values()) == {4}
