"""Benchmark: the whole DAG on a drive of real-size synthetic DNGs, per stage, and the 10,000-image extrapolation
(issue 16, goal 4).

Generates a drive (default 2 cameras x 8 DNG shots of 3000 x 4000 = 12 MP; 4 fingerprint images a camera so
that some are left to train on and evaluate), runs the whole workflow on it (training bounded to a few steps of
the shipped model size, started from the shipped model, so that the restore jobs run the model size that a
real drive's GPU run would; a CPU cannot train 20,000 steps), then prints per rule: jobs, CPU seconds, CPU
seconds per MP of the images the rule works on, bytes written per MP, peak RSS (Snakemake's benchmark files
``results/benchmarks/<rule>/*.tsv``: ``cpu_time``, ``io_out``, ``max_rss``). Rules without a ``benchmark:``
directive (the summaries) are run again one at a time (``--forcerun R --until R``) and measured with
``wait4`` (CPU and blocks written of the process tree, less a dry-run's; peak RSS of the largest process,
Snakemake's own included, so an upper bound). Then it extrapolates to 10,000 images of 10 cameras of 24 MP
on a 16-core workstation with one GPU (assumptions printed with the figures).

    nice -n 19 python bench/bench_drive.py                       # generate, run, measure, extrapolate
    python bench/bench_drive.py --read /tmp/bench_drive-XXXX     # measure a finished run again

Report CPU seconds, not wall seconds: on a shared machine the wall time says more about the neighbours.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: Training of the measured run: the shipped model's size (config.yaml demo_train.model), started from it,
#: cut to a few steps and a CPU budget; whole-image validation on one 512 px crop a camera.
SHIPPED_MODEL = ("{width: 16, max_width: 32, depth: 2, blocks: 1, hourglass: 1, hourglass_depth: 1, "
                 "q_embed: 32, filter_bins: 10, jpeg_features: true}")
TRAIN = ("train={settings: {init: pretrained, steps: 20, batch_size: 8, checkpoint_every: 10, num_workers: 0, "
         f"progress: false, cpu_time_budget_s: 60, filter_examples: 500, val_batches: 2, "
         f"val_images_per_camera: 1, val_image_crop: 512, model: {SHIPPED_MODEL}, "
         "discriminator: {width: 16, layers: 2}, adv_start_step: 10}}")

#: The drive of the extrapolation.
TARGET = {"images": 10_000, "cameras": 10, "mp": 24.0, "cores": 16, "fingerprint": 24, "holdout": 1,
          "trainval": 0.8, "train": 0.7, "test": 0.2, "qualities": 3, "patches": 24}
#: GPU figures quoted from the docs (one H100): training throughput of the full GAN step, default model size,
#: eager, batch 128 (docs/benchmarks.md "Training throughput", 1,241 patches/s; 1,250-1,650 in docs/model.md);
#: restoring one 24 MP residual with the shipped small model (docs/model.md, bench_restore_gpu.py: 0.54 s).
#: threads of a restore job where the jobs take turns on the GPU (RESTORE_THREADS, workflow/rules/common.smk)
RESTORE_THREADS = 4
GPU_TRAIN_PATCHES_S = 1241.0
GPU_TRAIN_OVERHEAD = 2.0  # x the pure step time: validations, checkpoints, data loading start, batch 32 not 128
GPU_RESTORE_S_PER_24MP = 0.54
#: Default training of a real drive (config.yaml train.settings): 20,000 steps of 32 patches.
TRAIN_STEPS, TRAIN_BATCH = 20_000, 32
GB = 1024 ** 3


def snakemake_cmd(work: Path, drive: Path, config: list[str], *args: str, cores: int = 2) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores",
            str(cores), *args, "--config", f"external_drive={drive}", f"results_dir={work / 'results'}", *config]


def measured(cmd: list[str]) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``cmd``; CPU seconds, blocks written (bytes) and peak RSS of its process tree (``wait4``)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
        out.seek(0)
        text = out.read()
    code = os.waitstatus_to_exitcode(status)
    result = subprocess.CompletedProcess(cmd, code, text, "")
    return result, {"cpu": ru.ru_utime + ru.ru_stime, "io": ru.ru_oublock * 512, "rss": ru.ru_maxrss * 1024}


def config_items(args) -> list[str]:
    # 4 fingerprint images and a 50/25/25 split: 8 shots a camera leave 2 train, 1 val, 1 test
    return [f"spn={{fingerprint_images: {args.fingerprint_images}}}",
            "dataset={fractions: {train: 0.5, val: 0.25, test: 0.25}}", TRAIN, *args.config]


def run(args) -> tuple[Path, dict]:
    from spnrestore.demo.drive import make_demo_drive

    base = Path(tempfile.mkdtemp(prefix="bench_drive-", dir=args.tmp))
    t0, c0 = time.perf_counter(), time.process_time()
    drive = make_demo_drive(base / "drive", cameras=args.cameras, images_per_camera=args.images,
                            height=args.height, width=args.width)
    gen = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
    work = base / "work"
    work.mkdir()
    print(f"bench_drive: drive generated in {gen['cpu']:.0f} CPU s; running the workflow in {base}", file=sys.stderr)
    start = time.perf_counter()
    proc, usage = measured(snakemake_cmd(work, drive, config_items(args), cores=args.cores))
    (base / "run.log").write_text(proc.stdout)
    if proc.returncode:
        sys.exit(f"bench_drive: the workflow failed (log {base / 'run.log'}):\n{proc.stdout[-4000:]}")
    usage["wall"] = time.perf_counter() - start
    (base / "args.txt").write_text(" ".join(config_items(args)))
    return base, {"generate": gen, "workflow": usage}


def job_counts(log: str) -> dict[str, int]:
    table = log.split("Job stats:", 1)[-1]
    return {name: int(n) for name, n in re.findall(r"^(\w+)\s+(\d+)\s*$", table, re.MULTILINE) if name != "total"}


def read_benchmarks(results: Path) -> dict[str, dict]:
    """Per rule: jobs, cpu_time, io_out (bytes) and max max_rss (bytes) from Snakemake's benchmark TSVs."""
    import pandas as pd

    rules = defaultdict(lambda: {"jobs": 0, "cpu": 0.0, "io": 0.0, "rss": 0.0, "job_cpu": 0.0})
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rel = tsv.relative_to(results / "benchmarks")
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        row = pd.read_csv(tsv, sep="\t").iloc[-1]
        r = rules[rule]
        r["jobs"] += 1
        cpu = float(row["cpu_time"]) if row["cpu_time"] == row["cpu_time"] else 0.0
        r["cpu"] += cpu
        r["job_cpu"] = max(r["job_cpu"], cpu)
        r["io"] += float(row["io_out"]) * 2 ** 20 if row["io_out"] == row["io_out"] else 0.0
        r["rss"] = max(r["rss"], float(row["max_rss"]) * 2 ** 20 if row["max_rss"] == row["max_rss"] else 0.0)
    return dict(rules)


