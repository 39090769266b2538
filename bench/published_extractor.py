"""Our methods against a published learned PRNU extractor on the real development set (issue 25).

The published extractor is Zeng et al.'s SPN-CNN (H. Zeng, M. Hosseini, K. Zhu, Wang and Li, "Exposing
camera source identification through convolutional neural networks for PRNU extraction", 2021): a 17-layer
DnCNN without batch normalisation, trained on real camera images with a correlation loss against camera
fingerprints, whose output replaces the query's residual. Its weights are public in the zengh5/PRNU_CNN
repository (``Mymodels/DnCNN_SPN_Rho.pth``). This project never downloads them and never ships them: fetch the
file by hand and give its path with ``--weights``; without the file the script says so and exits 0.

The extractor reads the gray image in [0, 1] and its output is the residual itself (the repository's query
side, no zero-mean or Wiener step); it runs through OpenVINO where it imports (as the shipped model does on a
CPU), else torch.

Protocol (the harsher one of ``bench/scene_residue.py``): per camera, the natural images in capture order,
fingerprint from the first half and tested on the second half (``blocked``), and for the cameras with flat
fields a fingerprint of the flat fields tested on every natural image (``flat``). Every test image is scored
as the workflow's JPEG copy at each ``--qualities`` with ``plain``, ``shipped``, ``fused`` and the published
extractor, against every camera's fingerprint (the workflow's scoring path, ``spn.score_residuals``).

Printed, per quality and method, over the devices whose plain residual identifies their own images (median
PCE of their own JPEGs above the threshold; the others apart): the median per-image gain over plain (both PCE
floored at 1), the share of images lowered, the worst image, and the true matches at zero false matches (the
share of match pairs above the highest non-match pair of that method and quality); then per device.

    python bench/published_extractor.py /tmp/realcrop/drive/Images/Original --weights PATH/DnCNN_SPN_Rho.pth
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scene_residue import Residuals, splits
from spnrestore.dataset.real import images_of
from spnrestore.jpeg import read_rgb
from spnrestore.methods.registry import COMPUTED, Method, in_plain_units, register, registered, residual_std
from spnrestore.metrics import gain_and_lowered
from spnrestore.spn.fingerprint import estimate_fingerprint
from spnrestore.spn.residual import rgb2gray
from spnrestore.spn.roc import PCE_THRESHOLD, tpr_at_fpr
from spnrestore.spn.scoring import score_residuals

SIGMA = 5.0
NAME = "zeng2021"
LAYERS = 17
FEATURES = 64
OURS = ["shipped", "fused"]


def spn_cnn(state: dict):
    """The published network as a torch module with ``state`` loaded (strict): conv 1->64 with bias and ReLU,
    15 convs 64->64 without bias, each with ReLU, and a conv 64->1 without bias; keys ``dncnn.<index>.*``."""
    from torch import nn

    layers: list = [nn.Conv2d(1, FEATURES, 3, padding=1, bias=True), nn.ReLU()]
    for _ in range(LAYERS - 2):
        layers += [nn.Conv2d(FEATURES, FEATURES, 3, padding=1, bias=False), nn.ReLU()]
    layers.append(nn.Conv2d(FEATURES, 1, 3, padding=1, bias=False))
    net = nn.Sequential(*layers)
    net.load_state_dict({k.removeprefix("module.").removeprefix("dncnn."): v for k, v in state.items()}, strict=True)
    return net.eval()


class Extractor:
    """The published extractor from its weights file: ``residual(rgb)`` is its output for one image."""

    def __init__(self, weights: Path, runtime: str = "auto"):
        import torch

        self.net = spn_cnn(torch.load(weights, map_location="cpu", weights_only=True))
        self.compiled = None
        if runtime in ("auto", "openvino"):
            try:
                import openvino as ov
            except ImportError:
                if runtime == "openvino":
                    raise
            else:
                with warnings.catch_warnings():  # torch's tracer announces its own deprecation
                    warnings.simplefilter("ignore")
                    graph = ov.convert_model(self.net, example_input=torch.zeros(1, 1, 64, 64))
                self.compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self.runtime = "openvino" if self.compiled is not None else "torch"

    def residual(self, rgb: np.ndarray) -> np.ndarray:
        x = (rgb2gray(rgb) / np.float32(255.0))[None, None]
        if self.compiled is not None:
            return np.asarray(self.compiled(x)[0], np.float32)[0, 0]
        import torch

        with torch.no_grad():
            return self.net(torch.from_numpy(np.ascontiguousarray(x))).numpy()[0, 0]


def register_extractor(extractor: Extractor) -> Method:
    """The extractor as a computed method (its output in the plain residual's units, as every method's)."""
    if NAME in registered():
        return registered()[NAME]

    def compute(rgb, plain, quality, context):
        return in_plain_units(extractor.residual(rgb), residual_std(plain))

    return register(Method(NAME, "Zeng et al. 2021 SPN-CNN (DnCNN, correlation loss; published weights)",
                           COMPUTED, compute))


def score(originals: Path, qualities: list[str], res: Residuals, methods: list[str],
          only: str | None = None) -> pd.DataFrame:
    """Rows ``camera, split, image, quality, method, fingerprint, pce, match``: every test image (of the camera
    ``only`` where given) against every camera's fingerprint (flat fields where the camera has them, else the
    blocked split's)."""
    cameras = sorted(p for p in originals.iterdir() if p.is_dir())
    plan = {}
    for cam in cameras:
        natural = images_of(cam)
        flat = images_of(cam / "flat") if (cam / "flat").is_dir() else []
        both = splits(natural, flat)
        split = "flat" if "flat" in both else "blocked" if "blocked" in both else None
        if split is None:
            print(f"{cam.name}: too few images for a split, left out", file=sys.stderr)
            continue
        fp_images, tests = both[split]
        K = estimate_fingerprint((read_rgb(p) for p in fp_images), SIGMA, names=[p.name for p in fp_images])
        plan[cam.name] = (split, K, tests)
    fingerprints = {name: K for name, (_, K, _) in plan.items()}
    rows = []
    for name, (split, _, tests) in plan.items():
        if only is not None and name != only:
            continue
        for path in tests:
            rgb = read_rgb(path)
            for q in ["orig", *qualities]:
                version = Residuals.version(rgb, q)
                names = ["plain"] if q == "orig" else methods
                residuals = {m: res.get(path, version, q, m) for m in names}
                for method, scored in score_residuals(residuals, version, fingerprints, path.name).items():
                    rows += [{"camera": name, "split": split, "image": path.stem, "quality": q, "method": method,
                              "fingerprint": r["fingerprint"], "pce": r["pce"], "match": r["fingerprint"] == name}
                             for r in scored]
        print(f"{name}: {split}, {len(tests)} test images scored", file=sys.stderr, flush=True)
    return pd.DataFrame(rows)


