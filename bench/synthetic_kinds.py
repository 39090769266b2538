"""Restorers compared on held-out synthetic sensors of every pipeline kind (issue 25's synthetic goal).

For each kind of ``spnrestore.dataset.synthetic.PIPELINE_KINDS`` (``classic``: no phone step; one kind per
phone step; ``phone``: all of them), ``--examples`` new cameras of stream 3 (never drawn by training, which
uses streams 0-2), ``--size`` px photos at the workflow's JPEG qualities 30, 60 and 90 in turn. Each photo's
plain residual (``spn.extract_residual``) and each model's restoration of it (whole-image inference, as the
workflow runs it) are correlated with the exact PRNU term on the photo's centre (a ``--margin`` px border is
left out). Printed per kind and quality: the mean NCC of plain and of every model, and the share of photos
where a model is below plain.

    python bench/synthetic_kinds.py synthetic shipped fused new=PATH/restorer.pt [--examples 96]

Methods are those of the registry (``spnrestore.methods``): ``synthetic``, ``shipped``, ``fused`` or NAME=PATH
of a checkpoint.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd

from spnrestore.dataset.synthetic import PIPELINE_KINDS, example_seed, ranges_for_kind, synthetic_photo
from spnrestore.methods import MethodContext, compute_residual, get_method
from spnrestore.spn import extract_residual

QUALITIES = (30, 60, 90)
STREAM = 3


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-30))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="'synthetic', 'shipped', 'fused' or NAME=PATH")
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--margin", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--kinds", nargs="*", default=list(PIPELINE_KINDS))
    parser.add_argument("--csv", default=None)
    args = parser.parse_args(argv)
    restorers = {m.name: m for m in map(get_method, args.models)}
    context = MethodContext(5.0, device="cpu")
    m = args.margin
    rows = []
    began = time.monotonic()
    for kind in args.kinds:
        ranges = ranges_for_kind(kind)
        for i in range(args.examples):
            q = QUALITIES[i % len(QUALITIES)]
            pixels, target, _ = synthetic_photo(example_seed(args.seed, STREAM, i), args.size, q, ranges)
            plain = extract_residual(pixels, 5.0)
            t = target[m:-m, m:-m]
            row = {"kind": kind, "example": i, "quality": q, "plain": ncc(plain[m:-m, m:-m], t)}
            for name, method in restorers.items():
                row[name] = ncc(compute_residual(method, pixels, plain, q, context)[m:-m, m:-m], t)
            rows.append(row)
        print(f"{kind}: {args.examples} examples ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    names = list(restorers)
    print("| kind | Q | n | plain | " + " | ".join(f"{n} (below plain)" for n in names) + " |")
    print("| --- | ---: | ---: | ---: |" + " ---: |" * len(names))
    for kind in args.kinds:
        for q in (*QUALITIES, "all"):
            at = table[(table["kind"] == kind) & ((table["quality"] == q) if q != "all" else True)]
            cells = [f"{at[n].mean():.4f} ({(at[n] < at['plain']).mean():.0%})" for n in names]
            print(f"| {kind} | {q} | {len(at)} | {at['plain'].mean():.4f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
