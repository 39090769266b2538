"""The run's plan outside the Snakefile (spnrestore.stages.plan): computed once per configuration and drive
listing, cached in the working folder, and made without torch (a reused model's metadata only)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from spnrestore.config import load_yaml
from spnrestore.errors import SpnRestoreError
from spnrestore.model.checkpoint import load_checkpoint
from spnrestore.model.checkpoint_metadata import read_metadata
from spnrestore.model.pretrained import pretrained_checkpoint
from spnrestore.stages import plan as planning

ROOT = Path(__file__).resolve().parents[1]


def _drive(root: Path, cameras=3, images=12) -> Path:
    for c in range(cameras):
        folder = root / "Images" / "Original" / f"Cam_{c}"
        folder.mkdir(parents=True)
        for i in range(images):
            (folder / f"IMG_{i:03d}.DNG").write_bytes(b"x")
    (root / "Images" / "Original" / "Cam_0" / "notes.txt").write_text("not an image")
    return root


def _plan(tmp_path, drive, **overrides):
    base = load_yaml(ROOT / "config" / "config.yaml")
    return planning.workflow_plan(base, ROOT, {"external_drive": str(drive), "results_dir": str(tmp_path / "r"),
                                               **overrides}, {}, None)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_plan_holds_the_drive_its_roles_and_the_run(in_tmp):
    drive = _drive(in_tmp / "drive")
    plan = _plan(in_tmp, drive, spn={"fingerprint_images": 4})
    assert plan.cameras == ["Cam_0", "Cam_1", "Cam_2"] and len(plan.images) == 36
    assert any(s.path.endswith("notes.txt") for s in plan.skipped)
    for camera in plan.cameras:
        roles = list(plan.roles[camera].values())
        assert roles.count("fingerprint") == 4 and len(roles) == 12
    assert plan.trainable and plan.model == str(plan.paths.result("model/restorer.pt"))
    assert plan.methods == ["plain", "li2010", "phase", "shipped", "fused", "drive", "calibrated"] and plan.calibrate
    assert plan.drive_model_input == [plan.model] and plan.config["spn"]["fingerprint_images"] == 4
    assert plan.lines[0].startswith("Cam_0: 12 originals: 4 fingerprint")


def test_a_second_plan_comes_from_the_cache_until_the_drive_or_the_config_changes(in_tmp, monkeypatch):
    drive = _drive(in_tmp / "drive")
    first = _plan(in_tmp, drive)
    cached = list((in_tmp / planning.CACHE_DIR).glob("*.json"))
    assert len(cached) == 1

    plan_run = planning.plan_run

    def no_planning(*args, **kwargs):
        raise AssertionError("planned again")

    monkeypatch.setattr(planning, "plan_run", no_planning)
    assert _plan(in_tmp, drive) == first  # from the cache: the drive is not walked again
    with pytest.raises(AssertionError, match="planned again"):
        (drive / "Images" / "Original" / "Cam_1" / "IMG_new.DNG").write_bytes(b"x")
        _plan(in_tmp, drive)
    (drive / "Images" / "Original" / "Cam_1" / "IMG_new.DNG").unlink()
    with pytest.raises(AssertionError, match="planned again"):
        _plan(in_tmp, drive, batches_per_camera=3)
    monkeypatch.setattr(planning, "plan_run", plan_run)
    cached[0].write_bytes(b"damaged")
    assert _plan(in_tmp, drive) == first  # a damaged entry is planned again, not trusted


def test_errors_name_the_key_and_the_fix(in_tmp):
    drive = _drive(in_tmp / "drive")
    with pytest.raises(SpnRestoreError, match=r"model.checkpoint = '/nope.pt'.*is not a file"):
        _plan(in_tmp, drive, model={"checkpoint": "/nope.pt"})
    with pytest.raises(SpnRestoreError, match=r"evaluation.methods: residual method 'bm3d' is unknown"):
        _plan(in_tmp, drive, evaluation={"methods": ["plain", "bm3d"]})
    with pytest.raises(SpnRestoreError, match="model.checkpoint: .*other settings"):
        _plan(in_tmp, drive, model={"checkpoint": "pretrained"}, spn={"sigma": 3.0})


def test_checkpoint_metadata_without_torch_is_the_payload_less_its_tensors(tmp_path):
    path = pretrained_checkpoint()
    meta, full = read_metadata(path), load_checkpoint(path)
    assert set(meta) == set(full)
    assert meta["residual"] == full["residual"] and meta["model_config"] == full["model_config"]
    assert all(v is None for v in meta["model_state"].values())
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SpnRestoreError, match="bad.pt: truncated or not a PyTorch checkpoint"):
        read_metadata(bad)


def test_planning_a_drive_that_reuses_the_shipped_model_imports_no_torch(tmp_path):
    drive = _drive(tmp_path / "drive")
    code = (
        "import sys\n"
        "from spnrestore.config import load_yaml\n"
        "from spnrestore.stages.plan import workflow_plan\n"
        f"base = load_yaml({str(ROOT / 'config' / 'config.yaml')!r})\n"
        f"plan = workflow_plan(base, {str(ROOT)!r}, {{'external_drive': {str(drive)!r}, "
        "'model': {'checkpoint': 'pretrained'}}, {}, None)\n"
        "assert plan.reused_model and plan.holdout == [] and not plan.trainable\n"
        "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
