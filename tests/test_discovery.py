"""Camera and image discovery, skipped entries and stable batching."""

from __future__ import annotations

import os

import pytest

from spnrestore.discovery import batch_of, discover


def make_drive(root, layout):
    for camera, names in layout.items():
        folder = root / camera
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes(b"II*\x00placeholder")
    return root


def test_cameras_images_and_any_case_extension(tmp_path):
    original = make_drive(tmp_path, {
        "Nikon D7000": ["a.NEF", "b.nef", "c.DNG", "d.Dng", "e.cr2", "f.ARW", "g.orf", "h.RAF", "i.pef", "j.rw2"],
        "Canon.EOS 6D": ["IMG 0001.dng"],
        "Čamera_ü": ["фото.DNG"],
    })
    images, skipped = discover(original, batches=8)
    assert {(i.camera, i.image) for i in images} == {
        *(("Nikon D7000", s) for s in "abcdefghij"), ("Canon.EOS 6D", "IMG 0001"), ("Čamera_ü", "фото")}
    assert skipped == []
    assert {i.format for i in images if i.camera == "Nikon D7000"} == {
        "nef", "dng", "cr2", "arw", "orf", "raf", "pef", "rw2"}


def test_non_images_and_empty_cameras_are_listed_not_fatal(tmp_path):
    original = make_drive(tmp_path, {"Cam": ["a.DNG", "notes.txt", "a.xmp", "photo.gif"], "Empty": []})
    (tmp_path / "Cam" / "sub").mkdir()
    (tmp_path / "stray.DNG").write_bytes(b"x")
    images, skipped = discover(original, batches=4)
    assert [i.image for i in images] == ["a"]
    reasons = {os.path.basename(s.path): s.reason for s in skipped}
    assert "not a RAW image" in reasons["notes.txt"] and "not a RAW image" in reasons["photo.gif"]
    assert "not a RAW image" in reasons["a.xmp"]
    assert "no images" in reasons["Empty"]
    assert "sub-folder" in reasons["sub"]
    assert "not a camera folder" in reasons["stray.DNG"]


def test_same_stem_twice_is_skipped_with_reason(tmp_path):
    original = make_drive(tmp_path, {"Cam": ["x.DNG", "x.NEF"]})
    images, skipped = discover(original, batches=4)
    assert len(images) == 1 and len(skipped) == 1 and "same name" in skipped[0].reason


def test_symlink_outside_the_drive_is_skipped(tmp_path):
    outside = tmp_path / "elsewhere.DNG"
    outside.write_bytes(b"II*\x00")
    original = make_drive(tmp_path / "Original", {"Cam": ["in.DNG"]})
    (original / "Cam" / "link.DNG").symlink_to(outside)
    (original / "Cam" / "inner.DNG").symlink_to(original / "Cam" / "in.DNG")
    images, skipped = discover(original, batches=4)
    assert sorted(i.image for i in images) == ["in", "inner"]
    assert len(skipped) == 1 and "outside" in skipped[0].reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_unreadable_camera_folder_is_reported(tmp_path):
    original = make_drive(tmp_path, {"Locked": ["a.DNG"], "Open": ["b.DNG"]})
    (original / "Locked").chmod(0)
    try:
        images, skipped = discover(original, batches=4)
    finally:
        (original / "Locked").chmod(0o755)
    assert [i.camera for i in images] == ["Open"]
    assert "cannot be read" in skipped[0].reason


def test_batches_are_stable_when_images_are_added(tmp_path):
    names = [f"IMG_{i:04d}.DNG" for i in range(200)]
    original = make_drive(tmp_path, {"Cam": names})
    before = {i.image: i.batch for i in discover(original, batches=16)[0]}
    (original / "Cam" / "IMG_new.DNG").write_bytes(b"II*\x00")
    after = {i.image: i.batch for i in discover(original, batches=16)[0]}
    assert all(after[k] == v for k, v in before.items())
    assert len(set(before.values())) == 16  # 200 names spread over all 16 batches
    assert batch_of("IMG_0001.DNG", 16) == batch_of("IMG_0001.DNG", 16)
