"""Evaluation and training figures: PNG files that exist, decode, have the expected size and are not blank."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from spnrestore import figures
from spnrestore.errors import SpnRestoreError

QUALITIES = (90, 60, 30)
CAMERAS = ("cam_a", "cam_b", "cam_c")


def px(inches: float) -> int:
    """Pixels of a figure side of ``inches`` at the figures' resolution."""
    return round(inches * figures.DPI)


def decoded(path, width, height):
    """The PNG as uint8 pixels, after checking its size and that it shows more than a blank canvas."""
    assert path.is_file() and path.suffix == ".png"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} does not decode as an image"
    assert image.shape[:2] == (height, width)
    gray = image.mean(axis=2)
    assert gray.std() > 5 and (gray < 128).mean() > 0.002, "figure is blank"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 20, "figure has almost no colours"
    return image


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    """A scores table like evaluation/scores.csv: 2 subsets x 3 cameras x 4 images x 3 qualities x 3 methods x 3
    fingerprints; match PCE grows with quality and method, non-match PCE is signed noise."""
    rng = np.random.default_rng(1)
    rows = []
    level = {"plain": 0.0, "drive": 0.6, "original": 2.0}
    for subset in ("seen", "holdout"):
        for camera in CAMERAS:
            for i in range(4):
                for q in QUALITIES:
                    for method in level:
                        for fingerprint in CAMERAS:
                            match = fingerprint == camera
                            pce = (10 ** rng.normal(0.8 + q / 40 + level[method], 0.6) if match
                                   else rng.normal(0, 3) * rng.choice([0.1, 1, 10]))
                            rows.append({"camera": camera, "image": f"{subset}_{camera}_{i}", "role": "test",
                                         "subset": subset, "quality": q, "method": method,
                                         "fingerprint": fingerprint, "pce": pce, "ncc": pce / 1e4, "match": match})
    return pd.DataFrame(rows)


def test_roc_curves_one_panel_per_quality(scores, tmp_path):
    out = figures.roc_curves(scores, tmp_path / "fig" / "roc.png", 60, subset="seen")
    assert out == tmp_path / "fig" / "roc.png"
    decoded(out, px(4.2 * len(QUALITIES)), px(4.0))
    assert not list(out.parent.glob(".*.tmp")), "temporary file left behind"


def test_roc_curves_read_the_csv(scores, tmp_path):
    csv = tmp_path / "scores.csv"
    scores.to_csv(csv, index=False)
    out = figures.roc_curves(csv, tmp_path / "roc.png", 30, subset="holdout")
    decoded(out, px(4.2 * len(QUALITIES)), px(4.0))


def test_pce_distributions_grid_of_quality_by_method(scores, tmp_path):
    out = figures.pce_distributions(scores, tmp_path / "pce.png", 60)
    decoded(out, px(3.8 * 3), px(2.8 * len(QUALITIES) + 0.5))
    one = figures.pce_distributions(scores[scores["quality"] == 30], tmp_path / "pce30.png", 60, subset="seen")
    decoded(one, px(3.8 * 3), px(2.8 + 0.5))


def test_pce_tick_labels_share_one_notation():
    """Every tick of the symlog PCE axis is 0 or a signed power of ten written the same way (no mix of 100 and
    1e4), and the counts above the threshold go in the titles, not over the bars."""
    _, ticks = figures._symlog_bins(np.array([-30.0, 0.5, 2e4]))
    labels = [figures._pce_label(t) for t in ticks]
    assert labels == ["$-1$", "0", "$1$", "$10^{2}$", "$10^{4}$"], labels
    assert figures._pce_label(100.0) == "$10^{2}$" and figures._pce_label(1e4) == "$10^{4}$"
    assert figures._pce_label(-1.0) == "$-1$" and figures._pce_label(10.0) == "$10$"


def test_training_loss_names_are_explained():
    assert set(figures.LOSS_COLUMNS) <= set(figures.LOSS_LABELS)
    assert "low-frequency" in figures.LOSS_LABELS["lf"] and "high-frequency" in figures.LOSS_LABELS["hf"]


