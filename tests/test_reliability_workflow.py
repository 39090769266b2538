"""Reliability of the workflow end to end (issue 7): kill -9 of jobs and of Snakemake, the lock, a drive with
hostile names and several image sizes run with read-only originals, training killed and resumed, and the images
that cannot build or join a fingerprint. See docs/reliability.md for the table of cases.

Jobs are stopped at a chosen point by a ``sitecustomize`` hook put on the jobs' PYTHONPATH: when an atomic write
is about to rename its finished temporary file onto a path that contains a marker (after skipping a given number
of such writes), the job kills itself with SIGKILL, or waits (holding Snakemake's lock) until the test lets it go.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spnrestore.stages.develop import read_develop_table
from spnrestore.stages.roles import EVALUATED_ROLES
from spnrestore.config import default_config
from spnrestore.demo import make_demo_drive
from spnrestore.raw import develop_raw
from spnrestore.jpeg import encode_jpeg, read_rgb
from spnrestore.spn import extract_residual
from workflow_runner import ROOT, group_members, pending_by_rule, run_snakemake, start_snakemake

pytestmark = pytest.mark.slow

QUALITIES = (90, 60, 30)
SMALL = ("spn={fingerprint_images: 2}", "batches_per_camera=1", "dataset={holdout_count: 0}")
LOCKED = "Directory cannot be locked"

HOOK = '''
import os, signal, time
_markers = [m for m in os.environ.get("SPNRESTORE_TEST_AT", "").split("|") if m]
_skip = [int(os.environ.get("SPNRESTORE_TEST_SKIP", "0"))]
if _markers:
    _replace = os.replace

    def _stop_here(src, dst, *args, **kwargs):
        """Kill this job, or hold it, just before a matching atomic write is renamed into place."""
        match = os.fspath(src).endswith(".tmp") and any(m in os.fspath(dst) for m in _markers)
        if match and _skip[0] > 0:
            _skip[0] -= 1
        elif match:
            control = os.environ["SPNRESTORE_TEST_CONTROL"]
            open(os.path.join(control, f"reached-{os.getpid()}"), "w").close()
            if os.environ.get("SPNRESTORE_TEST_DO") == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            deadline = time.monotonic() + 1800
            while not os.path.exists(os.path.join(control, "go")) and time.monotonic() < deadline:
                time.sleep(0.05)
        return _replace(src, dst, *args, **kwargs)

    os.replace = _stop_here
'''


def hook_env(tmp: Path, markers: list[str], do: str, skip: int = 0) -> dict[str, str]:
    """Environment for snakemake whose jobs stop (``do``: kill or hold) at the first write matching a marker
    after ``skip`` such writes (counted per job)."""
    hook_dir, control = tmp / "hook", tmp / "control"
    hook_dir.mkdir(exist_ok=True)
    control.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(HOOK)
    path = os.pathsep.join([str(hook_dir), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "SPNRESTORE_TEST_AT": "|".join(markers),
            "SPNRESTORE_TEST_DO": do, "SPNRESTORE_TEST_SKIP": str(skip), "SPNRESTORE_TEST_CONTROL": str(control)}


def wait_for(condition, proc=None, timeout: float = 1200.0, what: str = "condition") -> None:
    """Poll ``condition()`` until true; fail when ``proc`` ended first or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def kill_group(proc) -> None:
    """SIGKILL snakemake and every job of its process group; check that none survives."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while group_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_members(proc.pid) == []


def temp_files(root: Path) -> list[Path]:
    """Leftovers of atomic writes (``.<name>.<random>.tmp``) under ``root``."""
    return sorted(p for p in root.rglob(".*.tmp") if p.is_file())


def final_name(temp: Path) -> Path:
    """The path an atomic write's temporary file ``.<name>.<random>.tmp`` was to be renamed to."""
    return temp.with_name(temp.name[1:].rsplit(".", 2)[0])


def age(paths, seconds: float = 7200) -> None:
    """Set the modification time of ``paths`` ``seconds`` in the past (a re-run that happens later)."""
    then = time.time() - seconds
    for p in paths:
        os.utime(p, (then, then))


