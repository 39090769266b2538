"""The synthetic demo drive: real DNG files, exact levels and values, sane colour, known PRNU."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rawpy

from spnrestore.demo import FORMAT_VERSION, MARKER, ensure_demo_drive, is_current, make_demo_drive
from spnrestore.demo.dng import dng_bytes
from spnrestore.demo.drive import demo_parameters, shoot
from spnrestore.demo.scenes import KIND_CYCLE
from spnrestore.demo.sensor import CFA_PATTERNS, expose, make_camera, make_fingerprint
from spnrestore.errors import ConfigError, SpnRestoreError
from spnrestore.log_setup import messages_to, stream_handler

SMALL = dict(cameras=5, images_per_camera=len(KIND_CYCLE), height=96, width=128, portrait_every=3, seed=7)
DEVELOP = dict(use_camera_wb=True, no_auto_bright=True, user_flip=0, demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD,
               output_bps=8, output_color=rawpy.ColorSpace.sRGB)


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> Path:
    return make_demo_drive(tmp_path_factory.mktemp("demo") / "drive", **SMALL)


def _cameras(root: Path) -> list[dict]:
    names = json.loads((root / MARKER).read_text())["cameras"]
    return [json.loads((root / "truth" / name / "camera.json").read_text()) for name in names]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _develop(path) -> np.ndarray:
    with rawpy.imread(str(path)) as raw:
        return raw.postprocess(**DEVELOP)


def test_layout_marker_and_truth(drive):
    marker = json.loads((drive / MARKER).read_text())
    assert marker["version"] == FORMAT_VERSION
    assert marker["parameters"] == demo_parameters(**SMALL)
    cameras = sorted(p.name for p in (drive / "Images" / "Original").iterdir())
    assert cameras == sorted(marker["cameras"]) and len(set(cameras)) == 5
    assert all(name.isascii() and " " not in name for name in cameras)
    suffixes = set()
    for camera in _cameras(drive):
        files = sorted(p.name for p in (drive / "Images" / "Original" / camera["name"]).iterdir())
        assert files == sorted(image["file"] for image in camera["images"]) and len(files) == len(KIND_CYCLE)
        suffixes |= {Path(f).suffix for f in files}
        assert [image["kind"] for image in camera["images"]] == list(KIND_CYCLE)
    assert suffixes == {".DNG", ".dng"}
    assert {c["cfa"] for c in _cameras(drive)} == set(CFA_PATTERNS)
    assert not list((drive / "Images").rglob("*.npy")) and not list((drive / "Images").rglob("*.json"))
    assert not [p for p in drive.parent.iterdir() if p.name.startswith(".")]  # no build folder left


def test_every_file_reads_back_exactly(drive):
    seed = SMALL["seed"]
    for index, truth in enumerate(_cameras(drive)):
        camera = make_camera(index, seed)
        assert camera.name == truth["name"]
        k = np.load(drive / "truth" / camera.name / "K.npy")
        for i, image in enumerate(truth["images"]):
            with rawpy.imread(str(drive / "Images" / "Original" / camera.name / image["file"])) as raw:
                colours = np.frombuffer(raw.color_desc, "S1").astype(str)
                assert "".join(colours[raw.raw_pattern].ravel()) == camera.cfa
                black = np.asarray(raw.black_level_per_channel)[raw.raw_colors[:2, :2]]
                assert black.tolist() == truth["black_level"]
                assert raw.white_level == truth["white_level"] == camera.white
                balance = np.asarray(raw.camera_whitebalance[:3])
                np.testing.assert_allclose(balance / balance[1], 1 / np.asarray(truth["as_shot_neutral"]), rtol=1e-3)
                np.testing.assert_array_equal(raw.raw_image, shoot(camera, k, i, seed)[0])
                assert raw.sizes.flip == (6 if (i + 1) % SMALL["portrait_every"] == 0 else 0)
                assert raw.raw_image.shape == (SMALL["height"], SMALL["width"])
    assert {c["bits_per_sample"] for c in _cameras(drive)} == {12, 16}
    assert any(len(set(np.ravel(c["black_level"]))) > 1 for c in _cameras(drive))


def test_developed_images_are_neither_black_green_nor_clipped(drive):
    for camera in _cameras(drive):
        means = []
        for image in camera["images"]:
            rgb = _develop(drive / "Images" / "Original" / camera["name"] / image["file"])
            mean = rgb.reshape(-1, 3).mean(axis=0)
            if image["kind"] == "dark":
                assert 2 < mean.mean() < 50, (camera["name"], image, mean)
                continue
            assert (30 < mean).all() and (mean < 200).all(), (camera["name"], image, mean)
            assert mean[1] < 1.3 * (mean[0] + mean[2]) / 2, (camera["name"], image, mean)
            assert (rgb == 255).all(axis=2).mean() < 0.05
            means.append(mean)
        average = np.mean(means, axis=0)
        assert average.max() / average.min() < 1.6, (camera["name"], average)


def test_grey_card_develops_grey():
    """The colour matrix and AsShotNeutral of every camera cancel its colour response."""
    for index in range(5):
        camera = make_camera(index, seed=3)
        k = np.zeros((64, 96), np.float32)
        raw = expose(camera, np.full((64, 96, 3), 0.18, np.float32), k, 100, np.random.default_rng(0))
        with rawpy.imread(io.BytesIO(dng_bytes(raw, camera, 1, "2024:01:01 00:00:00"))) as dng:
            rgb = dng.postprocess(**DEVELOP)[8:-8, 8:-8].reshape(-1, 3).mean(axis=0)
        assert 90 < rgb.mean() < 150 and rgb.max() / rgb.min() < 1.05, (camera.name, rgb)


def test_same_seed_same_bytes_other_seed_other_bytes(drive, tmp_path):
    again = _files(make_demo_drive(tmp_path / "again", **SMALL))
    assert again == _files(drive)
    other = _files(make_demo_drive(tmp_path / "other", **{**SMALL, "seed": 8}))
    dngs = [name for name in again if name.lower().endswith(".dng")]
    assert dngs and all(other[name] != again[name] for name in dngs)
    assert all(other[name] != again[name] for name in again if name.endswith("K.npy"))


def test_fingerprints_have_the_configured_statistics(drive):
    ks = [np.load(drive / "truth" / c["name"] / "K.npy") for c in _cameras(drive)]
    for k in ks:
        assert k.dtype == np.float32 and k.shape == (SMALL["height"], SMALL["width"])
        assert abs(float(k.mean())) < 1e-6 and float(k.std()) == pytest.approx(0.01, rel=1e-4)
    correlations = np.corrcoef([k.ravel() for k in ks])[np.triu_indices(len(ks), 1)]
    assert np.abs(correlations).max() < 0.05
    assert make_fingerprint(make_camera(1, 0), 32, 48, 0.02, 0).std() == pytest.approx(0.02, rel=1e-4)


def test_flat_fields_reveal_k():
    camera = make_camera(1, seed=0)  # a low-passed K, 16-bit, BGGR
    k = make_fingerprint(camera, 128, 192, 0.01, seed=0)
    flat = np.full((128, 192, 3), 0.5, np.float32)
    black = np.tile(np.reshape(camera.black, (2, 2)), (64, 96))
    residuals = []
    for shot in range(2):
        signal = expose(camera, flat, k, 100, np.random.default_rng(shot)) - black
        means = signal.reshape(64, 2, 96, 2).mean(axis=(0, 2))  # per CFA position
        residuals.append(signal / np.tile(means, (64, 96)) - 1)
    assert np.corrcoef(np.mean(residuals, axis=0).ravel(), k.ravel())[0, 1] > 0.3


def test_current_drive_is_kept_partial_or_changed_is_rebuilt(tmp_path):
    params = dict(cameras=2, images_per_camera=2, height=32, width=48)
    root = make_demo_drive(tmp_path / "d", **params)
    image = next((root / "Images").rglob("*.*"))
    inode = image.stat().st_ino
    assert make_demo_drive(root, **params) == root and image.stat().st_ino == inode
    (root / MARKER).unlink()  # a drive without marker is partial
    assert not is_current(root, demo_parameters(**params))
    make_demo_drive(root, **params)
    assert is_current(root, demo_parameters(**params)) and image.stat().st_ino != inode
    make_demo_drive(root, **{**params, "images_per_camera": 3})
    assert len(list((root / "Images").rglob("*.*"))) == 6
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_foreign_folder_is_never_replaced(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "mine.jpg").write_bytes(b"x")
    with pytest.raises(SpnRestoreError, match="mine.jpg"):
        make_demo_drive(tmp_path / "photos", cameras=1, images_per_camera=1, height=32, width=32)
    assert (tmp_path / "photos" / "mine.jpg").read_bytes() == b"x"


@pytest.mark.parametrize("key, value", [("width", 97), ("height", 16), ("cameras", 0), ("images_per_camera", 0),
                                        ("prnu_strength", 0.0), ("seed", -1), ("portrait_every", 1.5)])
def test_bad_parameters_name_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        make_demo_drive(tmp_path / "d", **{**SMALL, key: value})
    assert not os.listdir(tmp_path)


def test_config_section_builds_the_drive(tmp_path):
    settings = {"cameras": 2, "images_per_camera": 1, "height": 32, "width": 32, "seed": 1}
    root = ensure_demo_drive(tmp_path / "d", settings)
    assert is_current(root, demo_parameters(**settings))
    with pytest.raises(ConfigError, match="demo.colour"):
        ensure_demo_drive(tmp_path / "e", {**settings, "colour": 1})


def test_camera_names_stay_unique_past_the_alphabet():
    names = [make_camera(i, 0).name for i in range(64)]
    assert len(set(names)) == 64 and names[26] == "Synth_Alpha_A27"


def test_progress_goes_only_to_the_log(tmp_path, capsys, caplog):
    make_demo_drive(tmp_path / "quiet", cameras=1, images_per_camera=1, height=32, width=32)
    caplog.set_level(logging.INFO, logger="spnrestore")
    make_demo_drive(tmp_path / "loud", cameras=2, images_per_camera=1, height=32, width=32)
    lines = list(caplog.messages)
    caplog.clear()
    stream = io.StringIO()
    with messages_to(stream_handler(stream)):
        make_demo_drive(tmp_path / "stream", cameras=1, images_per_camera=1, height=32, width=32)
    assert capsys.readouterr() == ("", "")
    assert any("Synth_Bravo_B2" in line for line in lines) and "done" in stream.getvalue()
    assert stream.getvalue().splitlines() == caplog.messages  # one line per message, as worded


def test_import_does_not_load_torch():
    code = "import sys, spnrestore.demo; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
