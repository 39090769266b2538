"""Identification on synthetic demo cameras with known PRNU, with the package's own stages (no Snakemake).

Three cameras of the demo kind (512x768, 1 % PRNU), 24 fingerprint images each, held-out images scored
uncompressed and as JPEG 90/60/30. Prints the figures the issue asks to report.
"""

from __future__ import annotations

import numpy as np
import pytest

from spnrestore.config import default_config
from spnrestore.demo import make_demo_drive
from spnrestore.raw import develop_raw
from spnrestore.jpeg import encode_jpeg
from spnrestore.spn import FingerprintAccumulator, extract_residual, fingerprint_term, ncc, pce

import cv2

pytestmark = pytest.mark.slow
N_FINGERPRINT = 24


@pytest.fixture(scope="module")
def cameras(project_root, tmp_path_factory):
    settings = default_config()["develop"]
    drive = make_demo_drive(tmp_path_factory.mktemp("demo") / "d", cameras=3, images_per_camera=32, seed=11)
    out = {}
    for folder in sorted((drive / "Images" / "Original").iterdir()):
        rgbs = [develop_raw(p, settings).rgb for p in sorted(folder.iterdir())]
        acc = FingerprintAccumulator()
        for rgb in rgbs[:N_FINGERPRINT]:
            acc.add(rgb)
        true_k = np.load(drive / "truth" / folder.name / "K.npy")
        out[folder.name] = {"K": acc.finalize(), "true": true_k, "test": rgbs[N_FINGERPRINT:]}
    return out


def jpeg(rgb, quality):
    return cv2.imdecode(np.frombuffer(encode_jpeg(rgb, quality), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def test_fingerprint_correlates_with_the_true_sensor_pattern(cameras):
    values = {name: ncc(cam["K"], cam["true"]) for name, cam in cameras.items()}
    print("\nNCC(estimated K, true K):", {k: round(v, 3) for k, v in values.items()})
    assert min(values.values()) > 0.3
    crossed = [ncc(a["K"], b["true"]) for n, a in cameras.items() for m, b in cameras.items() if n != m]
    assert max(abs(c) for c in crossed) < 0.05


def test_held_out_originals_identified_and_jpeg_figures(cameras):
    table = {}
    for quality in (None, 90, 60, 30):
        match, nonmatch, correct = [], [], 0
        for name, cam in cameras.items():
            for rgb in cam["test"]:
                image = rgb if quality is None else jpeg(rgb, quality)
                w = extract_residual(image)
                scores = {other: pce(w, fingerprint_term(c["K"], image)) for other, c in cameras.items()}
                match.append(scores[name])
                nonmatch += [s for other, s in scores.items() if other != name]
                correct += max(scores, key=scores.get) == name and scores[name] > 60
        n = len(match)
        table[quality or "original"] = (correct / n, np.mean(np.array(match) > 60), np.median(match), max(nonmatch))
    print("\nquality: accuracy, TPR at PCE>60, median match PCE, max non-match PCE")
    for key, row in table.items():
        print(f"{key}: {row[0]:.3f} {row[1]:.3f} {row[2]:.1f} {row[3]:.1f}")
    assert table["original"][0] == 1.0
    assert all(row[3] < 60 for row in table.values())
    assert table["original"][2] > 20 * table[30][2]  # compression destroys most of the evidence