def small_drive(base: Path, seed: int) -> Path:
    """Two cameras x three 128x192 DNGs."""
    return make_demo_drive(base / "drive", cameras=2, images_per_camera=3, height=128, width=192, seed=seed)


def stage_targets(work: Path, drive: Path) -> list[str]:
    """The manifest and the residual table of every camera (batches_per_camera=1: batch b0000)."""
    cameras = sorted(p.name for p in (drive / "Images" / "Original").iterdir())
    # targets relative to the working folder, as the rules' outputs under it are written
    return ["manifest", *(f"results/batches/residual/{c}/b0000.csv" for c in cameras)]


def check_outputs_equal_a_clean_development(drive: Path, work: Path) -> None:
    """Every original is in the manifest; its JPEGs are byte-equal to a fresh development encoded here, and its
    residuals equal the residual of those JPEGs computed here."""
    settings = default_config()
    manifest = read_develop_table(work / "results" / "manifest.csv")
    originals = sorted((drive / "Images" / "Original").rglob("*.[Dd][Nn][Gg]"))
    assert len(manifest) == len(originals) and (manifest["status"] == "ok").all()
    for raw in originals:
        rgb = develop_raw(raw, settings["develop"]).rgb
        for q in QUALITIES:
            jpeg = drive / "Images" / "Compressed" / raw.parent.name / str(q) / f"{raw.stem}.jpg"
            assert jpeg.read_bytes() == encode_jpeg(rgb, q, settings["jpeg"]["chroma_subsampling"]), jpeg
            residual = np.load(drive / "Images" / "SPN" / raw.parent.name / str(q) / f"{raw.stem}.npy")
            assert residual.shape == rgb.shape[:2] and residual.dtype == settings["storage"]["residual_dtype"]
            np.testing.assert_allclose(residual.astype(np.float32),
                                       extract_residual(read_rgb(jpeg), sigma=settings["spn"]["sigma"]),
                                       rtol=2.0**-11, atol=1e-5)


# ---------------------------------------------------------------- kill -9 of jobs while they write


@pytest.fixture(scope="module")
def killed_jobs(tmp_path_factory):
    """Run 1 kills the develop job of camera A and the residual job of camera B each at the rename of an atomic
    write; run 2 is the plain re-run (after the leftovers have aged two hours)."""
    base = tmp_path_factory.mktemp("killed_jobs")
    drive = small_drive(base, seed=11)
    cam_a, cam_b = sorted(p.name for p in (drive / "Images" / "Original").iterdir())
    work = base / "work"
    work.mkdir()
    markers = [f"/Compressed/{cam_a}/60/", f"/SPN/{cam_b}/30/"]
    log = base / "run1.log"
    proc = start_snakemake(work, drive, *stage_targets(work, drive), config=SMALL, log=log,
                           env=hook_env(base, markers, "kill"))
    proc.wait(timeout=600)
    temps = temp_files(drive / "Images")
    after_kill = {"rc": proc.returncode, "output": log.read_text(), "temps": temps,
                  "finals_present": [final_name(t).exists() for t in temps],
                  "killed": len(list((base / "control").glob("reached-*"))),
                  "tables": sorted(p.relative_to(work) for p in (work / "results" / "batches").rglob("*.csv"))}
    age(temps)
    rerun = run_snakemake(work, drive, *stage_targets(work, drive), config=SMALL)
    return {"drive": drive, "work": work, "cams": (cam_a, cam_b), "after_kill": after_kill, "rerun": rerun}


def test_killed_job_leaves_no_file_under_its_final_name(killed_jobs):
    drive, (cam_a, cam_b) = killed_jobs["drive"], killed_jobs["cams"]
    state = killed_jobs["after_kill"]
    assert state["rc"] != 0 and state["killed"] == 2
    assert "Error in rule develop" in state["output"] and "Error in rule residual" in state["output"]
    # one write interrupted in each killed job (by construction of the hook), its final name never written
    assert sorted(t.parent.relative_to(drive / "Images") for t in state["temps"]) == [
        Path("Compressed", cam_a, "60"), Path("SPN", cam_b, "30")]
    assert state["finals_present"] == [False, False]
    assert Path(f"results/batches/develop/{cam_a}/b0000.csv") not in state["tables"]
    assert Path(f"results/batches/residual/{cam_b}/b0000.csv") not in state["tables"]


