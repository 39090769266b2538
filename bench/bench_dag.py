"""Dry-run and no-op timings of the workflow on a large drive of placeholder files.

Builds a drive of CAMERAS x IMAGES empty ``.DNG`` placeholders (empty files are
skipped by the develop stage, so a full run is quick), then measures with the
same Snakemake install:

- dry-run (``snakemake -n``) of the fresh drive,
- a real run (every develop job, JPEGs skipped for empty files),
- no-op run and dry-run of the up-to-date drive,
- jobs made pending by adding one image to one camera.

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


def snakemake(workdir: Path, drive: Path, qualities: str, *args: str) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "--config", f"external_drive={drive}", f"results_dir={workdir / 'results'}", f"QUALITY_LEVELS={qualities}",
           "--until", "manifest", *args]
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
        t, out = snakemake(workdir, drive, args.qualities, "-n")
        rows.append(("dry-run, fresh drive", t, pending_jobs(out)))
        t, out = snakemake(workdir, drive, args.qualities)
        rows.append(("full run (placeholders are skipped)", t, pending_jobs(out)))
        t, out = snakemake(workdir, drive, args.qualities)
        rows.append(("no-op run, up-to-date drive", t, pending_jobs(out)))
        t, out = snakemake(workdir, drive, args.qualities, "-n")
        rows.append(("dry-run, up-to-date drive", t, pending_jobs(out)))
        (drive / "Images" / "Original" / "Camera_03" / "IMG_new.DNG").touch()
        t, out = snakemake(workdir, drive, args.qualities, "-n")
        rows.append(("dry-run after adding one image", t, pending_jobs(out)))
    n = args.cameras * args.images
    print(f"\nDrive: {args.cameras} cameras x {args.images} images = {n} images, qualities {args.qualities}\n")
    print("| case | seconds | jobs pending |")
    print("| --- | ---: | ---: |")
    for name, seconds, jobs in rows:
        print(f"| {name} | {seconds:.1f} | {jobs} |")


if __name__ == "__main__":
    main()