def rerun_unbenchmarked(base: Path, drive: Path, config: list[str], rules: list[str]) -> dict[str, dict]:
    """CPU, bytes written and peak RSS of each rule without a benchmark file: run alone, less a dry-run's."""
    work = base / "work"
    _, dry = measured(snakemake_cmd(work, drive, config, "-n", "--until", "manifest", cores=1))
    out = {}
    for rule in rules:
        proc, usage = measured(snakemake_cmd(work, drive, config, "--forcerun", rule, "--until", rule, cores=1))
        if proc.returncode:
            print(f"bench_drive: rerun of {rule} failed:\n{proc.stdout[-2000:]}", file=sys.stderr)
            continue
        cpu = max(usage["cpu"] - dry["cpu"], 0.0)
        out[rule] = {"jobs": 1, "cpu": cpu, "job_cpu": cpu, "io": max(usage["io"] - dry["io"], 0),
                     "rss": usage["rss"], "rerun": True}
    out["(snakemake itself, dry-run)"] = {"jobs": 1, "cpu": dry["cpu"], "job_cpu": dry["cpu"], "io": dry["io"],
                                          "rss": dry["rss"], "rerun": True}
    return out


def disk_bytes(base: Path) -> dict[str, int]:
    """Bytes on disk of each rule's outputs (Snakemake's io_out samples the job once a second and misses what a
    job writes in its last moments, a fingerprint for one): develop the JPEGs, the originals' residuals and
    gray intensities; residual the JPEG residuals; fingerprint the fingerprints; restore the restored
    residuals; shards the dataset; train the model; the rest of the results (tables, logs) to "tables"."""
    drive, results = base / "drive" / "Images", base / "work" / "results"
    out = defaultdict(int)
    for p in (drive / "Compressed").rglob("*"):
        if p.is_file():
            out["develop"] += p.stat().st_size
    for p in (drive / "SPN").rglob("*"):
        if p.is_file():
            part = p.relative_to(drive / "SPN").parts
            rule = ("fingerprint" if p.name.startswith("fingerprint") else "develop" if part[1] == "original"
                    else "restore" if part[1] == "restored" else "residual")
            out[rule] += p.stat().st_size
    for p in results.rglob("*"):
        if p.is_file():
            first = p.relative_to(results).parts[0]
            rule = {"intensity": "develop", "dataset": "shards", "model": "train",
                    "fingerprints": "fingerprint"}.get(first, "tables")
            out[rule] += p.stat().st_size
    return dict(out)