def test_bad_tables_are_clear_errors(scores, tmp_path):
    with pytest.raises(SpnRestoreError, match=r"lacks the column\(s\) \['pce'\]"):
        figures.roc_curves(scores.drop(columns="pce"), tmp_path / "x.png", 60)
    with pytest.raises(SpnRestoreError, match="no rows of subset 'other'"):
        figures.pce_distributions(scores, tmp_path / "x.png", 60, subset="other")
    with pytest.raises(SpnRestoreError, match="absent.csv: scores table does not exist"):
        figures.roc_curves(tmp_path / "absent.csv", tmp_path / "x.png", 60)
    assert not (tmp_path / "x.png").exists()


def logs(tmp_path):
    """train_log.csv and val_log.csv with the columns the trainer writes (adv and d start at step 300)."""
    step = np.arange(10, 1010, 10)
    decay = np.exp(-step / 400)
    train = pd.DataFrame({"step": step, "epoch": step / 250, "lr": 2e-4 * (0.1 + 0.9 * decay), "total": 0.2 + decay,
                          "corr": 0.15 + 0.8 * decay, "lf": 0.02 + 0.1 * decay, "hf": 0.03 + 0.05 * decay,
                          "adv": np.where(step >= 300, 0.3, np.nan), "d": np.where(step >= 300, 0.25, np.nan),
                          "time_s": step * 0.1})
    vstep = np.arange(0, 1001, 200)
    gain = 0.02 * (1 - np.exp(-vstep / 300))
    val = pd.DataFrame({"step": vstep, "epoch": vstep / 250, "n": 64, "ncc_plain": 0.05, "ncc_restored": 0.05 + gain,
                        "gain": gain, "gain_ratio": 1 + gain / 0.05, "nonmatch_plain": 0.001,
                        "nonmatch_restored": 0.001 + gain / 50, "nonmatch_raise": gain / 50,
                        "nonmatch_raise_se": 0.0005, "eligible": True, "ncc_plain_q30": 0.02,
                        "ncc_restored_q30": 0.02 + gain, "ncc_plain_q90": 0.08, "ncc_restored_q90": 0.08 + gain / 2,
                        "is_best": [True, True, True, False, True, False]})
    train.to_csv(tmp_path / "train_log.csv", index=False)
    val.to_csv(tmp_path / "val_log.csv", index=False)
    return tmp_path / "train_log.csv", tmp_path / "val_log.csv"


def test_training_curves_with_and_without_validation(tmp_path):
    train, val = logs(tmp_path)
    out = figures.training_curves(train, tmp_path / "training.png", val)
    decoded(out, 1100, 750)
    gain = np.linspace(0.5, 0.1, 6)
    images = pd.read_csv(val).assign(pce_plain_q30=25.0, pce_restored_q30=25.0 * 2 ** gain, pce_plain_q90=600.0,
                                     pce_restored_q90=610.0, pce_nonmatch_plain=5.8,
                                     pce_nonmatch_restored=np.linspace(4, 20, 6), pce_gain=gain)
    decoded(figures.training_curves(train, tmp_path / "images.png", images), 1100, 1125)
    only = figures.training_curves(pd.read_csv(train), tmp_path / "losses.png", tmp_path / "absent_val_log.csv")
    decoded(only, 1100, 380)


def crop_rows(rng, n=2, shape=(200, 240)):
    k = rng.normal(0, 0.02, shape).astype(np.float32)
    rows = []
    for i in range(n):
        term = (k * rng.uniform(50, 200, shape)).astype(np.float32)
        rows.append(figures.CropRow(f"cam_a/img_{i} Q30", [
            figures.CropPanel("plain residual", (0.2 * term + rng.normal(0, 3, shape)).astype(np.float32), 12.5),
            figures.CropPanel("restored residual", (0.5 * term + rng.normal(0, 2, shape)).astype(np.float32), 80.2),
            figures.CropPanel("original residual", (term + rng.normal(0, 1, shape)).astype(np.float32), 2345.0),
            figures.CropPanel("fingerprint term K*I", term)]))
    return rows


