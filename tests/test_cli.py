"""The ``spnrestore`` command line on synthetic cameras with a known multiplicative PRNU."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from spnrestore.cli import main
from spnrestore.jpeg import estimate_jpeg_quality, ijg_table, luminance_table
from spnrestore.jpeg import encode_jpeg, write_jpeg, write_png

SIZE = (256, 256)
CAMERAS = ("cam_a", "cam_b", "cam_c")


def scene(rng: np.random.Generator) -> np.ndarray:
    """A textured RGB scene, float32 H x W x 3 on 0..255: smooth colour fields at two scales plus fine texture."""
    h, w = SIZE
    coarse = cv2.resize(rng.uniform(50, 200, (6, 6, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    medium = cv2.resize(rng.normal(0, 15, (32, 32, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return coarse + medium + rng.normal(0, 2, (h, w, 1)).astype(np.float32)


def shoot(rng: np.random.Generator, k: np.ndarray) -> np.ndarray:
    """uint8 RGB photo of a new scene through a sensor with PRNU ``k`` (I * (1 + K) + read noise)."""
    return np.clip(scene(rng) * (1 + k[..., None]) + rng.normal(0, 1, (*SIZE, 3)), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    """3 cameras (K std 0.02) x 6 images: 4 PNGs per camera in ``<camera>/`` for the fingerprint, 2 tested JPEGs
    per camera in ``questioned/`` (quality 90 and 60)."""
    root = tmp_path_factory.mktemp("case")
    rng = np.random.default_rng(7)
    for camera in CAMERAS:
        k = rng.normal(0, 0.02, SIZE).astype(np.float32)
        for i in range(4):
            write_png(root / camera / f"flat_{i}.png", shoot(rng, k))
        for quality in (90, 60):
            write_jpeg(root / "questioned" / f"{camera}_q{quality}.jpg", shoot(rng, k), quality)
    return root


@pytest.fixture(scope="module")
def fingerprints(case) -> Path:
    folder = case / "fingerprints"
    for camera in CAMERAS:
        # calibrated among the methods that need no model (fast); with 4 images: too few, plain
        assert main(["fingerprint", "--camera", camera, str(case / camera), "-o", str(folder / f"{camera}.npy"),
                     "--methods", "plain,li2010,phase"]) == 0
    return folder


@pytest.fixture(scope="module")
def checkpoint(case) -> Path:
    """A tiny untrained generator (the identity map) saved with the model package's own checkpoint API."""
    import torch

    from spnrestore.model.checkpoint import model_payload, save_checkpoint
    from spnrestore.model.networks import Generator, GeneratorConfig

    torch.manual_seed(0)
    model = Generator(GeneratorConfig.tiny())
    model.residual_scale.fill_(2.0)
    model.target_scale.fill_(2.0)
    path = case / "tiny.pt"
    save_checkpoint(path, model_payload(model))
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("spnrestore: ") and "\n" not in err and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------------- JPEG quality
@pytest.mark.parametrize("quality", [30, 60, 90])
@pytest.mark.parametrize("subsampling", ["420", "444"])
def test_quality_of_opencv_jpegs_is_exact(tmp_path, quality, subsampling):
    rgb = np.random.default_rng(quality).integers(0, 256, (64, 80, 3), np.uint8)
    path = tmp_path / "x.jpg"
    path.write_bytes(encode_jpeg(rgb, quality, subsampling))
    found = estimate_jpeg_quality(path)
    assert (found.quality, found.exact, found.error) == (quality, True, 0.0)


def test_quality_of_foreign_tables_is_the_nearest(tmp_path):
    data = bytearray(encode_jpeg(np.full((32, 32, 3), 128, np.uint8), 90))
    table = luminance_table(bytes(data))
    assert np.array_equal(table, ijg_table(90))
    at = data.index(b"\xff\xdb") + 5  # first entry (DC) of the first table, after marker, length and Pq/Tq
    data[at] += 1
    path = tmp_path / "camera.jpg"
    path.write_bytes(bytes(data))
    found = estimate_jpeg_quality(path)
    assert found.quality == 90 and not found.exact and found.error == pytest.approx(1 / 64)


