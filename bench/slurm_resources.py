"""SLURM memory and wall time per rule, from the `benchmark:` files of a finished run.

    python bench/slurm_resources.py RESULTS_DIR [--images-per-batch N] [--scale RULE=FACTOR ...]
                                    [--exclude RULE ...] [--mem-headroom 1.5] [--time-headroom 2]
                                    [--min-runtime 5]

Reads every ``RESULTS_DIR/benchmarks/<rule>.tsv`` and ``<rule>/**/*.tsv`` that Snakemake wrote
(columns ``s``: wall seconds, ``max_rss``: peak resident MB of the job's process
tree) and prints, per rule, the largest job and the suggested request:

- ``mem_mb``  = largest max_rss x mem headroom, rounded up to 100 MB;
- ``runtime`` = largest (scaled) wall time x time headroom, in whole minutes,
  at least ``--min-runtime`` (a margin for node start-up and file-system stalls).

Scaling, to size a large drive from a run on a few images of the real sensor size:
``--images-per-batch N`` scales the wall time of per-batch jobs (benchmark files
named ``<camera>/.../bNNNN.tsv``) to N images: seconds per image of the slowest
job (its image count read from ``batches/develop/<camera>/bNNNN.csv``) times N.
``--scale RULE=FACTOR`` multiplies a rule's wall time further, for work that
grows with something else (fingerprint images per camera, images of a split).
Memory is not scaled (a job holds one image at a time): measure on images of the
real size, with the real number of cameras (score and restore hold every
camera's fingerprint).

Snakemake samples memory every 0.5 s for the first 15 s of a job, then every
30 s: jobs shorter than 2 s are flagged (their peak may be missed) and the
headroom covers peaks between samples. Prints a markdown table, then the
``set-resources`` and ``default-resources`` blocks for profiles/slurm/config.yaml
(default, for rules without a benchmark: the largest memory request, and the
largest unscaled job's wall time with headroom).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import pandas as pd

BATCH = re.compile(r"b[0-9]{4}")
SHORT_S = 2.0


def batch_images(results: Path, rel: Path) -> int | None:
    """Images in the batch of a per-batch benchmark file (``<camera>/.../bNNNN.tsv``), else None."""
    if not BATCH.fullmatch(rel.stem) or len(rel.parts) < 2:
        return None
    table = results / "batches" / "develop" / rel.parts[0] / f"{rel.stem}.csv"
    return len(pd.read_csv(table)) if table.is_file() else None


def read_benchmarks(results: Path) -> pd.DataFrame:
    """One row per benchmark file: rule, file, seconds, max_rss (MB), images (per-batch jobs) or NaN."""
    root = results / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root)  # <rule>.tsv, or <rule>/<wildcards...>.tsv
        rule, rel = (rel.stem, rel) if len(rel.parts) == 1 else (rel.parts[0], rel.relative_to(rel.parts[0]))
        table = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
        if table.empty or not {"s", "max_rss"} <= set(table.columns):
            sys.exit(f"slurm_resources: {path} is not a Snakemake benchmark file (needs columns s and max_rss)")
        rows.append(dict(rule=rule, file=str(rel), s=float(table["s"].max()),
                         max_rss=float(table["max_rss"].max()), images=batch_images(results, rel)))
    if not rows:
        sys.exit(f"slurm_resources: no benchmark files under {root}; run the workflow first "
                 "(its rules write <results>/benchmarks/<rule>/...tsv)")
    return pd.DataFrame(rows)


def minutes(seconds: float, headroom: float, floor: int) -> int:
    """A SLURM time limit in whole minutes: ``seconds`` x ``headroom``, at least ``floor``."""
    return max(floor, math.ceil(seconds * headroom / 60))


def suggest(bench: pd.DataFrame, images_per_batch: int | None, scale: dict[str, float], mem_headroom: float,
            time_headroom: float, min_runtime: int) -> pd.DataFrame:
    """Per rule: jobs, largest max_rss and wall time, scaled seconds (NaN: not scaled), mem_mb, runtime (min)."""
    out = []
    for rule, jobs in bench.groupby("rule", sort=True):
        seconds = jobs["s"].max()
        per_batch = images_per_batch is not None and jobs["images"].notna().all()
        if per_batch:
            seconds = (jobs["s"] / jobs["images"].clip(lower=1)).max() * images_per_batch
        seconds *= scale.get(rule, 1.0)
        scaled = per_batch or rule in scale
        out.append(dict(
            rule=rule, jobs=len(jobs), max_rss=jobs["max_rss"].max(), max_s=jobs["s"].max(),
            scaled_s=seconds if scaled else math.nan, short=jobs["s"].max() < SHORT_S,
            mem_mb=int(math.ceil(jobs["max_rss"].max() * mem_headroom / 100) * 100),
            runtime=minutes(seconds, time_headroom, min_runtime),
        ))
    return pd.DataFrame(out)


def scale_factors(items: list[str]) -> dict[str, float]:
    """``["rule=factor", ...]`` as a dict; exits with the offending item when malformed."""
    factors = {}
    for item in items:
        rule, _, factor = item.partition("=")
        try:
            factors[rule] = float(factor)
        except ValueError:
            sys.exit(f"slurm_resources: --scale {item!r}: use RULE=FACTOR, e.g. fingerprint=12")
    return factors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="the run's results directory (holds benchmarks/)")
    parser.add_argument("--images-per-batch", type=int, help="scale per-batch wall times to this many images")
    parser.add_argument("--scale", nargs="*", default=[], metavar="RULE=FACTOR", help="further wall time factors")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="RULE", help="rules to leave out")
    parser.add_argument("--mem-headroom", type=float, default=1.5)
    parser.add_argument("--time-headroom", type=float, default=2.0)
    parser.add_argument("--min-runtime", type=int, default=5, help="smallest time limit (minutes)")
    args = parser.parse_args()
    bench = read_benchmarks(args.results)
    bench = bench[~bench["rule"].isin(args.exclude)]
    table = suggest(bench, args.images_per_batch, scale_factors(args.scale), args.mem_headroom,
                    args.time_headroom, args.min_runtime)
    print(f"\nBenchmarks: {args.results / 'benchmarks'}; headroom: memory x{args.mem_headroom}, "
          f"time x{args.time_headroom}; per-batch jobs scaled to {args.images_per_batch or 'their own'} images; "
          f"factors: {', '.join(args.scale) or 'none'}\n")
    print("| rule | jobs | max RSS (MB) | max wall (s) | scaled wall (s) | mem_mb | runtime (min) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in table.itertuples():
        flag = " (short: peak may be missed)" if r.short else ""
        scaled_s = "" if math.isnan(r.scaled_s) else f"{r.scaled_s:.0f}"
        print(f"| {r.rule}{flag} | {r.jobs} | {r.max_rss:.0f} | {r.max_s:.1f} | {scaled_s} | {r.mem_mb} "
              f"| {r.runtime} |")
    print("\nset-resources:")
    for r in table.itertuples():
        print(f"  {r.rule}: {{mem_mb: {r.mem_mb}, runtime: {r.runtime}}}")
    default_runtime = minutes(bench["s"].max(), args.time_headroom, args.min_runtime)
    print(f"default-resources:\n  mem_mb: {table['mem_mb'].max()}\n  runtime: {default_runtime}")


if __name__ == "__main__":
    main()
