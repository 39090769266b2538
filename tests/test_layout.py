"""``spnrestore layout``: camera folders of links built from a flat folder of images, sources left untouched."""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spnrestore.cli import main
from spnrestore.discovery import discover
from spnrestore.errors import SpnRestoreError
from spnrestore.exif import BODY_SERIAL_NUMBER, EXIF_IFD, MAKE, MODEL, ORIENTATION
from spnrestore.layout import (DRESDEN_PATTERN, Source, apply_layout, camera_of_tags, compile_pattern,
                               pattern_assigner, plan_layout, safe_name, scan_sources)

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw-samples" / "metadata-only"

#: Dresden-style names: (file name, EXIF make, model, serial, orientation); the third Ixus70 has no serial.
DRESDEN = [
    ("Canon_Ixus70_0_101.JPG", "Canon", "Canon DIGITAL IXUS 70", "0420100371", 1),
    ("Canon_Ixus70_0_102.JPG", "Canon", "Canon DIGITAL IXUS 70", "0420100371", 6),
    ("Canon_Ixus70_1_201.JPG", "Canon", "Canon DIGITAL IXUS 70", "0520109926", 1),
    ("Canon_Ixus70_2_301.JPG", "Canon", "Canon DIGITAL IXUS 70", None, 1),
    ("Olympus_mju_1050SW_0_401.JPG", "OLYMPUS IMAGING CORP.", "u1050SW,S1050SW", None, 8),
]


def write_jpeg(path: Path, seed: int, make=None, model=None, serial=None, orientation=None) -> None:
    """A small JPEG with the given EXIF Make, Model, BodySerialNumber and Orientation (Pillow writes the EXIF)."""
    exif = Image.Exif()
    for tag, value in ((MAKE, make), (MODEL, model), (ORIENTATION, orientation)):
        if value is not None:
            exif[tag] = value
    if serial is not None:
        exif.get_ifd(EXIF_IFD)[BODY_SERIAL_NUMBER] = serial
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), np.uint8)
    Image.fromarray(pixels).save(path, "JPEG", exif=exif, quality=90)


@pytest.fixture
def source(tmp_path) -> Path:
    """A flat, read-only data-set folder: five Dresden JPEGs with EXIF, one JPEG without EXIF and a non-matching
    name, a text file, a hidden file and a sub-folder."""
    folder = tmp_path / "dresden"
    folder.mkdir()
    for seed, (name, *tags) in enumerate(DRESDEN):
        write_jpeg(folder / name, seed, *tags)
    write_jpeg(folder / "holiday.jpg", 99)
    (folder / "readme.txt").write_text("camera list")
    (folder / ".DS_Store").write_bytes(b"\0")
    (folder / "extra").mkdir()
    write_jpeg(folder / "extra" / "Canon_Ixus70_0_103.JPG", 7)
    for path in folder.rglob("*.*"):
        path.chmod(0o444)  # data sets are best kept read-only; links to them still work
    return folder