def test_rerun_after_killed_jobs_equals_a_clean_run(killed_jobs):
    check_outputs_equal_a_clean_development(killed_jobs["drive"], killed_jobs["work"])


def test_rerun_removes_the_temporary_files_of_killed_writes(killed_jobs):
    assert temp_files(killed_jobs["drive"] / "Images") == []


# ------------------------------------------------------- kill -9 of Snakemake itself, and its lock


@pytest.fixture(scope="module")
def killed_snakemake(tmp_path_factory):
    """SIGKILL of snakemake and its jobs while a develop job is between writing a JPEG and renaming it; then
    a plain re-run, ``--unlock``, and the re-run again."""
    base = tmp_path_factory.mktemp("killed_snakemake")
    drive = small_drive(base, seed=12)
    cam_a = sorted(p.name for p in (drive / "Images" / "Original").iterdir())[0]
    work = base / "work"
    work.mkdir()
    targets = stage_targets(work, drive)
    proc = start_snakemake(work, drive, *targets, config=SMALL, log=base / "run1.log",
                           env=hook_env(base, [f"/Compressed/{cam_a}/60/"], "hold"))
    wait_for(lambda: any((base / "control").glob("reached-*")), proc, what="the develop job to reach the write")
    kill_group(proc)
    temps = temp_files(drive / "Images")
    state = {"temps": temps, "finals_present": [final_name(t).exists() for t in temps]}
    age(temps)
    locked = run_snakemake(work, drive, *targets, config=SMALL, check=False)
    unlock = run_snakemake(work, drive, "--unlock", *targets, config=SMALL, check=False)
    rerun = run_snakemake(work, drive, *targets, config=SMALL)
    return {"drive": drive, "work": work, "cam": cam_a, "state": state, "locked": locked, "unlock": unlock,
            "rerun": rerun}


def test_killed_snakemake_leaves_its_lock_and_unlock_names_the_fix(killed_snakemake):
    locked = killed_snakemake["locked"]
    assert locked.returncode != 0 and LOCKED in locked.output and "--unlock" in locked.output
    assert killed_snakemake["unlock"].returncode == 0


def test_killed_snakemake_write_never_reaches_the_final_name(killed_snakemake):
    state, drive = killed_snakemake["state"], killed_snakemake["drive"]
    folders = [t.parent.relative_to(drive / "Images") for t in state["temps"]]
    assert Path("Compressed", killed_snakemake["cam"], "60") in folders  # the held write; other jobs die anywhere
    assert not any(state["finals_present"])


def test_rerun_after_killed_snakemake_equals_a_clean_run(killed_snakemake):
    check_outputs_equal_a_clean_development(killed_snakemake["drive"], killed_snakemake["work"])


@pytest.fixture(scope="module")
def concurrent_runs(tmp_path_factory):
    """Run 1 holds its first develop job mid-write; meanwhile a second snakemake in the same working folder, then a
    third in another working folder on the same drive, are started; then run 1 is let go."""
    base = tmp_path_factory.mktemp("concurrent")
    drive = small_drive(base, seed=13)
    cam_a = sorted(p.name for p in (drive / "Images" / "Original").iterdir())[0]
    work, other = base / "work", base / "other"
    work.mkdir()
    other.mkdir()
    log = base / "run1.log"
    proc = start_snakemake(work, drive, *stage_targets(work, drive), config=SMALL, log=log,
                           env=hook_env(base, [f"/Compressed/{cam_a}/60/"], "hold"))
    wait_for(lambda: any((base / "control").glob("reached-*")), proc, what="the develop job to reach the write")
    second = run_snakemake(work, drive, *stage_targets(work, drive), config=SMALL, check=False)
    third = run_snakemake(other, drive, *stage_targets(other, drive), config=SMALL, check=False)
    (base / "control" / "go").touch()
    proc.wait(timeout=600)
    return {"drive": drive, "work": work, "other": other, "first": (proc.returncode, log.read_text()),
            "second": second, "third": third}


