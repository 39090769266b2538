"""Shared fixtures: project paths, the real DNG samples, small generated drives."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "data" / "raw-samples"


def pytest_collection_modifyitems(session, config, items):
    """Files with end-to-end runs (a test marked ``slow``) first, each file's tests together, in collection
    order otherwise. ``bash run.sh test`` runs two pytest-xdist workers that take whole files in this order
    (``--dist loadfile --no-loadscope-reorder``): the long files start at once, the short ones fill the end
    of both workers. A session fixture is made in each worker that uses it, so one shared by several files
    would be made twice (``developed_run`` serves one file). The SLURM tests need no place of their own: the
    other tests never wait on SLURM (:func:`_no_slurm_controller_wait`)."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


SHIMS = "no-slurm"


def without_shims(path: str) -> str:
    """``path`` (a PATH value) without the folder of :func:`_no_slurm_controller_wait`."""
    return os.pathsep.join(p for p in path.split(os.pathsep) if not Path(p).name.startswith(SHIMS))


@pytest.fixture(scope="session", autouse=True)
def _no_slurm_controller_wait(tmp_path_factory):
    """Workflow tests see an ``scontrol`` that fails at once. The SLURM executor plugin, which Snakemake
    imports at every start, asks ``scontrol show config`` for a help text; where SLURM's tools are installed
    and no controller answers (once test_slurm.py, which installs SLURM where it can, stopped its daemons, or
    on a machine with the tools only) that waits about 9 s, in every Snakemake start of every workflow test.
    test_slurm.py restores the real PATH for itself."""
    real = without_shims(os.environ.get("PATH", ""))
    shims = tmp_path_factory.mktemp(SHIMS)
    script = shims / "scontrol"
    script.write_text("#!/bin/sh\necho 'scontrol: not for the workflow tests (tests/conftest.py)' >&2\nexit 1\n")
    script.chmod(0o755)
    os.environ["PATH"] = f"{shims}{os.pathsep}{real}"
    yield
    os.environ["PATH"] = real


@pytest.fixture(scope="session", autouse=True)
def _openvino_cache(tmp_path_factory):
    """Converted models go to a folder of this session (the workflows' jobs inherit it), not the user's cache."""
    os.environ["SPNRESTORE_CACHE"] = str(tmp_path_factory.mktemp("spnrestore-cache"))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real camera DNGs beside the project (read-only); tests skip when absent."""
    if not SAMPLES.is_dir():
        pytest.skip(f"real DNG samples not found at {SAMPLES}")
    return SAMPLES


def sha256_tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root``, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


TINY = (
    "spn={fingerprint_images: 8}",
    "batches_per_camera=2",
    # one model method (the drive's) beside the ones that need none: the full run covers the default methods
    "evaluation={methods: [plain, li2010, drive, calibrated]}",
    "dataset={fractions: {train: 0.5, val: 0.2, test: 0.3}, patch: 64, stride: 64, max_patches_per_image: 4}",
    "train={settings: {steps: 6, batch_size: 8, checkpoint_every: 3, num_workers: 0, progress: false, "
    "model: {width: 8, max_width: 16, depth: 2, blocks: 1, hourglass: 1, hourglass_depth: 1, q_embed: 16}, "
    "discriminator: {width: 8, layers: 2}, adv_start_step: 3}}",
)
LONELY = "Lonely_Cam"


@pytest.fixture(scope="session")
def developed_run(tmp_path_factory):
    """The whole workflow, training included, on a drive of developed originals: camera JPEGs (some tagged
    portrait, some turned by the camera without a tag), PNG and 16-bit TIFF originals, flat-field JPEGs in each
    camera's ``flat/`` folder, and a camera with a single image. Its tiny model serves the tests that reuse
    a trained model (``results/model/restorer.pt``)."""
    from spnrestore.demo.developed_drive import make_developed_drive
    from spnrestore.stages.develop import read_develop_table
    from workflow_runner import run_snakemake

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
