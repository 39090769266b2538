"""The develop stage of one batch: JPEGs, residual of the original, table; bad originals skipped or fatal."""

from __future__ import annotations

import pandas as pd
import pytest

from spnrestore.paths import DrivePaths
from spnrestore.stages.develop import develop_batch, read_develop_table
from spnrestore.config import default_config
from spnrestore.demo import make_demo_drive
from spnrestore.demo.developed_drive import make_developed_drive
from spnrestore.errors import BadImageError


def paths(root):
    """A drive whose JPEGs go to root/C, residuals to root/S and results to root/R."""
    return DrivePaths(root, root / "O", root / "C", root / "S", root / "R")


@pytest.fixture()
def batch(tmp_path, project_root):
    drive = make_demo_drive(tmp_path / "d", cameras=2, images_per_camera=2, height=128, width=192)
    camera = sorted((drive / "Images" / "Original").iterdir())[0]
    (camera / "broken.DNG").write_bytes(b"")
    images = [{"camera": camera.name, "image": p.stem, "path": str(p), "format": "dng", "batch": "b0000",
               "role": "test"} for p in sorted(camera.iterdir())]
    settings = default_config()
    kwargs = dict(images=images, drive=paths(tmp_path), qualities=[90, 30], develop_settings=settings["develop"],
                  subsampling="420", sigma=5.0, table=tmp_path / "t.csv")
    return camera, kwargs


def test_skip_lists_the_bad_original_and_finishes_the_rest(batch, tmp_path):
    camera, kwargs = batch
    develop_batch(on_bad_image="skip", **kwargs)
    table = read_develop_table(tmp_path / "t.csv").set_index("image")
    assert table.loc["broken", "status"] == "skipped" and "empty" in table.loc["broken", "reason"]
    good = table[table["status"] == "ok"]
    assert len(good) == 2 and (good["width"] == 192).all()
    for image in good.index:
        for q in (90, 30):
            assert (tmp_path / "C" / camera.name / str(q) / f"{image}.jpg").is_file()
        assert (tmp_path / "S" / camera.name / "original" / f"{image}.npy").is_file()


def test_the_developments_are_scored_in_memory_and_not_stored(batch, tmp_path, project_root):
    """With the cameras' fingerprints: every scored original's residual against every fingerprint, as the
    score rule always scored it (the term with the development's gray rounded to 8 bits), and nothing of it
    stored unless asked (keep_original)."""
    import numpy as np

    from spnrestore.originals import load_original
    from spnrestore.residual_files import save_residual
    from spnrestore.spn import extract_residual, score_residual
    from spnrestore.stages.develop import gray_uint8

    camera, kwargs = batch
    rng = np.random.default_rng(2)
    drive = kwargs["drive"]
    prints = {name: rng.normal(0, 0.01, (128, 192)).astype(np.float32) for name in (camera.name, "other")}
    for name, k in prints.items():
        save_residual(drive.fingerprint(name), k)
    kwargs["images"] = [{**item, "role": role} for item, role in zip(kwargs["images"], ("test", "fingerprint", "val"))]
    develop_batch(on_bad_image="skip", cameras=sorted(prints), scores_table=tmp_path / "s.csv", keep_original=False,
                  **kwargs)
    scores = pd.read_csv(tmp_path / "s.csv", dtype={"quality": str})
    scored = [i for i in kwargs["images"] if i["role"] != "fingerprint" and not i["path"].endswith("broken.DNG")]
    assert len(scored) == 1 and len(scores) == 2 and (scores["quality"] == "original").all()
    settings = default_config()["develop"]
    rgb = load_original(scored[0]["path"], "dng", settings).rgb
    expected = score_residual(extract_residual(rgb, sigma=5.0), gray_uint8(rgb), prints)
    assert scores["pce"].tolist() == pytest.approx([e["pce"] for e in expected], rel=1e-12)
    assert scores["match"].tolist() == [e["fingerprint"] == camera.name for e in expected]
    assert not (tmp_path / "S" / camera.name / "original").exists()


def test_images_that_are_not_scored_get_their_jpegs_but_no_residual(batch, tmp_path):
    """Fingerprint images (developed again by the fingerprint rule) and those of a camera without fingerprint
    are never scored: no residual of the original and no intensity are written for them; a bad one is still
    skipped with its reason, as a scored one would be."""
    camera, kwargs = batch
    kwargs["images"] = [{**item, "role": role} for item, role in zip(kwargs["images"], ("fingerprint", "no_fingerprint",
                                                                                        "fingerprint"))]
    develop_batch(on_bad_image="skip", **kwargs)
    table = read_develop_table(tmp_path / "t.csv").set_index("image")
    assert table.loc["broken", "status"] == "skipped" and "empty" in table.loc["broken", "reason"]
    good = table[table["status"] == "ok"]
    assert len(good) == 2
    for image in good.index:
        assert (tmp_path / "C" / camera.name / "30" / f"{image}.jpg").is_file()
    assert not (tmp_path / "S").exists() and not (tmp_path / "R" / "intensity").exists()


def test_fail_stops_at_the_bad_original_without_a_table(batch, tmp_path):
    _, kwargs = batch
    with pytest.raises(BadImageError, match="broken.DNG"):
        develop_batch(on_bad_image="fail", **kwargs)
    assert not (tmp_path / "t.csv").exists()


def test_developed_originals_are_loaded_not_developed(tmp_path, project_root):
    """Camera JPEG, PNG and 16-bit TIFF originals: copies at every quality, source quality of the JPEGs."""
    drive = make_developed_drive(tmp_path / "d", cameras=1, images_per_camera=10, height=128, width=192, flats=1)
    camera = next((drive / "Images" / "Original").iterdir())
    formats = {".JPG": "jpeg", ".png": "png", ".TIF": "tiff"}
    images = [{"camera": camera.name, "image": p.stem, "path": str(p), "format": formats[p.suffix], "batch": "b0000",
               "role": "test"} for p in sorted(camera.rglob("*.*"))]
    settings = default_config()
    table = develop_batch(images, paths(tmp_path), [90, 30], settings["develop"], "420", "fail", 5.0,
                          tmp_path / "t.csv")
    table = read_develop_table(tmp_path / "t.csv").set_index("image")
    assert len(table) == 11 and (table["status"] == "ok").all() and (table["raw_pattern"] == "").all()
    assert table.groupby("format")["source_quality"].apply(lambda q: q.dropna().unique().tolist()).to_dict() == {
        "jpeg": [95], "png": [], "tiff": []}
    assert (table.loc["IMG_0005", ["orientation", "width", "height"]] == [6, 192, 128]).all()  # tagged portrait
    assert (table.loc["IMG_0010", ["orientation", "width", "height"]] == [0, 128, 192]).all()  # turned, no tag
    for image in table.index:
        assert (tmp_path / "C" / camera.name / "30" / f"{image}.jpg").is_file()