def test_second_run_in_the_same_folder_is_refused_by_the_lock(concurrent_runs):
    second = concurrent_runs["second"]
    assert second.returncode != 0 and LOCKED in second.output
    rc, output = concurrent_runs["first"]
    assert rc == 0, output[-3000:]
    check_outputs_equal_a_clean_development(concurrent_runs["drive"], concurrent_runs["work"])


def test_run_in_another_folder_on_the_same_drive_is_not_locked_and_corrupts_nothing(concurrent_runs):
    """Snakemake locks a working folder, not the drive: the third run writes the same files at the same time;
    atomic renames of identical content keep every file whole."""
    assert concurrent_runs["third"].returncode == 0, concurrent_runs["third"].output[-3000:]
    check_outputs_equal_a_clean_development(concurrent_runs["drive"], concurrent_runs["other"])
    assert temp_files(concurrent_runs["drive"] / "Images") == []


# ------------- hostile names, several sizes, read-only originals, training killed and resumed: one whole run

CAMERAS = ["-rf", "Cam 'q' \"dq\" $HOME `id`", "--config Kamera ü фото"]
FILES = ["-rf", "--config=x", "IMG 'q'", 'IMG "dq"', "IMG $HOME", "IMG `id`", "фото ü", "a b  c"]
# Extra shots of the first camera: 160x224 and transposed 192x128 (height x width) beside its 128x192 ones.
# With these names (stable hashes), 'big 1' and 'portrait 2' are among its 4 fingerprint images, the other two
# are evaluated (the first camera is the holdout camera), and each seen camera has test images.
OTHER_SIZES = {"big 1": (160, 224), "big 2": (160, 224), "portrait 1": (192, 128), "portrait 2": (192, 128)}
# storage.keep_residuals: every kind of output (the residuals of the JPEGs and of the originals, the methods'
# residuals) is written, so that each is checked under the hostile names; the methods: a classic one, the
# drive's model and the calibration (each camera's calibration set and calibration.json under its hostile name).
WHOLE = (
    "storage={keep_residuals: true}",
    "evaluation={methods: [plain, li2010, drive, calibrated]}",
    "spn={fingerprint_images: 4}",
    "batches_per_camera=2",
    "dataset={fractions: {train: 0.4, val: 0.3, test: 0.3}, patch: 32, stride: 32, max_patches_per_image: 8}",
    "train={settings: {steps: 24, batch_size: 8, lr: 1.0e-3, warmup_steps: 2, checkpoint_every: 6, log_every: 1, "
    "num_workers: 0, progress: false, model: {width: 8, max_width: 16, depth: 2, blocks: 1, hourglass: 1, "
    "hourglass_depth: 1, q_embed: 16}, discriminator: {width: 8, layers: 2}, adv_start_step: 6}}",
)


def hostile_drive(base: Path) -> Path:
    """Three cameras x eight 128x192 DNGs renamed to ``CAMERAS`` / ``FILES``, plus ``OTHER_SIZES`` in the first."""
    drive = make_demo_drive(base / "drive", cameras=3, images_per_camera=len(FILES), height=128, width=192, seed=7)
    original = drive / "Images" / "Original"
    for folder, camera in zip(sorted(original.iterdir()), CAMERAS):
        for raw, name in zip(sorted(folder.iterdir()), FILES):
            raw.rename(folder / f"{name}{raw.suffix}")
        folder.rename(original / camera)
    for size in set(OTHER_SIZES.values()):
        other = make_demo_drive(base / f"size{size[0]}x{size[1]}", cameras=1, images_per_camera=2, height=size[0],
                                width=size[1], seed=7)
        raws = sorted((other / "Images" / "Original").rglob("*.DNG"))
        for name, raw in zip([n for n, s in OTHER_SIZES.items() if s == size], raws):
            (original / CAMERAS[0] / f"{name}.DNG").write_bytes(raw.read_bytes())
    return drive