def drive_facts(base: Path) -> dict:
    """Images, MP and roles of the measured run, patches of its shards, rows of its score tables."""
    import pandas as pd

    results = base / "work" / "results"
    m = pd.read_csv(results / "manifest.csv", keep_default_na=False)
    m = m[m["status"] == "ok"]
    mp = m["width"].astype(int) * m["height"].astype(int) / 1e6
    role = m["role"] if "role" in m else pd.Series("", index=m.index)
    facts = {"images": len(m), "mp": float(mp.sum()), "mp_image": float(mp.mean()), "cameras": m["camera"].nunique()}
    for name in ("fingerprint", "train", "val", "test", "holdout", "new_drive"):
        facts[f"mp_{name}"] = float(mp[role == name].sum())
        facts[f"n_{name}"] = int((role == name).sum())
    facts["mp_scored"] = facts["mp"] - facts["mp_fingerprint"]
    facts["mp_evaluated"] = facts["mp_test"] + facts["mp_holdout"] + facts["mp_new_drive"]
    ds = results / "dataset" / "manifest.csv"
    facts["patches"] = len(pd.read_csv(ds)) if ds.is_file() else 0
    scores = results / "evaluation" / "scores.csv"
    facts["score_rows"] = sum(1 for _ in open(scores)) - 1 if scores.is_file() else 0
    facts["score_bytes"] = scores.stat().st_size if scores.is_file() else 0
    return facts


#: Per rule: what it scales with ("unit" names the MP the table divides by; "target" the same quantity on the
#: 24 MP drive, from TARGET), and where it runs in the extrapolation.
def scaling(f: dict) -> dict[str, tuple[str, float, float]]:
    t = TARGET
    per_cam = t["images"] / t["cameras"]
    others = t["images"] - t["fingerprint"] * t["cameras"]
    seen = (t["cameras"] - t["holdout"]) / t["cameras"]
    evaluated = others * (seen * t["test"] + 1 - seen)
    trainval = others * seen * t["trainval"]
    mp = t["mp"]
    assert per_cam > t["fingerprint"]
    return {
        # rule: (unit, measured quantity, target quantity)
        # develop computes and scores the original's residual of the scored images only: its CPU per MP scored
        # (the fingerprint images' development counted in, so an upper bound), times every image of the
        # target; main() moves the scoring of the originals to the per-pair rate
        "develop": ("MP scored", f["mp_scored"], t["images"] * mp),
        "residual": ("MP developed", f["mp"], t["images"] * mp),
        "fingerprint": ("MP of fingerprint images", f["mp_fingerprint"], t["fingerprint"] * t["cameras"] * mp),
        # score: the JPEGs' residuals (computed there unless storage.keep_residuals) and their pairs with every
        # fingerprint; main() splits the residuals off
        "score": ("MP of JPEGs scored x fingerprints", f["mp_scored"] * t["qualities"] * f["cameras"],
                  others * mp * t["qualities"] * t["cameras"]),
        "restore": ("MP evaluated x fingerprints", f["mp_evaluated"] * f["cameras"], evaluated * mp * t["cameras"]),
        # a shards job (one per split and camera) reads every train/val JPEG whole (and computes its residual
        # unless the drive keeps them) to cut its patches: per MP
        "shards": ("MP of train+val images", f["mp_train"] + f["mp_val"], trainval * mp),
        # calibrate: per camera, its fingerprint images' leave-one-out scores on a central window of fixed side,
        # per quality and candidate method: per fingerprint image, whatever the image's size
        "calibrate": ("fingerprint images", f["n_fingerprint"], t["fingerprint"] * t["cameras"]),
    }