def usable_cameras(table: pd.DataFrame, threshold: float = PCE_THRESHOLD) -> list[str]:
    """Cameras whose plain residual of their own JPEGs matches their fingerprint above ``threshold`` in median."""
    own = table[(table["quality"] == "orig") & table["match"]]
    med = own.groupby("camera")["pce"].median()
    return sorted(med[med > threshold].index)


def summarise(table: pd.DataFrame, methods: list[str], cameras: list[str]) -> pd.DataFrame:
    """Per quality and method over ``cameras``: median gain, lowered, worst image, true matches at zero false
    matches (non-match pairs: every test image of every camera against the other cameras' fingerprints)."""
    out = []
    for q, at in table[table["quality"] != "orig"].groupby("quality", sort=False):
        match = at[at["match"]].pivot_table(index=["camera", "image"], columns="method", values="pce")
        mine = match.loc[match.index.get_level_values("camera").isin(cameras)]
        for m in methods:
            gain, lowered = gain_and_lowered(mine[m].to_numpy(), mine["plain"].to_numpy())
            pairs = at[(at["method"] == m) & (at["camera"].isin(cameras) | ~at["match"])]
            both = pairs["match"].any() and not pairs["match"].all()
            out.append({"quality": q, "method": m, "images": len(mine),
                        "median_gain": float(np.median(gain)) if m != "plain" else 1.0,
                        "lowered": float(lowered.mean()) if m != "plain" else 0.0,
                        "worst": float(gain.min()) if m != "plain" else 1.0,
                        "tpr_at_fpr0": tpr_at_fpr(pairs["pce"], pairs["match"], 0.0) if both else np.nan,
                        "max_nonmatch": float(pairs.loc[~pairs["match"], "pce"].max())})
    return pd.DataFrame(out)