def tree_state(root: Path) -> dict[str, tuple]:
    """Per entry under ``root`` (itself included): SHA-256 (files), inode, mode, mtime and ctime in ns."""
    state = {}
    for p in [root, *sorted(root.rglob("*"))]:
        s = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        state[str(p.relative_to(root))] = (digest, s.st_ino, stat.S_IMODE(s.st_mode), s.st_mtime_ns, s.st_ctime_ns)
    return state


def set_writable(root: Path, writable: bool) -> None:
    """``chmod -R a-w root`` (writable False) or give the owner write permission back."""
    for p in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def names_outside(paths: list[Path]) -> set[str]:
    """Entries of ``paths`` (folders, not recursive) whose names come from the drive's camera or file names."""
    words = ("-rf", "--config", "IMG", "Cam ", "Kamera", "фото", "uid=")
    return {str(p / e.name) for p in paths if p.is_dir() for e in os.scandir(p) if e.name.startswith(words)}


def train_log_step(path: Path) -> int:
    """Last step logged in ``train_log.csv`` (0 while absent or empty)."""
    try:
        lines = [line for line in path.read_text().splitlines()[1:] if line.count(",") >= 9]
    except FileNotFoundError:
        return 0
    return int(lines[-1].split(",", 1)[0]) if lines else 0


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """The whole workflow on the hostile drive with ``chmod -R a-w`` originals: run 1 is killed (SIGKILL to
    snakemake and its jobs) while training writes its second checkpoint (step 12, the one of step 6 is in
    place); then ``--unlock`` and the re-run to the end."""
    base = tmp_path_factory.mktemp("whole")
    drive = hostile_drive(base)
    original = drive / "Images" / "Original"
    work = base / "work"
    work.mkdir()
    outside = [tmp_path_factory.getbasetemp(), base, ROOT, Path.home(), Path.cwd()]
    names_before = names_outside(outside)
    set_writable(original, False)
    before = tree_state(original)
    try:
        train_log = work / "results" / "model" / "work" / "train_log.csv"
        proc = start_snakemake(work, drive, config=WHOLE, log=base / "run1.log",
                               env=hook_env(base, ["/model/work/last.pt"], "hold", skip=1))
        wait_for(lambda: any((base / "control").glob("reached-*")), proc, what="the second checkpoint")
        kill_group(proc)
        killed_at = train_log_step(train_log)
        run_snakemake(work, drive, "--unlock", config=WHOLE)
        without_profile = run_snakemake(work, drive, "-n", "--workflow-profile", "none", config=WHOLE, check=False)
        rerun = run_snakemake(work, drive, config=WHOLE)
        after = tree_state(original)
        yield {"drive": drive, "work": work, "results": work / "results", "before": before, "after": after,
               "killed_at": killed_at, "without_profile": without_profile, "rerun": rerun, "names_before": names_before,
               "names_after": names_outside(outside), "base": base}
    finally:
        set_writable(original, True)



def test_read_only_originals_are_untouched_by_kill_and_whole_run(whole_run):
    """Content, inode, mode, mtime and ctime of every original and camera folder are unchanged. As root the
    missing write permission stops nothing, so the ctime check (changed by any write, rename or chmod) is what
    proves that no job opened an original for writing."""
    before, after = whole_run["before"], whole_run["after"]
    assert len(before) == 1 + len(CAMERAS) * (1 + len(FILES)) + len(OTHER_SIZES)
    assert all(mode & 0o222 == 0 for _, _, mode, _, _ in before.values())
    assert after == before


