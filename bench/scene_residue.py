"""Is a camera's match evidence its sensor's or its scene's? The diagnosis of issue 25 on real cameras.

For each camera folder of a drive of real JPEGs (best: the lossless 1024 px crops of
``bench/real_jpeg_crops.py``), the natural images in capture order (file name order) are split two ways
with the same number of fingerprint images:

* ``interleaved``: fingerprint from images 0, 2, 4, ..., tested on 1, 3, 5, ... Every test image has its
  neighbours in capture order (the same object from nearly the same angle) inside the fingerprint, as a
  random split or a leave-one-out has;
* ``blocked``: fingerprint from the first half, tested on the second half: far fewer shared views;
* ``flat`` (cameras with a ``flat/`` folder): fingerprint from the flat fields, tested on every natural
  image: a fingerprint with no scene in it.

Each test image is scored at its camera's own JPEG (``orig``) and as the workflow's copies at ``--qualities``
with the plain residual and with each ``--checkpoint`` model (``shipped``: the packaged model). Printed per
camera, split and quality: the median plain match PCE, each model's median per-image gain (both PCE floored
at 1, as ``evaluation/gains.csv``) and share of images lowered; and where the match lives: the NCC of the
residual with the fingerprint term on the smoother half of the image against the more textured half (halves
by the local gradient of the denoised image). Scene residue sits on edges and texture, so a match made of
scene would be far weaker on the smooth half (ratio well below 1); the flat-field fingerprints, which hold no
scene, give the reference. For a model, the ratio of its NCC to plain's on each half says where it gains or
loses.

    python bench/scene_residue.py /tmp/realcrop/drive/Images/Original [--checkpoint shipped PATH ...]

Residuals are cached in ``--cache`` (default: a ``.scene_residue_cache`` folder beside the drive).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from spnrestore.dataset.real import images_of
from spnrestore.jpeg import decode_rgb, encode_jpeg, read_rgb
from spnrestore.methods import get_method
from spnrestore.methods.registry import MethodContext, compute_residual
from spnrestore.metrics import gain_and_lowered
from spnrestore.spn import extract_residual
from spnrestore.spn.detection import pce
from spnrestore.spn.fingerprint import estimate_fingerprint, fingerprint_term
from spnrestore.spn.scene import smooth_half, smooth_textured_ncc

SIGMA = 5.0


def splits(natural: list[Path], flat: list[Path]) -> dict[str, tuple[list[Path], list[Path]]]:
    """Split name -> (fingerprint images, test images)."""
    out = {}
    half = len(natural) // 2
    if half >= 4:
        out["interleaved"] = (natural[0:2 * half:2], natural[1:2 * half:2])
        out["blocked"] = (natural[:half], natural[len(natural) - half:])
    if len(flat) >= 4 and natural:
        out["flat"] = (flat, natural)
    return out


class Residuals:
    """Residuals of one image's versions by method, cached on disk by file, quality and model."""

    def __init__(self, cache: Path, models: dict[str, str]):
        self.cache, self.models = cache, models
        self.context = MethodContext(SIGMA)
        cache.mkdir(parents=True, exist_ok=True)

    def _key(self, path: Path, quality, method: str) -> Path:
        spec = self.models.get(method, method)
        h = hashlib.sha256(f"{path.resolve()}|{quality}|{spec}|{path.stat().st_mtime_ns}".encode()).hexdigest()[:20]
        return self.cache / f"{h}.npy"

    @staticmethod
    def version(rgb: np.ndarray, quality) -> np.ndarray:
        """The camera's own pixels (``orig``) or those of the workflow's JPEG copy at ``quality``."""
        return rgb if quality == "orig" else decode_rgb(encode_jpeg(rgb, int(quality)))

    def get(self, path: Path, rgb: np.ndarray, quality, method: str) -> np.ndarray:
        """The residual of ``method`` of ``path``'s version at ``quality`` (its pixels ``rgb``)."""
        key = self._key(path, quality, method)
        if key.exists():
            return np.load(key)
        plain = extract_residual(rgb, SIGMA)
        if method == "plain":
            out = plain
        else:
            m = get_method(self.models[method])
            out = compute_residual(m, rgb, plain, 95 if quality == "orig" else int(quality), self.context)
        np.save(key, out.astype(np.float32))
        return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("originals", type=Path, help="folder of camera folders of JPEGs (flat fields in flat/)")
    parser.add_argument("--checkpoint", nargs="*", default=["shipped"],
                        help="model methods: 'shipped' or NAME=PATH (default: shipped)")
    parser.add_argument("--qualities", nargs="*", default=["orig", "90", "30"])
    parser.add_argument("--cameras", nargs="*", default=None)
    parser.add_argument("--splits", nargs="*", default=["interleaved", "blocked", "flat"])
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--csv", type=Path, default=None, help="write the per-image rows here")
    args = parser.parse_args(argv)
    models = {}
    for spec in args.checkpoint:
        name = spec.split("=", 1)[0]
        models[name] = spec
    cache = args.cache or args.originals.parent / ".scene_residue_cache"
    res = Residuals(cache, models)
    cameras = sorted(p for p in args.originals.iterdir() if p.is_dir())
    if args.cameras:
        cameras = [c for c in cameras if c.name in args.cameras]
    rows = []
    for cam in cameras:
        natural = images_of(cam)
        flat = images_of(cam / "flat") if (cam / "flat").is_dir() else []
        for split, (fp_images, tests) in splits(natural, flat).items():
            if split not in args.splits:
                continue
            K = estimate_fingerprint((read_rgb(p) for p in fp_images), SIGMA, names=[p.name for p in fp_images])
            for path in tests:
                rgb = read_rgb(path)
                smooth = smooth_half(rgb, res.get(path, rgb, "orig", "plain"))
                for q in args.qualities:
                    row = {"camera": cam.name, "split": split, "fingerprint_images": len(fp_images),
                           "image": path.stem, "quality": q}
                    version = Residuals.version(rgb, q)
                    vterm = fingerprint_term(K, version)
                    for name in ["plain"] + [m for m in models if q != "orig"]:
                        w = res.get(path, version, q, name)
                        row[f"pce_{name}"] = pce(w, vterm)
                        row[f"smooth_{name}"], row[f"textured_{name}"] = smooth_textured_ncc(w, vterm, smooth)
                    rows.append(row)
            print(f"{cam.name}: {split} done ({len(fp_images)} fingerprint, {len(tests)} test images)",
                  file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(summary(table, list(models)))
    return 0


def summary(table: pd.DataFrame, models: list[str]) -> str:
    head = ("| camera | split | n fp / test | Q | plain: median PCE, NCC smooth / textured | "
            + " | ".join(f"{m}: median gain, lowered, NCC vs plain smooth / textured" for m in models) + " |")
    lines = [head, "| --- | --- | --- | --- | ---: |" + " ---: |" * len(models)]
    for (camera, split), g in table.groupby(["camera", "split"], sort=False):
        n_test = g["image"].nunique()
        for q, at in g.groupby("quality", sort=False):
            plain = (f"{at['pce_plain'].median():.1f}, {at['smooth_plain'].median():.4f} / "
                     f"{at['textured_plain'].median():.4f}")
            cells = []
            for m in models:
                if f"pce_{m}" not in at or at[f"pce_{m}"].isna().all():
                    cells.append("")
                    continue
                gain, lowered = gain_and_lowered(at[f"pce_{m}"].to_numpy(), at["pce_plain"].to_numpy())
                ratio = [(at[f"{half}_{m}"] / at[f"{half}_plain"]).median() for half in ("smooth", "textured")]
                cells.append(f"{np.median(gain):.2f}x, {lowered.mean():.0%}, {ratio[0]:.2f} / {ratio[1]:.2f}")
            lines.append(f"| {camera} | {split} | {int(at['fingerprint_images'].iloc[0])} / {n_test} | {q} | {plain} | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