def test_quality_of_non_jpeg_is_none(case):
    assert estimate_jpeg_quality(case / "cam_a" / "flat_0.png") is None


# ------------------------------------------------------------------------------------------- fingerprint
def test_fingerprint_writes_k_and_preview(fingerprints, capsys):
    k = np.load(fingerprints / "cam_a.npy")
    assert k.dtype == np.float32 and k.shape == SIZE and k.std() > 0
    assert cv2.imread(str(fingerprints / "cam_a.png"), cv2.IMREAD_GRAYSCALE).shape == SIZE


def test_fingerprint_summary(case, tmp_path, capsys):
    assert main(["fingerprint", "--camera", "cam_b", str(case / "cam_b"), "-o", str(tmp_path / "K.npy")]) == 0
    out = capsys.readouterr().out
    assert "fingerprint of camera 'cam_b': 4 images of 256x256 px" in out
    assert "will be called 'K'" in out and (tmp_path / "K.npy").is_file()


def test_fingerprint_refuses_images_of_another_size(case, tmp_path, capsys):
    cropped = tmp_path / "cropped.png"
    write_png(cropped, np.ascontiguousarray(cv2.imread(str(case / "cam_a" / "flat_0.png"))[:200]))
    args = ["fingerprint", "--camera", "cam_a", str(case / "cam_a"), str(cropped), "-o", str(tmp_path / "K.npy")]
    assert main(args) == 2
    err = one_error_line(capsys)
    assert "cropped.png: is 200x256x3 but the fingerprint's first image" in err and "crop or rotate" in err
    assert not (tmp_path / "K.npy").exists()