def test_hostile_names_reach_every_output_under_their_own_name(whole_run):
    drive, results = whole_run["drive"], whole_run["results"]
    manifest = read_develop_table(results / "manifest.csv")
    assert sorted(zip(manifest["camera"], manifest["image"])) == sorted(
        [(c, f) for c in CAMERAS for f in FILES] + [(CAMERAS[0], n) for n in OTHER_SIZES])
    assert (manifest["status"] == "ok").all()
    for row in manifest.itertuples():
        for q in QUALITIES:
            assert read_rgb(drive / "Images" / "Compressed" / row.camera / str(q) / f"{row.image}.jpg").shape == (
                row.height, row.width, 3)
            assert np.load(drive / "Images" / "SPN" / row.camera / str(q) / f"{row.image}.npy").shape == (
                row.height, row.width)
    for folder in ("Compressed", "SPN"):
        assert sorted(p.name for p in (drive / "Images" / folder).iterdir()) == sorted(CAMERAS)
    assert sorted(p.stem for p in (results / "fingerprints").glob("*.csv")) == sorted(CAMERAS)
    scores = pd.read_csv(results / "spn" / "scores.csv", keep_default_na=False)
    assert set(scores["camera"]) == set(scores["fingerprint"]) == set(CAMERAS)
    assert set(scores["image"]) <= set(FILES) | set(OTHER_SIZES)
    evaluation = pd.read_csv(results / "evaluation" / "scores.csv", keep_default_na=False)
    assert set(evaluation["camera"]) == set(CAMERAS) and set(evaluation["image"]) <= set(FILES) | set(OTHER_SIZES)
    restore = pd.concat(pd.read_csv(p, keep_default_na=False, dtype={"camera": str, "image": str})
                        for p in (results / "restore").glob("*.csv"))
    assert set(restore["camera"]) == set(CAMERAS) == {p.stem for p in (results / "restore").glob("*.csv")}
    assert set(zip(restore["camera"], restore["image"])) <= set(zip(manifest["camera"], manifest["image"]))
    # every computed method's residual of every evaluated image, stored under the hostile names (those of another
    # size than their camera's fingerprint too: computed and stored, but not scored)
    evaluated = set(map(tuple, manifest.loc[manifest["role"].isin(EVALUATED_ROLES), ["camera", "image"]].to_numpy()))
    odd = (CAMERAS[0], "big 2")
    assert odd in evaluated and odd not in set(zip(restore["camera"], restore["image"]))
    for method in ("li2010", "drive"):
        stored = (drive / "Images" / "SPN").glob(f"*/methods/{method}/30/*.npy")
        assert {(p.parts[-5], p.stem) for p in stored} == evaluated, method
    assert set(restore["method"]) == {"li2010", "drive"}
    for camera in CAMERAS:
        assert (drive / "Images" / "SPN" / camera / "calibration_set.npz").is_file()
        calibration = json.loads((drive / "Images" / "SPN" / camera / "calibration.json").read_text())
        assert calibration["camera"] == camera and sorted(calibration["qualities"]) == sorted(map(str, QUALITIES))
        log = (results / "logs" / "restore" / f"{camera}.log").read_text()
        for image in sorted(image for c, image in evaluated if c == camera):
            assert f"li2010, drive: {camera}/{image} (" in log, (camera, image)
    for name in ("metrics.csv", "results.md", "plots/training.png", "plots/roc_holdout.png"):
        assert (results / "evaluation" / name).stat().st_size > 0


def test_hostile_names_write_nothing_outside_the_drive_and_results(whole_run):
    """No entry named after a camera or file (or after a shell expansion of one) appears beside the test folders,
    in the project, the home or the current folder; under the test folder, only the expected trees are written."""
    assert whole_run["names_after"] == whole_run["names_before"]
    base, drive, work = whole_run["base"], whole_run["drive"], whole_run["work"]
    assert sorted(p.name for p in drive.iterdir()) == ["Images", "demo.json", "truth"]
    assert sorted(p.name for p in (drive / "Images").iterdir()) == ["Compressed", "Original", "SPN"]
    assert sorted(p.name for p in work.iterdir()) == [".snakemake", "results"]
    assert sorted(p.name for p in base.iterdir()) == sorted(
        ["drive", "work", "run1.log", "hook", "control", *{f"size{h}x{w}" for h, w in OTHER_SIZES.values()}])
    expanded = (os.path.expanduser("~"), "uid=")
    assert not [p for p in base.rglob("*") if any(e in p.name for e in expanded)]