def test_residual_crops_same_location_each_own_scale(tmp_path):
    rng = np.random.default_rng(3)
    out = figures.residual_crops(crop_rows(rng), tmp_path / "crops.png", size=64, origin=(10, 500))
    decoded(out, px(2.6 * 4), px(2.8 * 2))


def test_residual_crops_refuse_maps_of_different_sizes(tmp_path):
    rows = crop_rows(np.random.default_rng(4), n=1)
    rows[0].panels[1].array = rows[0].panels[1].array[:100]
    with pytest.raises(SpnRestoreError, match="cam_a/img_0 Q30: the maps have different sizes"):
        figures.residual_crops(rows, tmp_path / "crops.png")


def test_drive_crop_row_reads_the_drive_layout(tmp_path, scores):
    from spnrestore.jpeg import write_jpeg
    from spnrestore.paths import DrivePaths
    from spnrestore.residual_files import save_residual
    from spnrestore.stages.plots import drive_crop_row

    rng = np.random.default_rng(5)
    drive = DrivePaths(tmp_path, tmp_path / "Original", tmp_path / "compressed", tmp_path / "SPN", tmp_path / "results")
    shape = (160, 192)
    write_jpeg(drive.jpeg("cam_a", 30, "seen_cam_a_0"), rng.integers(0, 255, (*shape, 3), np.uint8), 30)
    save_residual(drive.fingerprint("cam_a"), rng.normal(0, 0.02, shape).astype(np.float32))
    for path in (drive.residual("cam_a", 30, "seen_cam_a_0"), drive.method_residual("cam_a", "drive", 30, "seen_cam_a_0"),
                 drive.residual("cam_a", "original", "seen_cam_a_0")):
        save_residual(path, rng.normal(0, 2, shape).astype(np.float32))
    row = drive_crop_row(drive, "cam_a", "seen_cam_a_0", 30, scores)
    assert [p.label for p in row.panels] == ["plain residual", "drive residual", "original residual",
                                             "fingerprint term K*I"]
    own = scores[(scores["image"] == "seen_cam_a_0") & (scores["fingerprint"] == "cam_a") & (scores["quality"] == 30)]
    assert row.panels[1].pce == pytest.approx(float(own.loc[own["method"] == "drive", "pce"].iloc[0]))
    assert row.panels[3].pce is None and row.panels[3].array.shape == shape
    decoded(figures.residual_crops([row], tmp_path / "drive.png"), px(2.6 * 4), px(2.8))


def test_drive_crop_row_computes_the_residuals_a_drive_does_not_keep(tmp_path, scores):
    """Default storage (keep_residuals false): the plain residual is computed from the JPEG, the drive model's
    by the model, as the score and restore rules do; only the original's residual is read."""
    from spnrestore.jpeg import read_rgb, write_jpeg
    from spnrestore.model.inference import load_restorer, restore_residual
    from spnrestore.model.pretrained import resolve_checkpoint
    from spnrestore.paths import DrivePaths
    from spnrestore.residual_files import save_residual
    from spnrestore.spn import extract_residual
    from spnrestore.stages.plots import drive_crop_row

    rng = np.random.default_rng(6)
    drive = DrivePaths(tmp_path, tmp_path / "Original", tmp_path / "compressed", tmp_path / "SPN", tmp_path / "results")
    shape = (160, 192)
    write_jpeg(drive.jpeg("cam_a", 30, "seen_cam_a_0"), rng.integers(0, 255, (*shape, 3), np.uint8), 30)
    save_residual(drive.fingerprint("cam_a"), rng.normal(0, 0.02, shape).astype(np.float32))
    save_residual(drive.residual("cam_a", "original", "seen_cam_a_0"), rng.normal(0, 2, shape).astype(np.float32))
    from spnrestore.methods import MethodContext

    restorer = load_restorer(resolve_checkpoint("pretrained"), "cpu")
    context = MethodContext(5.0, resolve_checkpoint("pretrained"), "cpu")
    row = drive_crop_row(drive, "cam_a", "seen_cam_a_0", 30, scores, sigma=5.0, storage={}, context=context)
    rgb = read_rgb(drive.jpeg("cam_a", 30, "seen_cam_a_0"))
    plain = extract_residual(rgb, sigma=5.0)
    assert [p.label for p in row.panels] == ["plain residual", "drive residual", "original residual",
                                             "fingerprint term K*I"]
    assert np.array_equal(row.panels[0].array, plain)
    assert np.allclose(row.panels[1].array, restore_residual(restorer, rgb, plain, 30), atol=1e-5)
    without = drive_crop_row(drive, "cam_a", "seen_cam_a_0", 30, scores, sigma=5.0, storage={})
    assert [p.label for p in without.panels][1] == "original residual"  # no context: no model panel
    # the original's residual not stored (the default): developed again, or left out without a developer
    original = np.load(drive.residual("cam_a", "original", "seen_cam_a_0"))
    drive.residual("cam_a", "original", "seen_cam_a_0").unlink()
    asked = []
    again = drive_crop_row(drive, "cam_a", "seen_cam_a_0", 30, scores, sigma=5.0, storage={},
                           develop=lambda camera, image: asked.append((camera, image)) or original)
    assert asked == [("cam_a", "seen_cam_a_0")] and np.array_equal(again.panels[1].array, original)
    assert [p.label for p in drive_crop_row(drive, "cam_a", "seen_cam_a_0", 30, scores, sigma=5.0,
                                            storage={}).panels] == ["plain residual", "fingerprint term K*I"]


