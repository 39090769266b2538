"""Discovery of developed originals and flat-field images; their roles; cameras too small for a fingerprint."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from spnrestore.discovery import discover, images_table
from spnrestore.errors import ConfigError
from spnrestore.stages.roles import NO_FINGERPRINT, assign_roles, cameras_without_fingerprint

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}


def make_files(root, paths):
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"placeholder")
    return root


def test_developed_formats_beside_raw_files(tmp_path):
    make_files(tmp_path, ["Cam/a.JPG", "Cam/b.jpeg", "Cam/c.Tif", "Cam/d.TIFF", "Cam/e.png", "Cam/f.DNG",
                          "Phone/IMG_1.HEIC", "Phone/IMG_2.jpg"])
    images, skipped = discover(tmp_path, batches=4)
    assert {i.image: i.format for i in images} == {"a": "jpeg", "b": "jpeg", "c": "tiff", "d": "tiff", "e": "png",
                                                   "f": "dng", "IMG_2": "jpeg"}
    assert [os.path.basename(s.path) for s in skipped] == ["IMG_1.HEIC"]
    assert not any(i.flat for i in images)


def test_flat_folder_and_pattern_mark_flat_fields(tmp_path):
    make_files(tmp_path, ["Cam/IMG_1.jpg", "Cam/FLAT_sky.jpg", "Cam/flat/wall_1.JPG", "Cam/flat/wall_2.tif",
                          "Cam/flat/old/wall_0.jpg", "Cam/flat/IMG_1.jpg", "Cam/darks/d1.jpg"])
    images, skipped = discover(tmp_path, batches=4, flat_folder="flat", flat_pattern="^FLAT_")
    table = images_table(images).set_index("image")
    assert table["flat"].to_dict() == {"FLAT_sky": True, "IMG_1": False, "wall_1": True, "wall_2": True}
    assert table.loc["IMG_1", "path"].endswith("Cam/IMG_1.jpg")  # the camera folder's own file wins
    reasons = {os.path.relpath(s.path, tmp_path): s.reason for s in skipped}
    assert "same name as IMG_1.jpg" in reasons["Cam/flat/IMG_1.jpg"]
    assert "flat-field folder" in reasons["Cam/flat/old"] and "sub-folder" in reasons["Cam/darks"]
    none, skipped = discover(tmp_path, batches=4, flat_folder="", flat_pattern="")
    assert not any(i.flat for i in none) and {i.image for i in none} == {"IMG_1", "FLAT_sky"}
    assert "sub-folder" in {os.path.relpath(s.path, tmp_path): s.reason for s in skipped}["Cam/flat"]


def test_bad_flat_pattern_names_the_key(tmp_path):
    make_files(tmp_path, ["Cam/a.jpg"])
    with pytest.raises(ConfigError, match="spn.flat_field_pattern"):
        discover(tmp_path, batches=4, flat_pattern="(unclosed")


def test_flat_fields_build_the_fingerprint_first_and_hash_fills_up():
    natural = [f"IMG_{i:03d}" for i in range(40)]
    images = pd.DataFrame({"camera": "C", "image": natural + ["F1", "F2", "F3"], "flat": [False] * 40 + [True] * 3})
    roles = assign_roles(images, 8, FRACTIONS)
    assert (roles[images["flat"]] == "fingerprint").all()
    assert (roles == "fingerprint").sum() == 8  # 3 flat fields + the 5 natural images of smallest hash
    plain = assign_roles(images.assign(flat=False).iloc[:40], 5, FRACTIONS)
    assert list(roles[:40][roles[:40] == "fingerprint"].index) == list(plain[plain == "fingerprint"].index)
    many = assign_roles(images, 2, FRACTIONS)  # more flat fields than fingerprint places: all of them, no other
    assert list(many[many == "fingerprint"].index) == [40, 41, 42]


def test_adding_a_flat_field_moves_at_most_one_other_image():
    images = pd.DataFrame({"camera": "C", "image": [f"IMG_{i:03d}" for i in range(40)], "flat": False})
    before = assign_roles(images, 6, FRACTIONS)
    more = pd.concat([images, pd.DataFrame({"camera": ["C"], "image": ["FLAT"], "flat": [True]})], ignore_index=True)
    after = assign_roles(more, 6, FRACTIONS)
    assert (after.iloc[:40] != before).sum() == 1 and after.iloc[40] == "fingerprint"


def test_camera_with_one_original_gets_no_fingerprint():
    images = pd.DataFrame({"camera": ["A"] * 5 + ["Lonely"], "image": list("abcde") + ["x"], "flat": False})
    assert cameras_without_fingerprint(images) == {"Lonely": 1}
    roles = assign_roles(images, 3, FRACTIONS, holdout=["Lonely"])
    assert roles.iloc[5] == NO_FINGERPRINT and (roles.iloc[:5] != NO_FINGERPRINT).all()