def test_several_sizes_in_one_camera_use_the_majority_size(whole_run):
    """The fingerprint is built from the camera's most common size; the other sizes (larger, and transposed)
    are listed as not used with their size. A residual of another size is not scored against a fingerprint,
    and the log says so; a transposed one is either scored against the turned fingerprints or logged likewise."""
    results = whole_run["results"]
    camera = CAMERAS[0]
    table = pd.read_csv(results / "fingerprints" / f"{camera}.csv", keep_default_na=False).set_index("image")
    assert table.loc[table["used"]].index.isin(FILES).all() and table["used"].sum() == 2
    assert table.loc["big 1", "reason"] == "size 224x160 differs from the camera's 192x128"
    assert table.loc["portrait 2", "reason"].startswith("size 128x192 differs from the camera's 192x128")
    manifest = read_develop_table(results / "manifest.csv").set_index("image")
    odd = manifest[manifest["camera"] == camera].loc[["big 2", "portrait 1"]]
    assert odd[["width", "height"]].values.tolist() == [[224, 160], [128, 192]]
    # the originals are scored by develop (named by the original's path), the JPEGs by score
    logs = "".join(p.read_text() for rule in ("develop", "score")
                   for p in (results / "logs" / rule / camera).glob("*.log"))
    spn = whole_run["drive"] / "Images" / "SPN" / camera
    scores = pd.read_csv(results / "spn" / "scores.csv", keep_default_na=False)
    pairs = 4 * len(CAMERAS)  # each residual (original and 3 qualities) x each of the 3 fingerprints
    for name in ("big 2", "portrait 1"):
        sources = [f"{manifest.loc[name, 'path']} (development)", *(f"{spn / str(q) / name}.npy" for q in QUALITIES)]
        not_scored = sum(logs.count(f"not scored: {source} is ") for source in sources)
        scored = int((scores["image"] == name).sum())
        turned = name.startswith("portrait") and (not_scored, scored) == (0, pairs)
        assert (not_scored, scored) == (pairs, 0) or turned


def test_training_killed_mid_run_resumes_from_its_last_checkpoint(whole_run):
    results = whole_run["results"]
    log = (results / "logs" / "train.log").read_text()
    last = "results/model/work/last.pt"  # the results folder is named relative to the working folder
    resumed = int(log.split(f"resuming from {last} at step ", 1)[1].split(" ", 1)[0])
    assert (resumed, whole_run["killed_at"]) == (6, 12)


def test_killed_training_leaves_no_declared_output_so_it_is_simply_run_again(whole_run):
    """The train rule writes its declared outputs (model, log copies) only at its end, so a killed train job
    leaves none of them: even without the default profile's ``rerun-incomplete`` Snakemake has nothing
    incomplete to refuse and plans the train job again (the work folder it resumes from is no output)."""
    planned = whole_run["without_profile"]
    assert planned.returncode == 0 and "incomplete" not in planned.output
    assert "train" in pending_by_rule(planned.output)
    assert "rule train:" in whole_run["rerun"].output


def test_resumed_training_equals_an_uninterrupted_run(whole_run, tmp_path):
    """The same seed and settings, run here without interruption, give the same model within float tolerance."""
    import torch

    from spnrestore.model.checkpoint import load_checkpoint
    from spnrestore.model.train import train

    results = whole_run["results"]
    resumed = load_checkpoint(results / "model" / "restorer.pt")
    prints = {p.parent.name: p for p in (whole_run["drive"] / "Images" / "SPN").glob("*/fingerprint.npy")}
    with pytest.warns(UserWarning, match="HF loss"):
        train(results / "dataset", tmp_path / "restorer.pt", tmp_path / "work", resumed["train_config"],
              fingerprints=prints)
    reference = load_checkpoint(tmp_path / "restorer.pt")
    assert resumed["metrics"]["selected_step"] == reference["metrics"]["selected_step"]
    a, b = load_checkpoint(results / "model" / "work" / "last.pt"), load_checkpoint(tmp_path / "work" / "last.pt")
    assert a["step"] == b["step"] == 24
    for state in ("model_state", "discriminator_state"):
        for key in a[state]:
            torch.testing.assert_close(a[state][key], b[state][key], rtol=1e-5, atol=1e-6)
    for key in resumed["model_state"]:
        torch.testing.assert_close(resumed["model_state"][key], reference["model_state"][key], rtol=1e-5, atol=1e-6)


