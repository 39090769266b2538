"""The workflow passes `snakemake --lint` and is formatted with snakefmt (both checked in CI)."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT
from spnrestore.demo import make_demo_drive
from workflow_runner import run_snakemake


def test_snakemake_lint(tmp_path):
    drive = make_demo_drive(tmp_path / "drive", cameras=2, images_per_camera=4, height=128, width=128)
    run = run_snakemake(tmp_path, drive, "--lint", check=False)
    assert run.returncode == 0 and "Congratulations, your workflow is in a good condition" in run.output, run.output


def test_snakefmt():
    files = [str(ROOT / "Snakefile"), *map(str, sorted((ROOT / "workflow" / "rules").glob("*.smk")))]
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
