"""The workflow on a tiny demo drive: locally with --cores 2 vs through a local single-node SLURM.

    python bench/bench_slurm.py [--cameras 2] [--images 8] [--height 128] [--width 192] [--batches 2]
                                [--group RULE ...] [--components N]

Generates the drive once per run (same seed, same bytes), then runs the default
target with a small configuration (4 training steps of a tiny model): locally
(baseline), through SLURM with profiles/slurm at the plugin's default first
status check (40 s), at a 2 s first check, and, with ``--group RULE ...``, with
those rules in one group per connected component (``--group develop residual``:
one SLURM job per batch for both stages; ``--components N`` puts N such
components into one job). Starts SLURM with tests/cluster/start_slurm.sh when it
is not running (root; stops it again at the end). Prints a markdown table: jobs
Snakemake ran, sbatch submissions, wall seconds and the ratio to the local run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spnrestore.demo import make_demo_drive

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "cluster"
TINY_CONFIG = CLUSTER / "tiny_workflow.yaml"


def slurm_up() -> bool:
    try:
        return "is UP" in subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return False


def run(base: Path, name: str, drive_args: dict, batches: int, *args: str) -> tuple[float, int, int]:
    """Run the default target on a fresh copy of the drive; return (seconds, jobs run, sbatch submissions)."""
    drive = make_demo_drive(base / name / "drive", **drive_args)
    workdir = base / name / "work"
    workdir.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args,
           "--configfile", str(TINY_CONFIG),
           "--config", f"external_drive={drive}", f"results_dir={workdir / 'results'}", f"batches_per_camera={batches}"]
    # the largest job (train) may ask for every CPU of the one node, not the profile's default 8
    env = {**os.environ, "SPNRESTORE_SLURM_CORES": str(len(os.sched_getaffinity(0)))}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, timeout=1800)
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        sys.exit(f"snakemake failed ({' '.join(cmd)}):\n{output[-4000:]}")
    jobs = len(re.findall(r"^Finished jobid: \d+ \(Rule: (?!all\))", output, re.MULTILINE))
    return seconds, jobs, len(re.findall(r"has been submitted with SLURM jobid", output))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=2)
    parser.add_argument("--images", type=int, default=8, help="images per camera")
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--batches", type=int, default=2, help="batches_per_camera")
    parser.add_argument("--group", nargs="*", default=[], help="rules to group per connected component")
    parser.add_argument("--components", type=int, default=1, help="connected components per group job")
    args = parser.parse_args()
    started = False
    if not slurm_up():
        proc = subprocess.run(["bash", str(CLUSTER / "start_slurm.sh")], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"no local SLURM: {proc.stderr.strip()}")
        started = True
    drive_args = dict(cameras=args.cameras, images_per_camera=args.images, height=args.height, width=args.width,
                      seed=11)
    slurm = ["--workflow-profile", str(ROOT / "profiles" / "slurm")]
    cases = [("local, --cores 2", ["--cores", "2"]),
             ("SLURM, first status check 40 s (plugin default)", slurm),
             ("SLURM, first status check 2 s", [*slurm, "--slurm-init-seconds-before-status-checks", "2"])]
    if args.group:
        cases.append((f"SLURM, 2 s, grouped: {' + '.join(args.group)}, {args.components} per job",
                      [*slurm, "--slurm-init-seconds-before-status-checks", "2",
                       "--groups", *(f"{rule}=batch" for rule in args.group),
                       "--group-components", f"batch={args.components}"]))
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i, (name, extra) in enumerate(cases):
                rows.append((name, *run(Path(tmp), f"case{i}", drive_args, args.batches, *extra)))
    finally:
        if started:
            subprocess.run(["bash", str(CLUSTER / "stop_slurm.sh")], capture_output=True, text=True)
    n = args.cameras * args.images
    print(f"\nDrive: {args.cameras} cameras x {args.images} images of {args.height}x{args.width}, "
          f"{args.batches} batches per camera ({n} images); single-node SLURM on this machine\n")
    print("| run | jobs | sbatch submissions | wall (s) | x local |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, seconds, jobs, submitted in rows:
        print(f"| {name} | {jobs} | {submitted} | {seconds:.1f} | {seconds / rows[0][1]:.1f} |")


if __name__ == "__main__":
    main()
