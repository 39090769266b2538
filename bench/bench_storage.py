"""Benchmark: bytes a run writes (drive folders + results/) against the bytes of its originals (issue 16).

Runs the whole workflow on a generated demo-like drive (the DNG demo's cameras, default 5 x 64 shots of
256 x 384: the demo's proportions at a quarter of its pixels; training cut to a few steps, which does not
change what is stored) with the default storage settings, or with ``--config`` overrides, and prints the
bytes per folder and kind, the ratio to the originals, bytes per original pixel, and the extrapolation to
a 24 MP RAW drive. ``--read DIR`` measures an existing run instead (a drive with Images/ and a results
folder, e.g. the demo's ``.demo``: ``--read .demo``). Then what the shards' packed pixels cost: their bytes
against raw pixels, by JPEG quality, and the rate at which training reads batches of 32 rows (patches/s on
one core, pixels decoded from the stored files against the same pixels already in memory).

    python bench/bench_storage.py                                   # default storage (float16, no previews)
    python bench/bench_storage.py --config "storage={residual_dtype: float32, previews: true}"
    python bench/bench_storage.py --read .demo                      # the demo as it is on disk
    python bench/bench_storage.py --restored-pce .demo              # restored PCE: float32 vs float16 input

``--restored-pce DIR`` restores the first 3 test/holdout images of each camera of a finished run (its
model, fingerprints and float32 or float16 residuals) from the plain residual as stored and rounded to
float16, and prints how far the PCE of the restored residuals moves (the scores use the restored residual
in memory; the second figure also rounds it, as a reader of the stored file sees it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: Bytes of one 24 MP RAW file assumed for the extrapolation: 14-bit losslessly compressed (about 1 byte a
#: pixel: Nikon/Sony/Canon 24 MP files are 24-30 MB).
RAW_24MP_BYTES = 25e6
#: The 24 MP drive of the extrapolation: 10 cameras x 1,000 images, 3 qualities, the default config: 24
#: fingerprint images a camera, one holdout camera, of the others 70/10/20 % train/val/test, 24 patches of
#: 128 x 128 per training JPEG.
DRIVE_24MP = {"images": 10_000, "cameras": 10, "fingerprint": 24, "holdout": 1, "trainval": 0.8, "test": 0.2,
              "qualities": 3, "patches": 24}
TRAIN = ("train={settings: {steps: 20, batch_size: 8, checkpoint_every: 10, num_workers: 0, progress: false, "
         "model: {width: 8, max_width: 16, depth: 2, blocks: 1, hourglass: 1, hourglass_depth: 1, q_embed: 16}, "
         "discriminator: {width: 8, layers: 2}, adv_start_step: 10}}")


def kind_of(part: str, rel: Path) -> str:
    """The kind of an output file by where it lies (drive folder or results) and its name."""
    if part == "results":
        first = rel.parts[0] if len(rel.parts) > 1 else "tables"
        return {"dataset": "results: shards", "intensity": "results: gray intensities",
                "model": "results: model"}.get(first, "results: tables, logs, report")
    if part == "Compressed":
        return "Compressed: JPEGs"
    if rel.suffix == ".png":
        return "SPN: previews"
    if rel.name == "fingerprint.npy":
        return "SPN: fingerprints"
    if rel.parts[1] == "restored":
        return "SPN: restored residuals"
    if rel.parts[1] == "original":
        return "SPN: residuals of the originals"
    return "SPN: JPEG residuals"


def measure(drive: Path, results: Path) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """(bytes of the originals, pixels of those developed (the run's manifest), bytes and files by kind)."""
    import pandas as pd

    originals = [p for p in (drive / "Images" / "Original").rglob("*") if p.is_file()]
    manifest = pd.read_csv(results / "manifest.csv", keep_default_na=False)
    ok = manifest[manifest["status"] == "ok"]
    pixels = int((ok["width"].astype(int) * ok["height"].astype(int)).sum())
    sizes, files = defaultdict(int), defaultdict(int)
    for part, folder in (("Compressed", drive / "Images" / "Compressed"), ("SPN", drive / "Images" / "SPN"),
                         ("results", results)):
        for p in folder.rglob("*"):
            if p.is_file():
                kind = kind_of(part, p.relative_to(folder))
                sizes[kind] += p.stat().st_size
                files[kind] += 1
    return sum(p.stat().st_size for p in originals), pixels, dict(sizes), dict(files)


def extrapolate(sizes: dict, files: dict, pixels: int, images: int, patches: int,
                small_previews: bool) -> tuple[dict, float]:
    """MB per image of a 24 MP drive (:data:`DRIVE_24MP`) by kind: files that scale with the image (JPEGs,
    residuals, previews, intensities) from their measured bytes per image pixel, shards from their measured
    bytes per patch, with the drive's share of fingerprint, training and evaluated images; previews of at
    most 512 px (``small_previews``) per file."""
    d, mp = DRIVE_24MP, 24e6
    per_camera = d["images"] / d["cameras"]
    others = 1 - d["fingerprint"] / per_camera
    seen = (d["cameras"] - d["holdout"]) / d["cameras"]
    counts = {"Compressed: JPEGs": d["qualities"], "SPN: JPEG residuals": d["qualities"],
              # written for the scored images only (not for those that build fingerprints)
              "SPN: residuals of the originals": others, "results: gray intensities": others,
              "SPN: restored residuals": d["qualities"] * others * (seen * d["test"] + 1 - seen),
              "SPN: previews": d["qualities"] * 2 + 1}
    image_px = pixels / images
    out = {}
    for kind, n in counts.items():
        if files.get(kind):
            scale = 1.0 if kind == "SPN: previews" and small_previews else mp / image_px
            out[kind] = sizes[kind] / files[kind] * scale * n / 1e6
    if patches and sizes.get("results: shards"):
        out["results: shards"] = (sizes["results: shards"] / patches * d["patches"] * d["qualities"]
                                  * others * seen * d["trainval"] / 1e6)
    return out, sum(out.values())


def run(args) -> tuple[Path, Path, float]:
    from spnrestore.demo.drive import make_demo_drive

    base = Path(tempfile.mkdtemp(prefix="bench_storage-", dir=args.tmp))
    drive = make_demo_drive(base / "drive", cameras=args.cameras, images_per_camera=args.images,
                            height=args.height, width=args.width)
    work = base / "work"
    work.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(work), "--cores",
           str(args.cores), "--config", f"external_drive={drive}", f"results_dir={work / 'results'}", TRAIN,
           *args.config]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode:
        sys.exit(f"bench_storage: the workflow failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return drive, work / "results", time.perf_counter() - start


def restored_pce(run: Path, per_camera: int = 3) -> None:
    """PCE of restored residuals from float32 and float16 plain residuals of a finished run (see above)."""
    import numpy as np
    import pandas as pd

    from spnrestore.jpeg import read_rgb
    from spnrestore.model.inference import load_restorer, restore_residual
    from spnrestore.residual_files import load_residual
    from spnrestore.spn import residual_settings, score_residual

    spn = run / "drive" / "Images" / "SPN"
    prints = {c.name: load_residual(c / "fingerprint.npy") for c in sorted(spn.iterdir())}
    restorer = load_restorer(run / "results" / "model" / "restorer.pt", "cpu", residual=residual_settings(5.0))
    manifest = pd.read_csv(run / "results" / "manifest.csv", keep_default_na=False)
    rows = []
    for r in manifest[manifest["role"].isin(["test", "holdout"])].groupby("camera").head(per_camera).itertuples():
        for q in (90, 60, 30):
            rgb = read_rgb(run / "drive" / "Images" / "Compressed" / r.camera / str(q) / f"{r.image}.jpg")
            plain = load_residual(spn / r.camera / str(q) / f"{r.image}.npy")
            full = restore_residual(restorer, rgb, plain, q)
            half = restore_residual(restorer, rgb, plain.astype(np.float16).astype(np.float32), q)
            stored = half.astype(np.float16).astype(np.float32)
            scores = [score_residual(x, rgb, prints) for x in (full, half, stored)]
            rows += [[s["pce"] for s in trio] for trio in zip(*scores)]
    pce = np.array(rows)
    strong = np.abs(pce[:, 0]) >= 60
    print(f"restored residuals of {len(pce) // len(prints)} JPEGs x {len(prints)} fingerprints = {len(pce)} pairs "
          f"({strong.sum()} with PCE >= 60)")
    for col, what in ((1, "float16 plain residual in"), (2, "float16 in, restored residual stored float16")):
        diff = np.abs(pce[:, col] - pce[:, 0])
        print(f"{what}: largest |dPCE| / max(|PCE|, 60) {(diff / np.maximum(np.abs(pce[:, 0]), 60)).max():.2e}, "
              f"relative at PCE >= 60 {(diff[strong] / np.abs(pce[strong, 0])).max():.2e}, absolute {diff.max():.3g}")


def shard_reads(results: Path, batch: int = 32, batches: int = 40) -> None:
    """Bytes of the shards' packed pixels against raw pixels by quality, and the read rate of batches."""
    import cv2
    import numpy as np

    from spnrestore.dataset.shard_reader import FingerprintFiles, list_shards, open_shard, read_rows

    cv2.setNumThreads(1)
    shards = [s for split in ("train", "val") for s in list_shards(results / "dataset", split)]
    if not shards or not (shards[0] / "rgb_files.npy").is_file():
        print("\nshards: none with packed pixels")
        return
    stored, raw = defaultdict(int), defaultdict(int)
    files = FingerprintFiles()
    opened = [open_shard(s, files) for s in shards]
    for shard, arrays in zip(shards, opened):
        sizes = np.diff(np.load(shard / "rgb_offsets.npy"))
        quality = np.asarray(arrays["quality"])
        for q in np.unique(quality):
            stored[int(q)] += int(sizes[quality == q].sum())
            raw[int(q)] += int((quality == q).sum()) * int(np.prod(arrays["rgb"].shape[1:]))
    print("\n| shards' pixels | " + " | ".join(f"Q{q}" for q in sorted(stored)) + " | all |")
    print("| --- | " + " | ".join("---:" for _ in stored) + " | ---: |")
    print("| stored bytes / raw bytes | " + " | ".join(f"{stored[q] / raw[q]:.3f}" for q in sorted(stored))
          + f" | {sum(stored.values()) / sum(raw.values()):.3f} |")
    rng = np.random.default_rng(0)
    picks = [(k, np.sort(rng.choice(len(opened[k]["quality"]), min(batch, len(opened[k]["quality"])), replace=False)))
             for k in rng.integers(0, len(opened), batches)]
    in_memory = [dict(a, rgb=np.asarray(a["rgb"])) for a in opened]
    rates = {}
    for name, source in (("decoded", opened), ("in memory", in_memory)):
        start, rows = time.process_time(), 0
        for k, pick in picks:
            rows += len(read_rows(source[k], pick)["rgb"])
        rates[name] = rows / (time.process_time() - start)
    print(f"\nreading batches of {batch} rows (pixels, residual, quality, both fingerprint terms), one core: "
          f"{rates['decoded']:.0f} patches/s with the pixels decoded, {rates['in memory']:.0f} with them in memory")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--read", type=Path, help="measure an existing run: a folder with drive/ and results/")
    ap.add_argument("--restored-pce", type=Path, help="a finished run (drive/, results/): restored PCE f32 vs f16")
    ap.add_argument("--cameras", type=int, default=5)
    ap.add_argument("--images", type=int, default=64, help="shots per camera")
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--width", type=int, default=384)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--tmp", default=None, help="where the generated drive and run go (a temporary folder)")
    ap.add_argument("--config", nargs="*", default=[], help="extra snakemake --config items, e.g. storage={...}")
    args = ap.parse_args(argv)
    if args.restored_pce:
        return restored_pce(args.restored_pce)
    if args.read:
        drive, results = args.read / "drive", args.read / "results"
        if not results.is_dir():  # a run of this bench: <tmp>/bench_storage-*/{drive,work/results}
            results = args.read / "work" / "results"
        what = f"existing run {args.read}"
    else:
        drive, results, wall = run(args)
        what = (f"generated drive: {args.cameras} cameras x {args.images} DNG shots of {args.height}x{args.width}"
                f", storage config {args.config or 'default'}; workflow {wall:.0f} s on {args.cores} cores")
    original, pixels, sizes, files = measure(drive, results)
    total = sum(sizes.values())
    print(f"# {what}")
    print(f"originals: {original / 1e6:.1f} MB, {pixels / 1e6:.1f} MP ({original / pixels:.2f} bytes a pixel)\n")
    import pandas as pd

    images = int((pd.read_csv(results / "manifest.csv", keep_default_na=False)["status"] == "ok").sum())
    dataset = results / "dataset" / "manifest.csv"
    patches = len(pd.read_csv(dataset)) if dataset.is_file() else 0
    from PIL import Image

    preview = next((drive / "Images" / "SPN").rglob("*.png"), None)
    small = preview is None or max(Image.open(preview).size) <= 512
    big, per_image = extrapolate(sizes, files, pixels, images, patches, small)
    print("| output | MB | x originals | bytes per original pixel | files | 24 MP drive: MB per image |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for kind in sorted(sizes):
        b = sizes[kind]
        print(f"| {kind} | {b / 1e6:.1f} | {b / original:.2f} | {b / pixels:.2f} | {files[kind]} | "
              f"{big.get(kind, float('nan')):.1f} |")
    print(f"| **all outputs** | **{total / 1e6:.1f}** | **{total / original:.2f}** | {total / pixels:.2f} | "
          f"{sum(files.values())} | **{per_image:.1f}** |")
    d = DRIVE_24MP
    print(f"\n24 MP RAW drive ({d['images']:,} images of {d['cameras']} cameras, RAW files of "
          f"{RAW_24MP_BYTES / 1e6:.0f} MB; fingerprints, model, tables left out): {per_image:.0f} MB of outputs "
          f"per image, {per_image * 1e6 / RAW_24MP_BYTES:.2f}x the originals, {per_image * d['images'] / 1e6:.2f} TB "
          f"(originals {RAW_24MP_BYTES * d['images'] / 1e12:.2f} TB); this run's {patches} patches for {images} images")
    shard_reads(results)


if __name__ == "__main__":
    main()
