"""Per camera, quality and method: the figures of a workflow run's evaluation (issue 24's goals), as Markdown.

Reads ``evaluation/gains.csv`` and ``evaluation/scores.csv`` of a results folder and each camera's
``calibration.json`` on the drive, and prints:

* per camera and quality, each method's median gain over plain, share of images lowered, worst image, and
  the method the calibration chose (with whether the fingerprint identifies its own images);
* the goals of ``calibrated``: never below plain in median gain for any camera, fewer than 1 image in 10
  lowered, no non-match above the threshold, median gain at the lowest quality over the cameras whose
  fingerprint identifies its own images, the devices with no usable fingerprint named.

    python bench/methods_table.py RESULTS_DIR SPN_DIR [--threshold 60]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("spn", type=Path)
    parser.add_argument("--threshold", type=float, default=60.0)
    args = parser.parse_args(argv)
    gains = pd.read_csv(args.results / "evaluation" / "gains.csv", dtype={"camera": str, "image": str})
    scores = pd.read_csv(args.results / "evaluation" / "scores.csv", dtype={"camera": str, "image": str,
                                                                            "fingerprint": str})
    cals = {p.parent.name: json.loads(p.read_text()) for p in sorted(args.spn.glob("*/calibration.json"))}
    usable = {c: cal.get("usable") for c, cal in cals.items()}
    methods = list(dict.fromkeys(gains["method"]))
    qualities = sorted(gains["quality"].unique(), reverse=True)
    print("| camera | fingerprint | Q | n | " + " | ".join(f"{m}: median gain, lowered, worst" for m in methods)
          + " | calibration chose |")
    print("| --- | --- | ---: | ---: |" + " --- |" * len(methods) + " --- |")
    for camera, group in gains.groupby("camera", sort=True):
        cal = cals.get(camera) or {}
        state = {True: "usable", False: "UNUSABLE", None: "not known"}[usable.get(camera)]
        if cal.get("original_median_pce") is not None:
            state += f" (own originals: median PCE {cal['original_median_pce']:.1f})"
        for q in qualities:
            at = group[group["quality"] == q]
            cells = []
            for m in methods:
                g = at[at["method"] == m]
                cells.append(f"{g['gain'].median():.2f}x, {g['lowered'].mean():.0%}, {g['gain'].min():.2f}x"
                             if len(g) else "")
            chosen = (cal.get("qualities") or {}).get(str(q), {}).get("chosen", "")
            print(f"| {camera} | {state} | {q} | {at['image'].nunique()} | " + " | ".join(cells) + f" | {chosen} |")
    print()
    cal_gains = gains[gains["method"] == "calibrated"]
    miss = scores[~scores["match"].astype(str).str.lower().eq("true") & (scores["method"] != "original")]
    print("| goal (calibrated) | measured | met |")
    print("| --- | --- | --- |")
    per_cam = cal_gains.groupby(["camera", "quality"])["gain"].median()
    worst = per_cam.idxmin() if len(per_cam) else None
    print(f"| never below plain in median gain, any camera and quality | lowest {per_cam.min():.2f}x "
          f"({worst[0]}, Q{worst[1]}) | {'yes' if per_cam.min() >= 1 - 1e-4 else 'no'} |")
    share = cal_gains.groupby("quality")["lowered"].mean()
    print(f"| fewer than 1 image in 10 lowered (every quality) | "
          + "; ".join(f"Q{q} {share[q]:.3f}" for q in qualities) + f" | {'yes' if (share < 0.1).all() else 'no'} |")
    for m in ["calibrated", *[x for x in methods if x not in ("calibrated", "original")], "plain"]:
        top = miss[miss["method"] == m]["pce"].max()
        print(f"| no non-match above PCE {args.threshold:g}: {m} | largest {top:.1f} | "
              f"{'yes' if top <= args.threshold else 'no'} |")
    low = min(qualities)
    good = [c for c, u in usable.items() if u]
    sel = cal_gains[(cal_gains["quality"] == low) & cal_gains["camera"].isin(good)]
    print(f"| median gain at Q{low} over the cameras whose fingerprint identifies its own images >= 2 | "
          f"{sel['gain'].median():.2f}x over {sel['image'].nunique()} images of {sel['camera'].nunique()} cameras | "
          f"{'yes' if sel['gain'].median() >= 2 else 'no'} |")
    print(f"| devices with no usable fingerprint | {', '.join(c for c, u in usable.items() if u is False) or 'none'} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
