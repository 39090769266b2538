"""Time to generate the demo drive, per image, and where the time goes.

    python bench/bench_demo_drive.py [--cameras 5] [--images 48] [--height 512] [--width 768]

Prints a markdown table: the whole ``make_demo_drive`` call, then its steps timed
one by one on the same shots (scene, sensor, DNG encoding, atomic write). The
baseline is the atomic write alone (same bytes, fsync, rename): the drive's cost is
given as a multiple of it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from spnrestore.atomic import write_bytes
from spnrestore.demo import make_demo_drive
from spnrestore.demo.dng import dng_bytes
from spnrestore.demo.drive import STREAM_IMAGE
from spnrestore.demo.scenes import make_shot
from spnrestore.demo.sensor import expose, make_camera, make_fingerprint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=5)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=768)
    args = parser.parse_args()
    count = args.cameras * args.images
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        make_demo_drive(Path(tmp) / "drive", args.cameras, args.images, args.height, args.width)
        total = time.perf_counter() - start

        steps = dict.fromkeys(["scene (make_shot)", "sensor (expose)", "DNG encoding (dng_bytes)",
                               "atomic write (baseline)"], 0.0)
        for index in range(args.cameras):
            camera = make_camera(index, 1)
            k = make_fingerprint(camera, args.height, args.width, 0.01, 1)
            for i in range(args.images):
                rng = np.random.default_rng([1, index, STREAM_IMAGE, i])
                t0 = time.perf_counter()
                shot = make_shot(i, rng, args.height, args.width)
                t1 = time.perf_counter()
                raw = expose(camera, shot.scene, k, shot.iso, rng)
                t2 = time.perf_counter()
                data = dng_bytes(raw, camera, 1, "2024:01:01 00:00:00")
                t3 = time.perf_counter()
                write_bytes(Path(tmp) / f"{index}_{i}.dng", data)
                t4 = time.perf_counter()
                for key, seconds in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    steps[key] += seconds
    baseline = steps["atomic write (baseline)"]
    print(f"Demo drive: {args.cameras} cameras x {args.images} images of {args.height}x{args.width}\n")
    print("| step | total (s) | per image (ms) | x baseline |")
    print("|---|---:|---:|---:|")
    print(f"| make_demo_drive (all) | {total:.2f} | {1e3 * total / count:.1f} | {total / baseline:.1f} |")
    for key, seconds in steps.items():
        print(f"| {key} | {seconds:.2f} | {1e3 * seconds / count:.1f} | {seconds / baseline:.1f} |")


if __name__ == "__main__":
    main()