# ------------------------------------------------------------------------------------------- identify
def test_identify_names_the_right_camera(case, fingerprints, tmp_path, capsys):
    csv = tmp_path / "ident.csv"
    assert main(["identify", str(case / "questioned"), "--fingerprints", str(fingerprints), "--checkpoint", "none",
                 "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["image", "method", "Q", "fingerprint", "PCE", "NCC", "decision"]
    table = pd.read_csv(csv)
    # plain, and calibrated (the fingerprints have a calibration): with too few known images it chose plain
    assert len(table) == 2 * 6 * 3 and set(table["method"]) == {"plain", "calibrated"}
    assert np.array_equal(table.loc[table["method"] == "plain", "pce"], table.loc[table["method"] == "calibrated", "pce"])
    assert sorted(set(table["quality"])) == [60, 90] and set(table["quality_from"]) == {"estimated"}
    truth = table["image"].map(lambda p: Path(p).name[:5])
    assert (table["decision"] == truth).all()
    match = table["fingerprint"] == truth
    assert table.loc[match, "pce"].min() > 60 and table.loc[~match, "pce"].max() < 60


def test_identify_reads_the_drive_layout_and_threshold_gives_unknown(case, fingerprints, tmp_path, capsys):
    spn = tmp_path / "SPN"
    for camera in CAMERAS:
        (spn / camera).mkdir(parents=True)
        shutil.copy(fingerprints / f"{camera}.npy", spn / camera / "fingerprint.npy")
    image = case / "questioned" / "cam_c_q60.jpg"
    csv = tmp_path / "t.csv"
    assert main(["identify", str(image), "--fingerprints", str(spn), "--threshold", "1e9", "--checkpoint", "none",
                 "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert set(table["fingerprint"]) == set(CAMERAS) and set(table["decision"]) == {"unknown"}


def test_identify_with_checkpoint_scores_restored_residuals(case, fingerprints, checkpoint, tmp_path):
    csv = tmp_path / "r.csv"
    images = [str(case / "questioned" / "cam_a_q60.jpg"), str(case / "questioned" / "cam_b_q90.jpg")]
    assert main(["identify", *images, "--fingerprints", str(fingerprints), "--checkpoint", str(checkpoint),
                 "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    plain, restored = (table[table["method"] == m].set_index(["image", "fingerprint"])
                       for m in ("plain", Path(checkpoint).stem))
    assert len(plain) == len(restored) == 6
    # the untrained generator is the identity map: the restored residual scores like the plain one
    assert np.allclose(restored.loc[plain.index, "pce"], plain["pce"], rtol=1e-3, atol=1e-2)
    assert (restored["decision"] == [Path(i).name[:5] for i, _ in restored.index]).all()


def test_identify_says_which_method_it_computes_on_a_large_image(case, fingerprints, checkpoint, monkeypatch,
                                                                  capsys):
    from spnrestore import cli

    monkeypatch.setattr(cli, "PROGRESS_PIXELS", 0)  # the case's images count as large
    image = case / "questioned" / "cam_a_q60.jpg"
    assert main(["identify", str(image), "--fingerprints", str(fingerprints), "--methods", f"plain,li2010,{checkpoint}"]) == 0
    err = capsys.readouterr().err
    assert f"spnrestore: {image.name}: computing li2010 (" in err
    assert f"spnrestore: {image.name}: computing {Path(checkpoint).stem} (" in err
    assert "computing plain" not in err


def test_identify_reads_the_calibrations_and_never_names_an_unusable_fingerprint(case, fingerprints, tmp_path,
                                                                                 capsys):
    """``calibrated``: against each fingerprint, the method its K.calibration.json chose at the nearest quality;
    a fingerprint that calibration found unusable is scored but no decision names it."""
    import json

    folder = tmp_path / "fp"
    shutil.copytree(fingerprints, folder)
    cal = json.loads((folder / "cam_a.calibration.json").read_text())
    cal["qualities"] = {"90": {"chosen": "plain"}, "50": {"chosen": "li2010"}}
    (folder / "cam_a.calibration.json").write_text(json.dumps(cal))
    cal_b = json.loads((folder / "cam_b.calibration.json").read_text())
    (folder / "cam_b.calibration.json").write_text(json.dumps({**cal_b, "usable": False, "original_median_pce": 0.3}))
    csv = tmp_path / "c.csv"
    images = [str(case / "questioned" / "cam_a_q60.jpg"), str(case / "questioned" / "cam_b_q60.jpg")]
    assert main(["identify", *images, "--fingerprints", str(folder), "--methods", "plain,li2010,calibrated",
                 "--csv", str(csv)]) == 0
    assert "fingerprint 'cam_b' is unusable" in capsys.readouterr().err
    table = pd.read_csv(csv).set_index(["image", "method", "fingerprint"])
    for image in images:  # Q60: nearest to 50 -> li2010 against cam_a; plain against cam_c (no choice of its own)
        assert table.loc[(image, "calibrated", "cam_a"), "pce"] == table.loc[(image, "li2010", "cam_a"), "pce"]
        assert table.loc[(image, "calibrated", "cam_c"), "pce"] == table.loc[(image, "plain", "cam_c"), "pce"]
    decisions = pd.read_csv(csv).groupby(["image", "method"])["decision"].first()
    assert "cam_b" not in set(decisions) and set(decisions[images[1]]) == {"unknown"}
    assert set(decisions[images[0]]) == {"cam_a"}


def test_identify_errors(case, fingerprints, tmp_path, capsys):
    other = tmp_path / "wide.jpg"
    write_jpeg(other, np.full((256, 320, 3), 100, np.uint8), 90)
    assert main(["identify", str(other), "--fingerprints", str(fingerprints)]) == 2
    assert "image is 256x320 px but cam_a fingerprint is 256x256 px: crop the image" in one_error_line(capsys)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    assert main(["identify", str(broken), "--fingerprints", str(fingerprints)]) == 2
    assert "broken.jpg: cannot be read as a JPEG, TIFF or PNG" in one_error_line(capsys)
    assert main(["identify", str(tmp_path / "absent.jpg"), "--fingerprints", str(fingerprints)]) == 2
    assert "absent.jpg: no such file or folder" in one_error_line(capsys)
    assert main(["identify", str(other), "--fingerprints", str(tmp_path / "none")]) == 2
    assert "fingerprint folder does not exist" in one_error_line(capsys)
    jpeg, png = str(case / "questioned" / "cam_a_q90.jpg"), str(case / "cam_a" / "flat_0.png")
    assert main(["identify", jpeg, "--fingerprints", str(fingerprints), "--checkpoint", str(tmp_path / "x.pt")]) == 2
    assert "x.pt: checkpoint does not exist" in one_error_line(capsys)


def test_identify_restores_with_the_shipped_model_by_default(case, fingerprints, tmp_path, capsys):
    """Without --checkpoint the shipped (pretrained) model restores every JPEG; a PNG, whose JPEG quality is
    unknown, is scored plain only, with a warning naming it."""
    csv = tmp_path / "d.csv"
    jpegs = [str(case / "questioned" / f"{c}_q60.jpg") for c in ("cam_a", "cam_b")]
    png = str(case / "cam_a" / "flat_0.png")
    assert main(["identify", *jpegs, png, "--fingerprints", str(fingerprints), "--csv", str(csv)]) == 0
    assert "flat_0.png: not a JPEG, so method shipped is not computed" in capsys.readouterr().err
    table = pd.read_csv(csv)
    restored = table[table["method"] == "shipped"]
    assert set(restored["image"]) == set(jpegs) and len(restored) == 2 * len(CAMERAS)
    assert set(table.loc[table["image"] == png, "method"]) == {"plain", "calibrated"}
    assert (restored["decision"] == restored["image"].map(lambda p: Path(p).name[:5])).all()
    match = restored["fingerprint"] == restored["image"].map(lambda p: Path(p).name[:5])
    assert restored.loc[match, "pce"].min() > 60 and restored.loc[~match, "pce"].max() < 60


# ------------------------------------------------------------------------------------------- restore
def test_restore_writes_residuals(case, checkpoint, tmp_path, capsys):
    out = tmp_path / "restored"
    image = case / "questioned" / "cam_a_q60.jpg"
    assert main(["restore", str(image), "--checkpoint", str(checkpoint), "-o", str(out)]) == 0
    assert "quality 60 (estimated)" in capsys.readouterr().out
    restored = np.load(out / "cam_a_q60.npy")
    assert restored.dtype == np.float32 and restored.shape == SIZE and restored.std() > 0
    assert (out / "cam_a_q60.png").is_file()


def test_restore_errors(case, checkpoint, tmp_path, capsys):
    png = str(case / "cam_a" / "flat_0.png")
    assert main(["restore", png, "--checkpoint", str(checkpoint), "-o", str(tmp_path / "o")]) == 2
    assert "flat_0.png: not a JPEG" in one_error_line(capsys) and not (tmp_path / "o").exists()
    assert main(["restore", png, "--checkpoint", str(checkpoint), "-o", str(tmp_path / "o"), "--quality", "30"]) == 0
    assert (tmp_path / "o" / "flat_0.npy").is_file()
    capsys.readouterr()
    assert main(["restore", png, "--checkpoint", "none", "--quality", "30", "-o", str(tmp_path / "o")]) == 2
    assert "restore needs a model" in one_error_line(capsys)

    import torch

    from spnrestore.model.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(checkpoint)
    save_checkpoint(tmp_path / "newer.pt", {**payload, "format_version": 99})
    save_checkpoint(tmp_path / "other.pt", {**payload, "model_config": {**payload["model_config"], "width": 16}})
    torch.save({"some": "thing"}, tmp_path / "foreign.pt")
    for name, message in (("newer.pt", "newer than this spnrestore understands"),
                          ("other.pt", "weights do not fit the model configuration"),
                          ("foreign.pt", "not an spnrestore checkpoint")):
        assert main(["restore", png, "--quality", "30", "--checkpoint", str(tmp_path / name), "-o", str(tmp_path)]) == 2
        assert message in one_error_line(capsys)


def test_help_and_usage_errors(capsys):
    for command in ("fingerprint", "identify", "restore", "layout"):
        assert main([command, "--help"]) == 0
        assert f"usage: spnrestore {command}" in capsys.readouterr().out
    assert main(["identify", "x.jpg"]) == 2  # --fingerprints missing
    assert "the following arguments are required: --fingerprints" in capsys.readouterr().err
    assert main(["restore", "x.jpg", "--checkpoint", "c.pt", "-o", "d", "--quality", "101"]) == 2
    assert "outside 1..100" in capsys.readouterr().err
    assert main([]) == 2


# ------------------------------------------------------------------------------------------- installed script
def test_console_script_and_no_torch_without_checkpoint(case, fingerprints, tmp_path):
    script = shutil.which("spnrestore") or str(Path(sys.executable).parent / "spnrestore")
    if not Path(script).is_file():
        pytest.skip("the spnrestore console script is not installed (pip install -e .)")
    image = str(case / "questioned" / "cam_b_q90.jpg")
    done = subprocess.run([script, "identify", image, "--fingerprints", str(fingerprints)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [line.split()[-1] for line in done.stdout.splitlines()[1:]] == ["cam_b"] * 9  # plain, shipped, calibrated
    done = subprocess.run([script, "identify", str(tmp_path / "absent.jpg"), "--fingerprints", str(fingerprints)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("spnrestore: ") and done.stderr.count("\n") == 1
    code = ("import sys; from spnrestore.cli import main; "
            f"rc = main(['identify', {image!r}, '--fingerprints', {str(fingerprints)!r}, '--checkpoint', 'none']); "
            "print(rc, 'torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "0 False"


def test_identify_one_cameras_drive_folder_and_a_turned_image(case, fingerprints, tmp_path):
    """--fingerprints at one camera's SPN/<camera>/ folder names the camera after the folder (not 'fingerprint');
    an image turned by the camera without a tag is matched against the quarter turns of the fingerprint."""
    folder = tmp_path / "SPN" / "cam_b"
    folder.mkdir(parents=True)
    shutil.copy(fingerprints / "cam_b.npy", folder / "fingerprint.npy")
    rgb = cv2.imread(str(case / "questioned" / "cam_b_q90.jpg"))[..., ::-1]
    turned = tmp_path / "turned.png"
    write_png(turned, np.ascontiguousarray(np.rot90(rgb[:, :200], 1)))  # 200 x 256: the transposed size of a crop
    cropped = np.load(fingerprints / "cam_b.npy")[:, :200]
    np.save(folder / "fingerprint.npy", cropped)
    csv = tmp_path / "t.csv"
    assert main(["identify", str(turned), "--fingerprints", str(folder), "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    assert table["fingerprint"].tolist() == ["cam_b"] and table["decision"].tolist() == ["cam_b"]
    assert table["pce"].iloc[0] > 60


def test_identify_develops_a_raw_file_with_the_workflows_settings(tmp_path, project_root, capsys, monkeypatch):
    """A DNG is developed as the workflow does (the 'develop' settings of config/config.yaml over the schema's
    defaults), never refused as an unreadable JPEG; without a configuration file the schema's defaults are the
    workflow's settings; a --config that does not exist is named."""
    from spnrestore.demo import make_demo_drive

    drive = make_demo_drive(tmp_path / "d", cameras=2, images_per_camera=3, height=128, width=192)
    camera = sorted((drive / "Images" / "Original").iterdir())[0]
    shots = sorted(p for p in camera.iterdir() if p.suffix.lower() == ".dng")
    config = project_root / "config" / "config.yaml"
    k = tmp_path / "fp" / f"{camera.name}.npy"
    assert main(["fingerprint", "--camera", camera.name, *map(str, shots[:2]), "-o", str(k), "--config", str(config)]) == 0
    csv = tmp_path / "t.csv"
    assert main(["identify", str(shots[2]), "--fingerprints", str(k.parent), "--config", str(config),
                 "--csv", str(csv)]) == 0
    assert pd.read_csv(csv).query("method == 'plain'")["fingerprint"].tolist() == [camera.name]
    monkeypatch.chdir(tmp_path)  # no config/config.yaml here: the defaults, the same development
    again = tmp_path / "again.csv"
    assert main(["identify", str(shots[2]), "--fingerprints", str(k.parent), "--csv", str(again)]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(again), pd.read_csv(csv))
    capsys.readouterr()
    assert main(["identify", str(shots[2]), "--fingerprints", str(k.parent), "--config", "missing.yaml"]) == 2
    error = capsys.readouterr().err
    assert "missing.yaml: no such configuration file" in error and "--config" in error