def per_device(table: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    out = []
    at = table[(table["quality"] != "orig") & table["match"]]
    for (camera, q), g in at.groupby(["camera", "quality"], sort=False):
        wide = g.pivot_table(index="image", columns="method", values="pce")
        row = {"camera": camera, "quality": q, "images": len(wide), "plain_median_pce": wide["plain"].median()}
        for m in methods:
            if m == "plain":
                continue
            gain, lowered = gain_and_lowered(wide[m].to_numpy(), wide["plain"].to_numpy())
            row[m] = f"{np.median(gain):.2f}x, {lowered.mean():.0%}"
        out.append(row)
    return pd.DataFrame(out)


def weights_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("originals", type=Path, help="folder of camera folders of JPEGs (flat fields in flat/)")
    parser.add_argument("--weights", type=Path, required=True,
                        help="the published extractor's weights (zengh5/PRNU_CNN: Mymodels/DnCNN_SPN_Rho.pth)")
    parser.add_argument("--qualities", nargs="*", default=["90", "60", "30"])
    parser.add_argument("--runtime", choices=["auto", "openvino", "torch"], default="auto")
    parser.add_argument("--cache", type=Path, default=None,
                        help="residual cache (default: .published_extractor_cache beside the drive)")
    parser.add_argument("--csv", type=Path, default=None, help="write every scored pair here")
    args = parser.parse_args(argv)
    if not args.weights.is_file():
        print(f"published_extractor: skipped: no weights file at {args.weights}. Fetch Mymodels/DnCNN_SPN_Rho.pth "
              "of the zengh5/PRNU_CNN repository by hand and give its path with --weights.")
        return 0
    extractor = Extractor(args.weights, args.runtime)
    register_extractor(extractor)
    print(f"published extractor {args.weights.name} (sha256 {weights_digest(args.weights)}), "
          f"{extractor.runtime}", file=sys.stderr)
    methods = ["plain", *OURS, NAME]
    cache = (args.cache or args.originals.parent / ".published_extractor_cache") / weights_digest(args.weights)
    res = Residuals(cache, {m: m for m in methods})
    table = score(args.originals, args.qualities, res, methods)
    if args.csv:
        table.to_csv(args.csv, index=False)
    cameras = usable_cameras(table)
    print(f"usable devices (plain median PCE of their own JPEGs > {PCE_THRESHOLD:g}): {', '.join(cameras)}")
    report(table, methods, cameras)
    return 0


def report(table: pd.DataFrame, methods: list[str], cameras: list[str]) -> None:
    """Print the summary over ``cameras``, the one over the others (apart), and the per-device table."""
    apart = sorted(set(table["camera"]) - set(cameras))
    print(f"apart: {', '.join(apart) or 'none'}\n")
    if cameras:
        print(summarise(table, methods, cameras).to_markdown(index=False, floatfmt=".3g"))
    if apart:
        print(f"\nthe devices apart ({', '.join(apart)}):")
        print(summarise(table, methods, apart).to_markdown(index=False, floatfmt=".3g"))
    print()
    print(per_device(table, methods).to_markdown(index=False, floatfmt=".1f"))


if __name__ == "__main__":
    sys.exit(main())
