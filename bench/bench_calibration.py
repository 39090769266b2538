"""Benchmark: leave-one-out calibration of one camera against building its fingerprint (issue 24).

The goal: calibrating a 24-image camera at 24 MP costs at most 3x the fingerprint itself. Both costs grow
linearly with the number of images, so the ratio is measured per image on ``--images`` shots (default 4)
of ``--size`` (default 4000x6000, 24 MP), one core, CPU seconds:

* fingerprint: one ``FingerprintAccumulator.add`` per image (the residual of the whole image and the
  running sums), the first add not counted (it pays the sums' page faults); the fingerprint's finalize once;
* calibration, the part added to the fingerprint job: the window's sums read before and after each add
  (:class:`spnrestore.methods.calibration.LeaveOneOut`) and each image's leave-one-out fingerprint;
* calibration, the rule ``calibrate``: per image and quality the JPEG copy of the window, its plain
  residual, each method's residual and the scores against the leave-one-out fingerprint and
  ``--others`` other cameras' windows (:func:`spnrestore.methods.calibration.leave_one_out_scores`).

    python bench/bench_calibration.py                          # 24 MP, methods plain,li2010,phase,shipped
    python bench/bench_calibration.py --methods plain,li2010,phase --images 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fingerprint import shots  # noqa: E402
from bench_residual import one_core  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="4000x6000", help="H x W of the shots (default 24 MP)")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--methods", default="plain,li2010,phase,shipped")
    parser.add_argument("--qualities", default="90,60,30")
    parser.add_argument("--others", type=int, default=9, help="other cameras' fingerprints (non-matches)")
    parser.add_argument("--window", type=int, default=1024)
    args = parser.parse_args(argv)
    one_core()
    import torch

    torch.set_num_threads(1)
    from spnrestore.methods import MethodContext, get_method
    from spnrestore.methods.calibration import LeaveOneOut, leave_one_out_scores
    from spnrestore.spn import FingerprintAccumulator

    h, w = (int(v) for v in args.size.split("x"))
    images = shots(h, w, args.images + 1)
    n = args.images

    plain = FingerprintAccumulator()
    plain.add(images[0])  # warm-up: page faults of the running sums
    start = time.process_time()
    for img in images[1:]:
        plain.add(img)
    add_s = (time.process_time() - start) / n
    start = time.process_time()
    k = plain.finalize()
    finalize_s = time.process_time() - start

    acc = FingerprintAccumulator()
    acc.add(images[0])
    loo = LeaveOneOut(acc, [f"i{j}" for j in range(1, n + 1)], args.window)
    start = time.process_time()
    for j, img in enumerate(images[1:], 1):
        loo.add(f"i{j}", img)
    with_loo_s = (time.process_time() - start) / n
    start = time.process_time()
    cset = loo.finish("cam")
    finish_s = (time.process_time() - start) / n

    rng = np.random.default_rng(0)
    others = {f"o{i}": rng.normal(0, 0.01, cset.loo.shape[1:]).astype(np.float32) for i in range(args.others)}
    methods = [get_method(m) for m in args.methods.split(",")]
    context = MethodContext(5.0, None, "cpu")
    qualities = [int(q) for q in args.qualities.split(",")]
    leave_one_out_scores(cset, methods, context, others, qualities[:1]) if n else None  # load models
    start = time.process_time()
    leave_one_out_scores(cset, methods, context, others, qualities)
    score_s = (time.process_time() - start) / n

    fingerprint = add_s + finalize_s / 24
    calibration = (with_loo_s - add_s) + finish_s + score_s
    print(f"| measure (per image, {h}x{w}, one core, CPU s) | s |")
    print("| --- | ---: |")
    print(f"| fingerprint: add | {add_s:.2f} |")
    print(f"| fingerprint: finalize / 24 images | {finalize_s / 24:.2f} |")
    print(f"| calibration in the fingerprint job: window sums around the add | {with_loo_s - add_s:.2f} |")
    print(f"| calibration in the fingerprint job: leave-one-out fingerprint | {finish_s:.2f} |")
    print(f"| rule calibrate: {len(qualities)} qualities x {', '.join(m.name for m in methods)}, "
          f"{args.others + 1} fingerprints | {score_s:.2f} |")
    print(f"| **calibration / fingerprint** (goal <= 3) | **{calibration / fingerprint:.2f}** |")
    print(f"(window {cset.loo.shape[1]}x{cset.loo.shape[2]}; K std {float(k.std()):.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
