"""Dry-run and no-op timings of the workflow on a large drive of placeholder files.

Builds a drive of CAMERAS x IMAGES empty ``.DNG`` placeholders, then measures with the same Snakemake
install:

- dry-run (``snakemake -n``) of the whole workflow on the fresh drive, twice (the second reads the run's plan
  from its cache in the working folder, ``spnrestore.stages.plan``),
- dry-run of the fresh drive up to the manifest,
- dry-run of the whole workflow after adding one image to one camera.

(A real run of the placeholders is no longer measured here: the develop jobs score their originals against
the fingerprints, which empty files cannot build. The demo's dry-run after a run: ``snakemake -n`` there.)

Usage: python bench/bench_dag.py [--cameras 10] [--images 1000] [--qualities 90,60,30]
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, drive: Path, qualities: str, *args: str, until: bool = True) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "--config", f"external_drive={drive}", f"results_dir={workdir / 'results'}", f"QUALITY_LEVELS={qualities}",
           *(["--until", "manifest"] if until else []), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout + proc.stderr


def pending_jobs(output: str) -> int:
    match = re.search(r"^total\s+(\d+)", output, re.MULTILINE)
    return int(match.group(1)) if match else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--images", type=int, default=1000, help="images per camera")
    parser.add_argument("--qualities", default="90,60,30")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        drive, workdir = tmp / "drive", tmp / "work"
        for c in range(args.cameras):
            folder = drive / "Images" / "Original" / f"Camera_{c:02d}"
            folder.mkdir(parents=True)
            for i in range(args.images):
                (folder / f"IMG_{i:05d}.DNG").touch()
        workdir.mkdir()
        rows = []
        t, out = snakemake(workdir, drive, args.qualities, "-n", until=False)
        rows.append(("dry-run of the whole workflow, fresh drive (plans the run)", t, pending_jobs(out)))
        t, out = snakemake(workdir, drive, args.qualities, "-n", until=False)
        rows.append(("the same again (the plan from its cache)", t, pending_jobs(out)))
        t, out = snakemake(workdir, drive, args.qualities, "-n")
        rows.append(("dry-run, fresh drive", t, pending_jobs(out)))
        (drive / "Images" / "Original" / "Camera_03" / "IMG_new.DNG").touch()
        t, out = snakemake(workdir, drive, args.qualities, "-n", until=False)
        rows.append(("dry-run of the whole workflow after adding one image (plans again)", t, pending_jobs(out)))
    n = args.cameras * args.images
    print(f"\nDrive: {args.cameras} cameras x {args.images} images = {n} images, qualities {args.qualities}\n")
    print("| case | seconds | jobs pending |")
    print("| --- | ---: | ---: |")
    for name, seconds, jobs in rows:
        print(f"| {name} | {seconds:.1f} | {jobs} |")


if __name__ == "__main__":
    main()
