"""Benchmark: a restore job's threads around the model (issue 16), on a finished run of ``bench_drive.py``.

On a workstation with one GPU the restore jobs take turns on it (``--resources gpu=1``); while the model runs,
the job's other threads read the next JPEGs and compute their residuals, and score the restored residuals
(``stages.restore.restore_camera``, ``threads``). This machine has no GPU, so the model's turn is stood in for
by a wait of the H100's measured time for the shipped model (``--gpu-s-per-mp``, default 0.54 s per 24 MP,
docs/model.md) that returns the plain residual (what an untrained model returns); reading, residuals and
scores are the real ones, on the CPU. Every non-fingerprint image of the run's cameras is restored at every
quality (a role of ``test`` for each), once per thread count, alternating, and the wall time printed:

    python bench/bench_drive.py                        # a run to read (prints its folder)
    python bench/bench_restore_threads.py /tmp/bench_drive-XXXX --threads 1 2 --repeat 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a finished bench_drive run: a folder with drive/ and work/results/")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--gpu-s-per-mp", type=float, default=0.54 / 24, help="the stand-in model's seconds per MP")
    args = ap.parse_args(argv)

    import numpy as np
    import pandas as pd

    import spnrestore.model.inference as inference
    from spnrestore.jobs import limit_threads
    from spnrestore.paths import DrivePaths
    from spnrestore.stages.restore import restore_camera

    results = args.run / "work" / "results"
    images = args.run / "drive" / "Images"
    drive = DrivePaths(args.run / "drive", images / "Original", images / "Compressed", images / "SPN", results)
    manifest = pd.read_csv(results / "manifest.csv", keep_default_na=False)
    roles = {c: {i: "fingerprint" if r == "fingerprint" else "test" for i, r in zip(g["image"], g["role"])}
             for c, g in manifest.groupby("camera")}
    manifest = manifest[(manifest["status"] == "ok") & (manifest["role"] != "fingerprint")]
    cameras = sorted(manifest["camera"].unique())
    qualities = sorted({int(p.name) for c in cameras for p in (images / "Compressed" / c).iterdir()}, reverse=True)
    jpegs = len(manifest) * len(qualities)
    mp = float((manifest["width"] * manifest["height"]).mean()) / 1e6
    waited = []

    def stand_in(checkpoint, rgb, residual, quality, *rest, **kw):
        seconds = args.gpu_s_per_mp * rgb.shape[0] * rgb.shape[1] / 1e6
        time.sleep(seconds)
        waited.append(seconds)
        return np.asarray(residual, np.float32)

    inference.restore_residual = stand_in
    walls = {n: [] for n in args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            for n in args.threads:
                limit_threads(n)
                waited.clear()
                start = time.perf_counter()
                for camera in cameras:
                    restore_camera(sorted((results / "batches" / "develop" / camera).glob("*.csv")),
                                   roles[camera], qualities, drive, cameras, methods=("drive",),
                                   checkpoint=results / "model" / "restorer.pt", sigma=5.0,
                                   table=Path(tmp) / f"{camera}.csv", storage={}, threads=n)
                walls[n].append(time.perf_counter() - start)
    base = statistics.median(walls[args.threads[0]])
    print(f"# {args.run}: {jpegs} JPEGs of {mp:.1f} MP ({len(cameras)} cameras x {len(qualities)} qualities), "
          f"{len(cameras)} fingerprints; stand-in model {args.gpu_s_per_mp * mp:.2f} s a JPEG "
          f"({sum(waited):.1f} s a pass); median of {args.repeat}\n")
    print(f"| threads | wall (s) | s per JPEG | model's share of the wall | speed-up against {args.threads[0]} |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n in args.threads:
        wall = statistics.median(walls[n])
        print(f"| {n} | {wall:.1f} | {wall / jpegs:.2f} | {sum(waited) / wall:.0%} | {base / wall:.2f}x |")


if __name__ == "__main__":
    main()