def test_training_log_is_whole_after_resume(whole_run):
    train_log = pd.read_csv(whole_run["results"] / "model" / "work" / "train_log.csv")
    assert train_log["step"].tolist() == list(range(1, 25))


# ------------------------------------------------ originals that cannot be developed into a usable residual

TINY_SETTINGS = ("spn={fingerprint_images: 3}", "batches_per_camera=1", "dataset={holdout_count: 0}")


@pytest.fixture(scope="module")
def tiny_image_run(tmp_path_factory):
    """Two cameras x four 128x192 DNGs, plus a 32x48 DNG in the first camera (below the 128 px the 4-level
    wavelet residual needs, and below the patch size); it is also one of that camera's 3 fingerprint images."""
    base = tmp_path_factory.mktemp("tiny")
    drive = make_demo_drive(base / "drive", cameras=2, images_per_camera=4, height=128, width=192, seed=14)
    tiny = make_demo_drive(base / "small", cameras=1, images_per_camera=1, height=32, width=48, seed=14)
    camera = sorted((drive / "Images" / "Original").iterdir())[0]
    target = camera / "tiny.DNG"
    target.write_bytes(next((tiny / "Images" / "Original").rglob("*.DNG")).read_bytes())
    work = base / "work"
    work.mkdir()
    run = run_snakemake(work, drive, "manifest", "identification", config=TINY_SETTINGS, check=False)
    return {"drive": drive, "work": work, "camera": camera.name, "path": target, "run": run}


def test_image_smaller_than_the_wavelet_minimum_is_skipped_by_name(tiny_image_run):
    run, results = tiny_image_run["run"], tiny_image_run["work"] / "results"
    assert run.returncode == 0, run.output[-3000:]
    manifest = read_develop_table(results / "manifest.csv").set_index("image")
    assert manifest.loc["tiny", "status"] == "skipped" and "too small" in manifest.loc["tiny", "reason"]
    assert (manifest.drop("tiny")["status"] == "ok").all()
    skipped = pd.read_csv(results / "skipped.csv", keep_default_na=False)
    assert str(tiny_image_run["path"]) in set(skipped["path"])
    develop_log = (results / "logs" / "develop" / tiny_image_run["camera"] / "b0000.log").read_text()
    assert f"{tiny_image_run['path']}: " in develop_log
    assert [p for p in (tiny_image_run["drive"] / "Images").rglob("tiny.*") if p != tiny_image_run["path"]] == []
    fingerprint = pd.read_csv(results / "fingerprints" / f"{tiny_image_run['camera']}.csv").set_index("image")
    assert not fingerprint.loc["tiny", "used"] and "48x32" in fingerprint.loc["tiny", "reason"]
    assert (results / "spn" / "identification.csv").is_file()


@pytest.fixture(scope="module")
def single_image_run(tmp_path_factory):
    """Two cameras x three DNGs and a third camera folder 'Solo' with a single DNG."""
    base = tmp_path_factory.mktemp("single")
    drive = make_demo_drive(base / "drive", cameras=3, images_per_camera=3, height=128, width=192, seed=15)
    original = drive / "Images" / "Original"
    third = sorted(original.iterdir())[2]
    for raw in sorted(third.iterdir())[1:]:
        raw.unlink()
    third.rename(original / "Solo")
    work = base / "work"
    work.mkdir()
    run = run_snakemake(work, drive, "manifest", "identification", config=SMALL, check=False)
    return {"drive": drive, "work": work, "run": run}


def test_camera_with_a_single_image_is_reported_not_fatal(single_image_run):
    run, results = single_image_run["run"], single_image_run["work"] / "results"
    assert run.returncode == 0, run.output[-3000:]
    skipped = pd.read_csv(results / "skipped.csv", keep_default_na=False)
    reasons = " ".join(skipped.loc[skipped["camera"] == "Solo", "reason"])
    assert "fingerprint" in reasons or ("Solo" in run.output and "no fingerprint" in run.output)
    scores = pd.read_csv(results / "spn" / "scores.csv", keep_default_na=False)
    assert "Solo" not in set(scores["fingerprint"]) and len(scores) > 0