def score_table_cost(results: Path, rows: int) -> dict:
    """CPU seconds and memory of what a summary does with a score table of ``rows`` rows: the run's
    evaluation/scores.csv repeated to that many rows, read with pandas and grouped per camera, quality and
    fingerprint (a proxy for identification, evaluation, plots: each loads the whole table)."""
    import pandas as pd

    small = pd.read_csv(results / "evaluation" / "scores.csv", keep_default_na=False)
    big = pd.concat([small] * (rows // len(small) + 1), ignore_index=True).iloc[:rows]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scores.csv"
        big.to_csv(path, index=False)
        c0 = time.process_time()
        frame = pd.read_csv(path, keep_default_na=False)
        keys = [k for k in ("camera", "quality", "fingerprint", "method") if k in frame]
        frame.groupby(keys)[frame.select_dtypes("number").columns[:1].tolist()].median()
        cpu = time.process_time() - c0
        return {"cpu": cpu, "memory": float(frame.memory_usage(deep=True).sum()), "csv": path.stat().st_size}


def _min_cpu(fn, repeat: int = 2) -> float:
    """The least CPU seconds (this process) of ``repeat`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        fn()
        best = min(best, time.process_time() - c0)
    return best


def scoring_rates(base: Path, counts: tuple[int, int] = (1, 5)) -> tuple[float, float, float]:
    """CPU seconds per MP, measured in this process on one of the run's JPEGs: computing its residual
    (``extract_residual``, the part of the score and restore jobs that computes the JPEGs' residuals when the
    drive keeps none), scoring a residual (its spectrum) and scoring it against each fingerprint: the cost
    model of ``score_residual``, from ``counts`` random float32 fingerprints of its size. The workflow's jobs
    score against every camera; the measured run has 2, the extrapolated drive 10."""
    import numpy as np

    from spnrestore.jpeg import read_rgb
    from spnrestore.spn import extract_residual, score_residual

    rgb = read_rgb(next(iter(sorted((base / "drive" / "Images" / "Compressed").rglob("*.jpg")))))
    mp = rgb.shape[0] * rgb.shape[1] / 1e6
    residual_s = _min_cpu(lambda: extract_residual(rgb))
    residual = extract_residual(rgb)
    rng = np.random.default_rng(0)
    times = []
    for n in counts:
        prints = {f"k{i}": rng.normal(0, 0.01, residual.shape).astype(np.float32) for i in range(n)}
        times.append(_min_cpu(lambda: score_residual(residual, rgb, prints)))
    per_print = (times[1] - times[0]) / (counts[1] - counts[0])
    return residual_s / mp, max(times[0] - per_print, 0.0) / mp, per_print / mp


def default_methods() -> tuple[list[str], int]:
    """The computed residual methods a restore job scores by default (``evaluation.methods`` of the schema, less
    plain, which score computes, and the ones not computed from a JPEG) and how many model runs they take per
    JPEG (methods on one checkpoint share its run: shipped and fused)."""
    from spnrestore.config import default_config
    from spnrestore.methods.registry import get_method

    methods = [get_method(m) for m in default_config()["evaluation"]["methods"] if m != "plain"]
    computed = [m for m in methods if m.computed]
    return [m.name for m in computed], len({m.checkpoint for m in computed if m.checkpoint})


def model_rate(base: Path) -> float:
    """CPU seconds per MP of one run of the shipped model on the CPU (one thread, the restore jobs' default
    runtime), measured in this process on one of the run's JPEGs after a first call (conversion, warm-up)."""
    import torch

    from spnrestore.jpeg import read_rgb
    from spnrestore.model.inference import load_restorer, restore_residual
    from spnrestore.model.pretrained import pretrained_checkpoint
    from spnrestore.spn import extract_residual

    torch.set_num_threads(1)
    rgb = read_rgb(next(iter(sorted((base / "drive" / "Images" / "Compressed").rglob("*.jpg")))))
    residual = extract_residual(rgb)
    restorer = load_restorer(pretrained_checkpoint(), "cpu")
    restore_residual(restorer, rgb, residual, 30)
    return _min_cpu(lambda: restore_residual(restorer, rgb, residual, 30), repeat=1) / (residual.size / 1e6)


def fmt_bytes(b: float) -> str:
    return f"{b / 2 ** 20:,.0f} MB" if b < GB else f"{b / GB:.2f} GB"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--read", type=Path, help="measure a finished run of this bench (its folder) again")
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--images", type=int, default=8, help="shots per camera")
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--fingerprint-images", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--tmp", default=None, help="where the drive and run go (a temporary folder)")
    ap.add_argument("--config", nargs="*", default=[], help="extra snakemake --config items")
    args = ap.parse_args(argv)
    if args.read:
        base, totals = args.read, {}
    else:
        base, totals = run(args)
    config = config_items(args)
    drive, results = base / "drive", base / "work" / "results"
    log = (base / "run.log").read_text() if (base / "run.log").is_file() else ""
    counts = job_counts(log)
    rules = read_benchmarks(results)
    rest = [r for r in counts if r not in rules and r != "all"]
    rules.update(rerun_unbenchmarked(base, drive, config, rest))
    f = drive_facts(base)
    scale = scaling(f)
    disk = disk_bytes(base)
    for rule, r in rules.items():
        r["disk"] = disk.get(rule, 0) if rule in ("develop", "residual", "fingerprint", "restore", "shards",
                                                   "train") else r["io"]

    print(f"# bench_drive: {f['cameras']} cameras, {f['images']} images, {f['mp']:.0f} MP "
          f"({f['mp_image']:.1f} MP each): {f['n_fingerprint']} fingerprint, {f['n_train']} train, {f['n_val']} val, "
          f"{f['n_test'] + f['n_holdout'] + f['n_new_drive']} evaluated; {f['patches']} patches; "
          f"{f['score_rows']} rows in evaluation/scores.csv")
    if totals:
        w = totals["workflow"]
        print(f"# drive generation {totals['generate']['cpu']:.0f} CPU s; workflow {w['wall']:.0f} s wall, "
              f"{w['cpu']:.0f} CPU s (process tree), {w['io'] / 1e9:.2f} GB written, on {args.cores} cores")
    print()
    print("| rule | jobs | CPU s | unit | CPU s per unit | MB written per unit (io_out) | peak RSS | largest job CPU s |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    order = ["develop", "residual", "fingerprint", "score", "shards", "train", "restore"]
    for rule in order + sorted(r for r in rules if r not in order):
        if rule not in rules:
            continue
        r = rules[rule]
        unit, q, _ = scale.get(rule, ("job", r["jobs"], 0))
        mark = " (rerun)" if r.get("rerun") else ""
        print(f"| {rule}{mark} | {r['jobs']} | {r['cpu']:.1f} | {unit} | {r['cpu'] / q:.3f} | "
              f"{r['disk'] / 1e6 / q:.2f} ({r['io'] / 1e6 / q:.2f}) | {fmt_bytes(r['rss'])} | {r['job_cpu']:.1f} |")
    per_mp = {k: rules[k]["cpu"] / f["mp"] for k in ("develop", "residual") if k in rules}
    print(f"\nCPU s per MP developed: develop {per_mp.get('develop', 0):.3f}, residual {per_mp.get('residual', 0):.3f}")

    # ---- extrapolation
    t = TARGET
    cores = t["cores"]
    ext = {}
    for rule, (unit, q, target) in scale.items():
        if rule in rules and q:
            ext[rule] = rules[rule]["cpu"] / q * target
    others = t["images"] - t["fingerprint"] * t["cameras"]
    seen = (t["cameras"] - t["holdout"]) / t["cameras"]
    evaluated = others * (seen * t["test"] + 1 - seen)
    # Scoring, measured in this process: computing a JPEG's residual (res_rate, score and restore compute
    # them unless the residual rule ran and stored them) and scoring a residual (per_residual, its spectrum)
    # against each fingerprint (per_print), all per MP. The measured run has 2 cameras, the target 10: the
    # jobs' CPU is split with this model; what is left (reading, decoding, tables) scales with the images.
    keep = "residual" in rules
    res_rate, per_residual, per_print = scoring_rates(base)
    scoring = lambda cameras: per_residual + per_print * cameras  # noqa: E731  CPU s per MP of a residual
    q = t["qualities"]
    jpeg_mp_here, jpeg_mp = f["mp_scored"] * q, others * t["mp"] * q
    if "score" in rules:
        model_here = (0.0 if keep else res_rate * jpeg_mp_here) + scoring(f["cameras"]) * jpeg_mp_here
        rest = max(rules["score"]["cpu"] - model_here, 0.0) / jpeg_mp_here
        ext["score"] = (rest + (0.0 if keep else res_rate) + scoring(t["cameras"])) * jpeg_mp
    # develop: the originals' pairs (one residual per scored image x every fingerprint) by the same model
    if "develop" in rules:
        rest = max(rules["develop"]["cpu"] - scoring(f["cameras"]) * f["mp_scored"], 0.0) / scale["develop"][1]
        ext["develop"] = rest * scale["develop"][2] + scoring(t["cameras"]) * others * t["mp"]
    # restore: per evaluated JPEG, its plain residual (unless stored), the computed methods (the classic
    # enhancers on the CPU, the models' runs), and every method's residual scored against every fingerprint
    # (one spectrum per residual, one term per fingerprint: score_residuals); what the measured job spent beyond
    # the models, the residual and that scoring (the enhancers, reading, tables) scales with the MP evaluated.
    # On the GPU the model runs at the docs' H100 rate; CPU-only at the rate measured here (OpenVINO, 1 thread).
    names, runs = default_methods()
    m_rate = model_rate(base)
    eval_mp_here, eval_mp = f["mp_evaluated"] * q, evaluated * q * t["mp"]
    restore_scoring = lambda cameras: len(names) * per_residual + per_print * cameras  # noqa: E731
    restore_rest = 0.0
    if "restore" in rules and eval_mp_here:
        known = ((0.0 if keep else res_rate) + runs * m_rate + restore_scoring(f["cameras"])) * eval_mp_here
        restore_rest = max(rules["restore"]["cpu"] - known, 0.0) / eval_mp_here
    restore_gpu_s = evaluated * q * GPU_RESTORE_S_PER_24MP * runs
    restore_cpu_s = ((0.0 if keep else res_rate) + restore_rest + restore_scoring(t["cameras"])) * eval_mp
    restore_cpu_only_s = restore_cpu_s + runs * m_rate * eval_mp
    # one restore job per camera: the holdout camera's (all its images evaluated) is the largest
    per_cam_other = others / t["cameras"]
    holdout_share = per_cam_other / evaluated if t["holdout"] else 1.0 / t["cameras"]
    pairs_s = scoring(t["cameras"]) * others * (1 + q) * t["mp"] + restore_scoring(t["cameras"]) * eval_mp
    train_s = TRAIN_STEPS * TRAIN_BATCH / GPU_TRAIN_PATCHES_S * GPU_TRAIN_OVERHEAD
    # summaries: CPU grows with the rows of the score tables (per image x residual x fingerprint)
    rows_target = (others * (1 + t["qualities"]) + evaluated * t["qualities"]) * t["cameras"]
    rows_here = max(f["score_rows"], 1)
    summary = {r: v for r, v in rules.items() if r not in scale and r not in ("train",) and v.get("rerun")
               and not r.startswith("(")}
    base_cpu = rules.get("(snakemake itself, dry-run)", {}).get("cpu", 0.0)
    table = score_table_cost(results, int(rows_target))
    loaders = [r for r in ("identification", "evaluation", "plots", "report_tables") if r in summary]
    summary_s = sum(v["cpu"] for v in summary.values()) + len(loaders) * table["cpu"]
    # phases (critical path): develop+residual and fingerprints on all cores; then score and the shards (one
    # single-thread job per split and camera) on the CPU, training on the GPU after the shards; then restore
    # (one GPU, resources gpu=1: one job at a time) and the summaries, one after the other.
    # the fingerprints first (develop scores the originals against them), one job per camera
    fp_job = ext.get("fingerprint", 0) / t["cameras"]
    phase1 = max(ext.get("fingerprint", 0) / cores, fp_job) + (ext.get("develop", 0) + ext.get("residual", 0)) / cores
    shards_train_job = ext.get("shards", 0) * t["train"] / t["trainval"] / (t["cameras"] - t["holdout"])
    calibrate_job = ext.get("calibrate", 0) / t["cameras"]
    phase2 = max((ext.get("score", 0) + ext.get("shards", 0) + ext.get("calibrate", 0)) / (cores - 1),
                 shards_train_job + train_s, calibrate_job)
    # restore: one job per camera; with --resources gpu=1 (the README's command) they run one after the other,
    # each with RESTORE_THREADS threads reading and scoring around the model (the GPU or those threads bound
    # it); without it they share the GPU side by side
    restore_turns = max(restore_gpu_s, restore_cpu_s / RESTORE_THREADS)
    restore_parallel = max(restore_gpu_s, restore_cpu_s / min(cores, t["cameras"]))
    phase3 = restore_turns + summary_s
    # the docs' scoring figure (docs/benchmarks.md "Scoring": one 24 MP residual against 10 fingerprints 2.98 s
    # on one quiet pinned core) for comparison with the measured linear-in-cameras rate
    docs_score = others * (1 + t["qualities"]) * 2.98
    total = phase1 + phase2 + phase3

    print("\n## Extrapolation: 10,000 images of 24 MP, 10 cameras (1,000 each), 16 cores, one GPU (H100)")
    print(f"assumptions: CPU s per unit as measured above (per MP scored for develop, per MP for residual, per MP "
          f"of fingerprint images, per MP of train+val images for shards), with the residuals computed and scored "
          f"in develop, score and restore by the cost model measured below (a residual's spectrum once, then per "
          f"fingerprint: the run has {f['cameras']} cameras, the drive {t['cameras']}); {t['fingerprint']} "
          f"fingerprint images a "
          f"camera, one holdout camera, 70/10/20 train/val/test, {t['patches']} patches per training JPEG and quality;"
          f" perfect packing of jobs on {cores} cores; training on the GPU {TRAIN_STEPS} steps x {TRAIN_BATCH} at "
          f"{GPU_TRAIN_PATCHES_S:.0f} patches/s (docs/benchmarks.md, H100, default model, eager) x "
          f"{GPU_TRAIN_OVERHEAD} for validations and overheads; restoring {GPU_RESTORE_S_PER_24MP} s per 24 MP "
          f"residual on the GPU (docs/model.md, H100, shipped model) plus computing the plain and scoring the restored "
          f"residuals on the CPU (the scoring model below); summaries: their measured CPU plus, for each that loads "
          f"the whole score "
          f"table ({', '.join(loaders)}), reading and grouping {rows_target:,.0f} rows ({rows_here:,} here): "
          f"{table['cpu']:.1f} CPU s, {fmt_bytes(table['memory'])} in memory, {fmt_bytes(table['csv'])} of CSV; "
          f"the CPU figures are this 2-core dev machine's, shared.\n")
    print("| stage | CPU hours | runs on | wall hours on the workstation |")
    print("| --- | ---: | --- | ---: |")
    for rule in ("develop", "residual", "fingerprint", "score", "shards", "calibrate"):
        if rule in ext:
            where = {"fingerprint": f"{t['cameras']} jobs (one per camera)",
                     "shards": f"2 x {t['cameras'] - t['holdout']} jobs (split x seen camera)",
                     "calibrate": f"{t['cameras']} jobs (one per camera), beside score",
                     "score": f"{cores - 1} cores, beside training"}.get(rule, f"{cores} cores")
            wall = (fp_job if rule == "fingerprint" else shards_train_job if rule == "shards"
                    else calibrate_job if rule == "calibrate" else ext[rule] / cores)
            print(f"| {rule} | {ext[rule] / 3600:.1f} | {where} | {wall / 3600:.2f} |")
    print(f"| train | (GPU) | GPU | {train_s / 3600:.2f} |")
    print(f"| restore ({', '.join(names)}: {runs} model runs per JPEG) | GPU {restore_gpu_s / 3600:.1f} + CPU "
          f"{restore_cpu_s / 3600:.1f} | {t['cameras']} jobs, "
          f"one at a time (--resources gpu=1), {RESTORE_THREADS} threads each (side by side on the GPU, without "
          f"--resources: {restore_parallel / 3600:.2f} h) | {restore_turns / 3600:.2f} |")
    print(f"| summaries ({', '.join(sorted(summary))}) | {summary_s / 3600:.3f} | one job each, in turn | "
          f"{summary_s / 3600:.3f} |")
    # ext["restore"] is the measured CPU restoration scaled up: on the workstation the GPU restores (above)
    cpu_total = sum(v for k, v in ext.items() if k != "restore") + restore_cpu_s + summary_s
    print(f"| **whole DAG (critical path)** | {cpu_total / 3600:.1f} CPU h | | "
          f"**{total / 3600:.2f}** |")
    print(f"\nmeasured here, CPU s per MP: a JPEG's residual {res_rate:.3f} (in score and restore"
          f"{': not counted, the drive keeps residuals' if keep else ''}); scoring a residual {per_residual:.4f} + "
          f"{per_print:.4f} per fingerprint ({scoring(10) * 24:.2f} s for a 24 MP residual against 10). Scoring "
          f"every residual of the drive (originals, JPEGs, restored) against every fingerprint: "
          f"{pairs_s / 3600:.1f} CPU h of the total: the share a GPU scoring path would take off the CPU.")
    print(f"\nphases (hours): develop+residual+fingerprints {phase1 / 3600:.2f}; score + shards on {cores - 1} cores"
          f" || (largest shards job, train split of one camera, {shards_train_job / 3600:.2f} + training "
          f"{train_s / 3600:.2f}) {phase2 / 3600:.2f}; restore + summaries "
          f"{phase3 / 3600:.2f}. Goal: under 4 h: {'met' if total < 4 * 3600 else 'NOT met'} "
          f"({total / 3600:.2f} h).")
    print(f"the originals' and JPEGs' pairs at the docs' rate (2.98 s per 24 MP residual against 10 fingerprints, "
          f"one quiet pinned core): {docs_score / 3600:.1f} CPU h, against "
          f"{scoring(t['cameras']) * others * (1 + q) * t['mp'] / 3600:.1f} CPU h by this run's model.")
    score_and_shards = (ext.get("score", 0) + ext.get("shards", 0) + ext.get("calibrate", 0)) / (cores - 1)
    dominant = max(("develop+residual+fingerprints", phase1), ("score + shards", score_and_shards),
                   ("shards (train split of one camera)", shards_train_job), ("restore", restore_turns),
                   ("summaries", summary_s), key=lambda kv: kv[1])
    print(f"dominant on the critical path: {dominant[0]} ({dominant[1] / 3600:.2f} h, {dominant[1] / total:.0%}); "
          f"most CPU: score ({ext.get('score', 0) / 3600:.0f} CPU h)")
    # CPU only (a lab without a GPU): no training (the shipped model, model.checkpoint: pretrained: the drive
    # method is the shipped model again, one model run per JPEG fewer), the models on the CPU. The restore jobs,
    # one per camera side by side, each with its camera's share of the cores (at most 4: restore_threads in
    # workflow/rules/common.smk), start when score and the calibrations are done.
    cpu_runs = runs - ("drive" in names)
    cpu_restore = restore_cpu_s + cpu_runs * m_rate * eval_mp
    seen_share = (1.0 - holdout_share) / max(t["cameras"] - t["holdout"], 1)
    job_threads = lambda share: max(1, min(RESTORE_THREADS, int(cores * share)))  # noqa: E731
    cpu_restore_job = max(cpu_restore * holdout_share / job_threads(holdout_share),
                          cpu_restore * seen_share / job_threads(seen_share))
    cpu_phase2 = max((ext.get("score", 0) + ext.get("calibrate", 0)) / cores, calibrate_job)
    cpu_phase3 = max(cpu_restore / cores, cpu_restore_job) + summary_s
    cpu_only = phase1 + cpu_phase2 + cpu_phase3
    cpu_only_h = (sum(v for k, v in ext.items() if k not in ("restore", "shards")) + cpu_restore + summary_s) / 3600
    print(f"\n## CPU only: the same drive on {cores} cores, no GPU, the shipped model (model.checkpoint: pretrained, "
          f"no shards, no training)")
    print(f"the models at {m_rate:.3f} CPU s per MP (shipped, OpenVINO, one thread, measured here), {cpu_runs} run(s) "
          f"per JPEG; restore {cpu_restore / 3600:.1f} CPU h in {t['cameras']} jobs side by side: the holdout "
          f"camera's ({holdout_share:.0%} of the evaluated images) with {job_threads(holdout_share)} threads, each "
          f"seen camera's ({seen_share:.0%}) with {job_threads(seen_share)}, threads assumed to scale perfectly; "
          f"the longest job {cpu_restore_job / 3600:.1f} h.")
    print(f"phases (hours): develop+residual+fingerprints {phase1 / 3600:.2f}; score + calibrate "
          f"{cpu_phase2 / 3600:.2f}; restore + summaries {cpu_phase3 / 3600:.2f}; whole DAG {cpu_only / 3600:.1f} h, "
          f"{cpu_only_h:.0f} CPU h. Goal: at most 24 h: {'met' if cpu_only <= 24 * 3600 else 'NOT met'}. Longest "
          f"chain: fingerprints, develop, score, then the "
          f"{'longest restore job' if cpu_restore_job > cpu_restore / cores else 'restore jobs'}.")
    # memory at 24 MP: per-image jobs scale with the image beyond the interpreter's base (the dry-run's RSS)
    base_rss = rules.get("(snakemake itself, dry-run)", {}).get("rss", 0.0)
    print(f"\npeak RSS at 24 MP (per-image rules and shards: measured x {t['mp'] / f['mp_image']:.2f}, score and "
          f"restore + the 10 float32 fingerprints of 24 MP ({fmt_bytes(t['cameras'] * t['mp'] * 4e6)}); "
          f"summaries: the rerun's peak (Snakemake's own process included) + 3 copies of the "
          f"{rows_target:,.0f}-row score table):")
    worst = 0.0
    for rule, r in rules.items():
        if rule.startswith("(") or rule == "all":
            continue
        if rule in summary:  # peak of the rerun (Snakemake's own process included) + 3 copies of the table
            est = r["rss"] + (3 * table["memory"] if rule in loaders else 0.0)
            worst = max(worst, est)
            print(f"  {rule}: measured {fmt_bytes(r['rss'])}, at 24 MP / 10,000 images about {fmt_bytes(est)}")
            continue
        # per-image rules: the whole measured peak scales with the image (conservative); score and restore hold
        # every fingerprint (float32) besides: add the target drive's
        scaled = rule in ("develop", "residual", "fingerprint", "score", "restore", "shards")
        factor = t["mp"] / f["mp_image"] if scaled else 1.0
        prints = t["cameras"] * t["mp"] * 1e6 * 4 if rule in ("score", "restore") else 0.0
        est = r["rss"] * factor + prints
        worst = max(worst, est)
        print(f"  {rule}: measured {fmt_bytes(r['rss'])}, at 24 MP / 10,000 images about {fmt_bytes(est)}")
    print("  train: on the GPU host memory does not grow with the drive (shards are read per batch); the rule "
          "declares mem_mb=8000 (a declaration; the demo's train job peaked at 2.7 GB)")
    print(f"largest: {fmt_bytes(worst)}; goal at most 8 GB a job: {'met' if worst <= 8 * GB else 'NOT met'}")
    _ = base_cpu


if __name__ == "__main__":
    main()
