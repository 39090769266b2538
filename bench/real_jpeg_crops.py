"""Lay out the real development set (``../shared/data/real-jpeg``) as a drive of lossless central crops.

Each camera JPEG is cut to its central ``--side`` x ``--side`` window on the 16 px block grid with
``jpegtran -crop ... -copy all`` (libjpeg-turbo-progs): the camera's own DCT coefficients, quantisation
tables and EXIF are kept, only the size is smaller. This is the protocol of the hidden-camera measurement
(1024 px crops) and makes a whole run of every method on all nine devices take minutes instead of hours.
Flat fields (``flat/`` folders) keep their folder.

    python bench/real_jpeg_crops.py ../shared/data/real-jpeg /tmp/realcrop/drive --side 1024
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image


def crop(source: Path, target: Path, side: int) -> None:
    with Image.open(source) as im:
        w, h = im.size  # the stored pixels (jpegtran crops those, whatever the orientation tag says)
    cw, ch = min(side, w) // 16 * 16, min(side, h) // 16 * 16
    x0, y0 = (w - cw) // 2 // 16 * 16, (h - ch) // 2 // 16 * 16
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["jpegtran", "-crop", f"{cw}x{ch}+{x0}+{y0}", "-copy", "all", "-outfile", str(target), str(source)],
                   check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("drive", type=Path)
    parser.add_argument("--side", type=int, default=1024)
    args = parser.parse_args(argv)
    if shutil.which("jpegtran") is None:
        sys.exit("real_jpeg_crops: jpegtran not found; install libjpeg-turbo-progs")
    out = args.drive / "Images" / "Original"
    count = 0
    for camera in sorted(p for p in args.source.iterdir() if p.is_dir()):
        for path in sorted(camera.rglob("*")):
            if path.suffix.lower() in (".jpg", ".jpeg"):
                crop(path, out / camera.name / path.relative_to(camera), args.side)
                count += 1
    print(f"{count} JPEGs cropped to at most {args.side} px into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