def test_the_crop_figure_restores_a_window_around_its_crop(tmp_path):
    """A drive that keeps no restored residual: the figure restores the central crop with 192 px of context
    (on the 16 px block grid), which there agrees with the whole image's restoration as its tiles do."""
    from spnrestore.figures import CROP_SIDE
    from spnrestore.jpeg import read_rgb, write_jpeg
    from spnrestore.model.inference import load_restorer, restore_residual
    from spnrestore.model.pretrained import resolve_checkpoint
    from spnrestore.paths import DrivePaths
    from spnrestore.spn import extract_residual
    from spnrestore.methods import MethodContext, get_method
    from spnrestore.stages.plots import _method_window

    rng = np.random.default_rng(8)
    drive = DrivePaths(tmp_path, tmp_path / "Original", tmp_path / "compressed", tmp_path / "SPN", tmp_path / "results")
    h, w = 720, 1000
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 120 + 80 * np.sin(x / 37) * np.cos(y / 23)
    write_jpeg(drive.jpeg("cam", 30, "img"), np.clip(np.stack([base, base * 0.9 + 10, base * 0.7 + 30], -1)
                                                     + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8), 30)
    rgb = read_rgb(drive.jpeg("cam", 30, "img"))
    plain = extract_residual(rgb)
    restorer = load_restorer(resolve_checkpoint("pretrained"), "cpu")
    context = MethodContext(5.0, resolve_checkpoint("pretrained"), "cpu")
    window = _method_window(drive, "cam", 30, "img", rgb, plain, {}, context, get_method("drive"))
    whole = restore_residual(restorer, rgb, plain, 30)
    cy, cx = (h - CROP_SIDE) // 2, (w - CROP_SIDE) // 2
    crop = np.s_[cy:cy + CROP_SIDE, cx:cx + CROP_SIDE]
    # the whole-image pass blends two of its 512 px tiles in this crop, each with less context than the
    # window: measured correlation 0.99997, largest difference 1.6 % of the largest value
    assert np.corrcoef(window[crop].ravel(), whole[crop].ravel())[0, 1] > 0.999
    assert np.abs(window[crop] - whole[crop]).max() < 0.05 * np.abs(whole[crop]).max()
    rows, cols = np.nonzero(window)
    assert rows.min() % 16 == 0 and cols.min() % 16 == 0 and rows.min() > 0 and cols.max() < w - 1
    assert _method_window(drive, "cam", 30, "img", rgb, plain, {}, None, get_method("drive")) is None  # no context


def test_importing_figures_does_not_import_matplotlib_or_torch():
    code = "import sys, spnrestore.figures, spnrestore.stages.plots; print(any(m.startswith(('matplotlib', 'torch')) for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