def fingerprint_of(folder: Path) -> dict[str, tuple[str, int, int]]:
    """SHA-256, mtime (ns) and mode of every file under ``folder``."""
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns, p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_table(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def layout_tree(output: Path) -> dict[str, list[str]]:
    return {d.name: sorted(f.relative_to(d).as_posix() for f in d.rglob("*") if not f.is_dir())
            for d in sorted(output.iterdir())}


# ----------------------------------------------------------------------------- names
@pytest.mark.parametrize("text, name", [
    ("Canon_Ixus70_0", "Canon_Ixus70_0"),
    ("Nikon D7000", "Nikon D7000"),
    ("..hidden", "hidden"),
    ("a/b\\c:d*e?f\"g<h>i|j", "a_b_c_d_e_f_g_h_i_j"),
    ("tab\there\x00\x1f  end. ", "tab_here__ end"),
    ("Ca\u0301non \u00e9t\u00e9 \u76f8\u673a", "C\u00e1non \u00e9t\u00e9 \u76f8\u673a"),  # NFC, unicode kept
    ("CON", "CON_"),
    ("x" * 300, "x" * 100),
    (" ./ ", "_"),
    ("...", ""),
])
def test_safe_name(text, name):
    assert safe_name(text) == name


@pytest.mark.parametrize("make, model, serial, name", [
    ("Canon", "Canon EOS 6D", None, "Canon EOS 6D"),
    ("NIKON CORPORATION", "NIKON D200", "3001234", "NIKON D200_3001234"),
    ("Apple", "iPhone 12 Pro", None, "Apple iPhone 12 Pro"),
    ("FUJIFILM", "FinePix J50", "59/A1", "FUJIFILM FinePix J50_59_A1"),
    (None, "Blackmagic Pocket Cinema Camera 4K", None, "Blackmagic Pocket Cinema Camera 4K"),
    ("Sony", None, "1", "Sony_1"),
    (None, None, "123", ""),
])
def test_camera_of_tags(make, model, serial, name):
    assert camera_of_tags(make, model, serial) == name


def test_dresden_pattern_and_plan_are_pure_functions_of_names():
    names = ["Canon_Ixus70_0_1.JPG", "canon_Ixus70_0_2.jpg", "Olympus_mju_1050SW_3_9.JPG", "Agfa_DC-504_0_1.JPG",
             "sub/Agfa_DC-504_0_1.JPG", "Agfa_DC-504_0_1.dng", "odd.jpg"]
    sources = [Source(Path("/nowhere") / n, n) for n in names]
    plan = plan_layout(sources, pattern_assigner(compile_pattern(DRESDEN_PATTERN)), flat=re.compile("^sub/"))
    targets = [p.target for p in plan]
    assert targets[:3] == ["Canon_Ixus70_0/Canon_Ixus70_0_1.JPG", "Canon_Ixus70_0/canon_Ixus70_0_2.jpg",
                           "Olympus_mju_1050SW_3/Olympus_mju_1050SW_3_9.JPG"]  # case variants merged
    # the same stem again in the camera from another folder (flat-field folder): the workflow would refuse it, so
    # it is renamed with a hash of its source path; in the same folder with another extension it is the same shot
    assert targets[3] == "Agfa_DC-504_0/Agfa_DC-504_0_1.JPG"
    assert re.fullmatch(r"Agfa_DC-504_0/flat/Agfa_DC-504_0_1_[0-9a-f]{8}\.JPG", targets[4])
    assert "renamed: the name Agfa_DC-504_0_1 is already taken in camera Agfa_DC-504_0" in plan[4].reason
    assert (plan[5].action, plan[5].target) == ("skip", "")
    assert plan[5].reason.startswith("same shot as Agfa_DC-504_0_1.JPG (same name, other format)")
    assert (plan[6].action, plan[6].target, plan[6].reason) == ("skip", "", "name does not match the pattern")


def test_compile_pattern_errors():
    with pytest.raises(SpnRestoreError, match=r"not a valid regular expression"):
        compile_pattern("(?P<camera>[a-z")
    with pytest.raises(SpnRestoreError, match=r"names no group 'camera' or 'model' \(named groups: make\)"):
        compile_pattern(r"(?P<make>\w+)_")


# ----------------------------------------------------------------------------- pattern layout
def test_pattern_layout_hard_links_and_table(source, tmp_path, capsys):
    before = fingerprint_of(source)
    output = tmp_path / "drive" / "Images" / "Original"
    assert main(["layout", str(source), "--by", "pattern", "-o", str(output)]) == 0
    assert layout_tree(output) == {
        "Canon_Ixus70_0": ["Canon_Ixus70_0_101.JPG", "Canon_Ixus70_0_102.JPG"],
        "Canon_Ixus70_1": ["Canon_Ixus70_1_201.JPG"],
        "Canon_Ixus70_2": ["Canon_Ixus70_2_301.JPG"],
        "Olympus_mju_1050SW_0": ["Olympus_mju_1050SW_0_401.JPG"],
    }
    linked = output / "Canon_Ixus70_1" / "Canon_Ixus70_1_201.JPG"
    assert linked.stat().st_ino == (source / linked.name).stat().st_ino and not linked.is_symlink()
    assert fingerprint_of(source) == before  # nothing moved, renamed or rewritten
    table = read_table(tmp_path / "drive" / "Images" / "layout.csv")  # beside Original, never inside it
    assert [r["source"] for r in table] == sorted(str(p) for p in source.iterdir())
    rows = {Path(r["source"]).name: r for r in table}
    assert rows["Canon_Ixus70_1_201.JPG"] | {"reason": ""} == {
        "source": str(source / "Canon_Ixus70_1_201.JPG"), "camera": "Canon_Ixus70_1",
        "target": "Canon_Ixus70_1/Canon_Ixus70_1_201.JPG", "action": "linked", "reason": ""}
    assert {n: (r["action"], r["reason"]) for n, r in rows.items() if r["action"] == "skip"} == {
        ".DS_Store": ("skip", "hidden file"),
        "extra": ("skip", "sub-folder is not scanned (pass --recursive to lay out the files below it)"),
        "holiday.jpg": ("skip", "name does not match the pattern"),
        "readme.txt": ("skip", "not an image (extension '.txt')"),
    }
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["camera", "images", "flat", "linked", "exists", "conflict"]
    assert out[1].split() == ["Canon_Ixus70_0", "2", "0", "2", "0", "0"]
    assert "4 camera folders, 4 files skipped:" in out
    # the workflow's discovery sees exactly the camera folders (the table is outside Original)
    _, skipped = discover(output, batches=1)
    assert all(s.camera for s in skipped)


def test_rerun_is_idempotent_and_conflicts_are_never_overwritten(source, tmp_path, capsys):
    output = tmp_path / "Original"
    args = ["layout", str(source), "--by", "pattern", "-o", str(output), "--table", str(tmp_path / "t.csv")]
    assert main(args) == 0
    assert main(args) == 0
    assert {r["action"] for r in read_table(tmp_path / "t.csv") if r["target"]} == {"exists"}
    intruder = output / "Canon_Ixus70_0" / "Canon_Ixus70_0_102.JPG"
    intruder.unlink()
    intruder.write_bytes(b"someone else's file")
    (output / "Canon_Ixus70_1" / "Canon_Ixus70_1_201.JPG").unlink()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "1 targets already hold a different file and were left as they are" in err
    assert intruder.read_bytes() == b"someone else's file"
    actions = {Path(r["source"]).name: r["action"] for r in read_table(tmp_path / "t.csv")}
    assert (actions["Canon_Ixus70_0_102.JPG"], actions["Canon_Ixus70_1_201.JPG"]) == ("conflict", "linked")


def test_recursive_symlinks_flat_folder_and_name_clash(source, tmp_path):
    output = tmp_path / "Original"
    assert main(["layout", str(source), "--by", "pattern", DRESDEN_PATTERN, "-o", str(output), "--recursive",
                 "--symlink", "--flat", "^extra/", "--flat-folder", "flatfield"]) == 0
    tree = layout_tree(output)
    assert tree["Canon_Ixus70_0"] == ["Canon_Ixus70_0_101.JPG", "Canon_Ixus70_0_102.JPG",
                                      "flatfield/Canon_Ixus70_0_103.JPG"]
    link = output / "Canon_Ixus70_0" / "flatfield" / "Canon_Ixus70_0_103.JPG"
    assert link.is_symlink() and Path(os.readlink(link)) == (source / "extra" / link.name).resolve()
    clash = tmp_path / "clash"
    for folder in ("a", "b"):
        (clash / folder).mkdir(parents=True)
        write_jpeg(clash / folder / "IMG_0001.JPG", ord(folder))
    output = tmp_path / "clash_out"
    assert main(["layout", str(clash), "--by", "pattern", r"^(?P<camera>cam)?", "-o", str(output), "--recursive",
                 "--table", str(tmp_path / "c.csv")]) == 2  # the optional group matched nothing: no camera
    assert main(["layout", str(clash), "--by", "pattern", r"(?P<model>IMG)", "-o", str(output), "--recursive",
                 "--table", str(tmp_path / "c.csv")]) == 0
    names = layout_tree(output)["IMG"]
    assert names[0] == "IMG_0001.JPG" and names[1].startswith("IMG_0001_") and len(names) == 2
    a, b = (output / "IMG" / n for n in names)
    assert a.read_bytes() == (clash / "a" / "IMG_0001.JPG").read_bytes()
    assert b.read_bytes() == (clash / "b" / "IMG_0001.JPG").read_bytes()


def test_vision_example_of_the_docs(tmp_path):
    """The VISION command of docs/casework.md: native and flat-field images, not the social-network copies."""
    source = tmp_path / "VISION"
    for n, device in enumerate(("D01_Samsung_GalaxyS3Mini", "D02_Apple_iPhone4s")):
        for kind in ("flat", "nat", "natFBH", "natWA"):
            (source / device / "images" / kind).mkdir(parents=True)
            write_jpeg(source / device / "images" / kind / f"D0{n + 1}_I_{kind}_0001.jpg", n)
        (source / device / "videos" / "nat").mkdir(parents=True)
        (source / device / "videos" / "nat" / f"D0{n + 1}_V_nat_0001.mp4").write_bytes(b"video")
    output = tmp_path / "Original"
    assert main(["layout", str(source), "--recursive", "-o", str(output), "--by", "pattern",
                 r"^(?P<camera>D\d\d_[^/]+)/images/(?:nat|flat)/[^/]+$", "--flat", "/images/flat/"]) == 0
    assert layout_tree(output) == {"D01_Samsung_GalaxyS3Mini": ["D01_I_nat_0001.jpg", "flat/D01_I_flat_0001.jpg"],
                                   "D02_Apple_iPhone4s": ["D02_I_nat_0001.jpg", "flat/D02_I_flat_0001.jpg"]}


def test_copy_mode_and_dry_run(source, tmp_path, capsys):
    output = tmp_path / "Original"
    assert main(["layout", str(source), "--by", "pattern", "-o", str(output), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{source / 'Canon_Ixus70_1_201.JPG'} -> {output / 'Canon_Ixus70_1' / 'Canon_Ixus70_1_201.JPG'} " \
           "(would link)" in out
    assert f"{source / 'readme.txt'}: skipped, not an image" in out
    assert not output.exists() and not (tmp_path / "layout.csv").exists()
    assert main(["layout", str(source), "--by", "pattern", "-o", str(output), "--copy"]) == 0
    copy = output / "Canon_Ixus70_1" / "Canon_Ixus70_1_201.JPG"
    original = source / copy.name
    assert copy.read_bytes() == original.read_bytes() and copy.stat().st_ino != original.stat().st_ino
    assert copy.stat().st_mtime_ns == original.stat().st_mtime_ns
    assert {r["action"] for r in read_table(tmp_path / "layout.csv") if r["target"]} == {"copied"}
    assert main(["layout", str(source), "--by", "pattern", "-o", str(output)]) == 0  # identical copies count as there
    assert {r["action"] for r in read_table(tmp_path / "layout.csv") if r["target"]} == {"exists"}


def test_cross_device_hard_link_says_what_to_do(source, tmp_path, monkeypatch):
    def refuse(src, dst, **kwargs):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), src, None, dst)

    monkeypatch.setattr(os, "link", refuse)
    plan = plan_layout(scan_sources(source), pattern_assigner(compile_pattern(DRESDEN_PATTERN)))
    with pytest.raises(SpnRestoreError, match="different file systems, where hard links are impossible; pass --copy"):
        apply_layout(plan, tmp_path / "Original")


# ----------------------------------------------------------------------------- EXIF layout
def test_exif_layout_tells_devices_apart_by_serial(source, tmp_path, capsys):
    output = tmp_path / "Original"
    assert main(["layout", str(source), "--by", "exif", "-o", str(output)]) == 0
    assert layout_tree(output) == {
        "Canon DIGITAL IXUS 70": ["Canon_Ixus70_2_301.JPG"],
        "Canon DIGITAL IXUS 70_0420100371": ["Canon_Ixus70_0_101.JPG", "Canon_Ixus70_0_102.JPG"],
        "Canon DIGITAL IXUS 70_0520109926": ["Canon_Ixus70_1_201.JPG"],
        "OLYMPUS IMAGING CORP. u1050SW,S1050SW": ["Olympus_mju_1050SW_0_401.JPG"],
    }
    rows = {Path(r["source"]).name: r for r in read_table(tmp_path / "layout.csv")}
    assert rows["Canon_Ixus70_2_301.JPG"]["reason"].endswith(
        "no serial number although other images of this model have one: its device is unknown")
    assert rows["Olympus_mju_1050SW_0_401.JPG"]["reason"].endswith(
        "no serial number: devices of this model are not told apart")
    assert rows["holiday.jpg"]["reason"] == "no EXIF Make or Model; lay it out with --by pattern"


def test_exif_layout_of_real_dng_headers(tmp_path):
    if not SAMPLES.is_dir():
        pytest.skip(f"real samples {SAMPLES} are absent (../shared not mounted)")
    output = tmp_path / "drive" / "Images" / "Original"
    assert main(["layout", str(SAMPLES), "--by", "exif", "-o", str(output), "--copy"]) == 0
    assert layout_tree(output) == {
        "Apple iPhone 12 Pro": ["Apple_iPhone_12_Pro_IMG_1361.dng"],
        "Canon EOS 350D DIGITAL_012345678": ["Canon_EOS_350D_exiftool.dng"],
    }
    images, skipped = discover(output, batches=1)
    assert sorted(i.camera for i in images) == ["Apple iPhone 12 Pro", "Canon EOS 350D DIGITAL_012345678"]
    assert skipped == []


# ----------------------------------------------------------------------------- command-line errors
def test_layout_errors(source, tmp_path, capsys):
    def error(*args: str) -> str:
        assert main(["layout", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("spnrestore: ") and "\n" not in err and "Traceback" not in err, err
        return err

    out = str(tmp_path / "Original")
    assert "absent: source folder does not exist" in error(str(tmp_path / "absent"), "--by", "exif", "-o", out)
    assert "is inside the source folder" in error(str(source), "--by", "exif", "-o", str(source / "Original"))
    assert "inside the output folder" in error(str(source), "--by", "exif", "-o", str(tmp_path))
    assert "not a valid regular expression" in error(str(source), "--by", "pattern", "([", "-o", out)
    assert "names no group 'camera' or 'model'" in error(str(source), "--by", "pattern", r"(\d+)", "-o", out)
    assert "write '--by exif'" in error(str(source), "--by", "exif", "x", "-o", out)
    assert "must not lie inside the output" in error(str(source), "--by", "exif", "-o", out, "--table",
                                                     str(tmp_path / "Original" / "layout.csv"))
    assert "--flat-folder '../x': not a plain folder name" in error(str(source), "--by", "exif", "-o", out,
                                                                    "--flat-folder", "../x")
    assert "no image was placed" in error(str(source), "--by", "pattern", "(?P<camera>nomatch)", "-o", out)
    assert main(["layout", str(source), "--by", "exif", "-o", out, "--copy", "--symlink"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["layout", "--help"]) == 0
    assert "usage: spnrestore layout" in capsys.readouterr().out
