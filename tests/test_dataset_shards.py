"""Training-pair shards: determinism, contents, targets computed on read, per-camera folders, skips, errors."""

import hashlib
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from spnrestore import spn
from spnrestore.dataset import (build_split, gather_manifests, list_shards, open_shard, read_manifest, read_rows,
                                split_manifest)
from spnrestore.dataset.shard_format import PackedPatches, fit_crop, pack_patches
from spnrestore.errors import ConfigError, SpnRestoreError
from spnrestore.jpeg import read_rgb
from shard_helpers import build_dataset

SIZE = (256, 256)


def fit_plane(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The reference of fit_crop: ``plane`` cropped to ``shape`` from its top-left corner, tiled (wrap) where it
    is too small."""
    pad = [(0, max(0, want - have)) for want, have in zip(shape, plane.shape)]
    return np.pad(np.asarray(plane, np.float32), pad, mode="wrap")[: shape[0], : shape[1]]


def synthetic_examples(root: Path, cameras=3, images=3, qualities=(30,), seed=0):
    """Cameras with a known PRNU K; smooth textured scenes x (1 + K) + noise, JPEG-compressed with OpenCV."""
    rng = np.random.default_rng(seed)
    rows, prints = [], {}
    for c in range(cameras):
        cam = f"cam{c}"
        (root / cam).mkdir(parents=True)
        K = rng.normal(0, 0.03, SIZE).astype(np.float32)
        np.save(root / cam / "K.npy", K)
        prints[cam] = root / cam / "K.npy"
        for i in range(images):
            base = cv2.GaussianBlur(rng.normal(0, 1, SIZE + (3,)).astype(np.float32), (0, 0), 6)
            fine = cv2.GaussianBlur(rng.normal(0, 1, SIZE).astype(np.float32), (0, 0), 1.5)[..., None]
            scene = 40 + 150 * (base - base.min()) / np.ptp(base) + 20 * fine
            raw = np.clip(scene * (1 + K[..., None]) + rng.normal(0, 1, scene.shape), 0, 255).astype(np.uint8)
            np.save(root / cam / f"img{i}_orig.npy", spn.extract_residual(raw))
            for q in qualities:
                ok, buf = cv2.imencode(".jpg", raw[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
                jpeg = root / cam / f"img{i}_q{q}.jpg"
                jpeg.write_bytes(buf.tobytes())
                np.save(root / cam / f"img{i}_q{q}.npy", spn.extract_residual(read_rgb(jpeg)))
                rows.append({"camera": cam, "image": f"img{i}", "quality": q, "jpeg": str(jpeg),
                             "residual": str(root / cam / f"img{i}_q{q}.npy"),
                             "original_residual": str(root / cam / f"img{i}_orig.npy")})
    frame = pd.DataFrame(rows)
    frame["split"] = np.where(frame["image"] == f"img{images - 1}", "val", "train")
    return frame, prints


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return synthetic_examples(tmp_path_factory.mktemp("src"), qualities=(30, 60))


def tree_hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_builds_are_byte_identical(source, tmp_path):
    examples, prints = source
    build_dataset(examples, prints, tmp_path / "a", patch=64, shard_size=50)
    build_dataset(examples.sample(frac=1.0, random_state=1), prints, tmp_path / "b", patch=64, shard_size=50)
    a, b = tree_hashes(tmp_path / "a"), tree_hashes(tmp_path / "b")
    assert a == b and "train/cam0/shard-00000/rgb_files.npy" in a and "manifest.csv" in a and "val/manifest.csv" in a
    assert not [p for p in (tmp_path / "a").rglob(".*")]  # no temporary folders left


def test_manifest_rows_match_shard_contents(source, tmp_path):
    examples, prints = source
    manifest = build_dataset(examples, prints, tmp_path, patch=64, shard_size=40)
    assert manifest.equals(read_manifest(tmp_path / "manifest.csv"))
    assert set(manifest["split"]) == {"train", "val"}
    for split in ("train", "val"):
        shards = list_shards(tmp_path, split)
        assert [s.parent.name for s in shards] == sorted(s.parent.name for s in shards)  # cameras in sorted order
        for camera in {s.parent.name for s in shards}:
            sizes = [len(open_shard(s)["quality"]) for s in shards if s.parent.name == camera]
            assert sizes[:-1] == [40] * (len(sizes) - 1) and 0 < sizes[-1] <= 40
        assert sum(len(open_shard(s)["quality"]) for s in shards) == (manifest["split"] == split).sum()
        assert split_manifest(tmp_path, split).equals(read_manifest(tmp_path / split / "manifest.csv"))
    order = ["camera", "image", "quality"]
    assert manifest.groupby("split", sort=False)[order].apply(lambda m: m.equals(m.sort_values(order, kind="stable"))).all()
    by_jpeg = {}
    for row in manifest.sample(n=40, random_state=0).itertuples():
        arrays = open_shard(tmp_path / row.split / row.shard)
        assert row.shard.startswith(f"{row.camera}/shard-")
        if row.jpeg not in by_jpeg:
            rgb = read_rgb(row.jpeg)
            other = np.load(prints[row.other_camera])
            by_jpeg[row.jpeg] = (rgb, np.load(row.residual), spn.fingerprint_term(np.load(prints[row.camera]), rgb),
                                 spn.fingerprint_term(other, rgb))
        rgb, residual, target, other_target = by_jpeg[row.jpeg]
        window = np.s_[row.y:row.y + 64, row.x:row.x + 64]
        assert row.other_camera != row.camera and row.other_source == str(prints[row.other_camera])
        assert (arrays["rgb"][row.index] == rgb[window].transpose(2, 0, 1)).all()
        assert np.array_equal(arrays["residual"][row.index, 0], half(residual[window]))
        assert np.array_equal(arrays["target"][row.index, 0], target[window])  # computed on read, float32
        assert np.array_equal(arrays["other_target"][row.index, 0], other_target[window])
        assert arrays["quality"][row.index] == row.quality
        assert row.jpeg_sha256 == hashlib.sha256(Path(row.jpeg).read_bytes()).hexdigest()
    first = list_shards(tmp_path, "train")[0]
    arrays = open_shard(first)
    assert arrays["rgb"].dtype == np.uint8 and arrays["rgb"].shape[1:] == (3, 64, 64)
    assert all(arrays[k].dtype == np.float32 and arrays[k].shape[1:] == (1, 64, 64)
               and arrays[k][:2].dtype == np.float32 for k in ("residual", "target", "other_target"))
    assert sorted(p.name for p in first.iterdir()) == ["corner.npy", "prints.npy", "quality.npy", "residual.npy",
                                                       "rgb_files.npy", "rgb_offsets.npy"]  # no stored targets
    assert np.load(first / "residual.npy", mmap_mode="r").dtype == np.float16  # half the bytes on disk
    for k in ("rgb", "target"):  # a slice of rows, then an index on the next axis, as an ndarray does
        assert np.array_equal(arrays[k][1:3, 0], np.asarray(arrays[k])[1:3, 0])
    rows = np.array([7, 2, 3])
    batch = read_rows(arrays, rows)
    assert all(np.array_equal(batch[k], np.asarray(arrays[k][rows])) for k in batch)


def half(a: np.ndarray) -> np.ndarray:
    """What a shard stores of a float map: float16, read back as float32."""
    return a.astype(np.float16).astype(np.float32)


def test_original_residual_target_and_one_split_per_call(source, tmp_path):
    examples, prints = source
    rows = build_split(examples, prints, tmp_path, "val", target="original_residual", patch=64, shard_size=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val"]
    assert (rows["target"] == "original_residual").all()
    row = rows.iloc[5]
    arrays = open_shard(tmp_path / "val" / row["shard"])
    window = np.s_[row.y:row.y + 64, row.x:row.x + 64]
    assert np.array_equal(arrays["target"][row["index"], 0], half(np.load(row.target_source)[window]))
    other = spn.fingerprint_term(np.load(prints[row.other_camera]), read_rgb(row.jpeg))
    assert np.array_equal(arrays["other_target"][row["index"], 0], other[window])  # still computed on read
    assert (tmp_path / "val" / row["shard"] / "target.npy").is_file()


def test_other_fingerprint_of_another_size_is_tiled_on_read(source, tmp_path):
    examples, prints = source
    small = np.random.default_rng(9).normal(0, 0.03, (100, 90)).astype(np.float32)  # < half the image each way
    np.save(tmp_path / "small.npy", small)
    prints = dict(prints, cam2=tmp_path / "small.npy")  # cam2's images are skipped, its K serves as non-match
    manifest = build_dataset(examples, prints, tmp_path / "d", patch=64, shard_size=7)
    tiled = manifest[manifest["other_camera"] == "cam2"]
    assert len(tiled) and "cam2" not in set(manifest["camera"])
    for row in tiled.itertuples():
        rgb = read_rgb(row.jpeg)
        expected = spn.fingerprint_term(fit_plane(small, rgb.shape[:2]), rgb)[row.y:row.y + 64, row.x:row.x + 64]
        assert np.array_equal(open_shard(tmp_path / "d" / row.split / row.shard)["other_target"][row.index, 0],
                              expected)
    for y, x in ((0, 0), (36, 26), (192, 192), (99, 89)):
        assert np.array_equal(fit_crop(small, y, x, 64), fit_plane(small, (256, 256))[y:y + 64, x:x + 64])


def test_one_folder_per_camera_gives_the_split_of_one_call(source, tmp_path):
    examples, prints = source
    whole = build_dataset(examples, prints, tmp_path / "whole", patch=64, shard_size=16)
    for camera in ("cam2", "cam0", "cam1", "cam9"):  # any order; cam9: no image in the split
        build_split(examples, prints, tmp_path / "each", "train", patch=64, shard_size=16, camera=camera)
    build_split(examples, prints, tmp_path / "each", "val", patch=64, shard_size=16, camera="cam1")
    empty = read_manifest(tmp_path / "each" / "train" / "cam9" / "manifest.csv")
    assert empty.empty and list(empty.columns) == list(whole.columns)
    assert not list((tmp_path / "each" / "train" / "cam9").glob("shard-*"))
    each = gather_manifests(tmp_path / "each", ["train", "val", "test"])  # test: no camera folder, no examples
    assert read_manifest(tmp_path / "each" / "test" / "manifest.csv").empty
    assert each.equals(whole[(whole["split"] == "train") | (whole["camera"] == "cam1")].reset_index(drop=True))
    train = [open_shard(s) for s in list_shards(tmp_path / "each", "train")]
    assert np.array_equal(np.concatenate([a["rgb"][:] for a in train]),
                          np.concatenate([open_shard(s)["rgb"][:] for s in list_shards(tmp_path / "whole", "train")]))
    build_split(examples, prints, tmp_path / "each", "train", patch=64, shard_size=16, camera="cam0")  # replaced
    assert not [p for p in (tmp_path / "each").rglob(".*")]
    with pytest.raises(ConfigError, match="folder name"):
        build_split(examples, prints, tmp_path / "each", "train", camera="../x")


def test_residuals_not_stored_are_computed_from_the_jpeg(source, tmp_path):
    examples, prints = source
    unstored = examples.assign(residual="")
    with pytest.raises(ConfigError, match="sigma"):
        build_split(unstored, prints, tmp_path, "val", patch=64)
    manifest = build_split(unstored, prints, tmp_path, "val", patch=64, sigma=3.0, camera="cam0")
    assert (manifest["residual"] == "").all() and len(manifest)
    row = manifest.iloc[3]
    rgb = read_rgb(row.jpeg)
    expected = half(spn.extract_residual(rgb, sigma=3.0)[row.y:row.y + 64, row.x:row.x + 64])
    assert np.array_equal(open_shard(tmp_path / "val" / row.shard)["residual"][row["index"], 0], expected)


FORMER = ("a shard of a former layout, with {}, which this version no longer reads; rebuild the data set: "
          "snakemake --forcerun shards")


def test_shards_of_the_former_layout_are_refused(tmp_path):
    """<split>/shard-NNNNN/ with stored target and other_target: listed, but opening one says to rebuild."""
    rng = np.random.default_rng(0)
    arrays = {"rgb": rng.integers(0, 256, (5, 3, 16, 16), dtype=np.uint8),
              "residual": rng.normal(0, 3, (5, 1, 16, 16)).astype(np.float16),
              "target": rng.normal(0, .01, (5, 1, 16, 16)).astype(np.float32),
              "other_target": rng.normal(0, .01, (5, 1, 16, 16)).astype(np.float16),
              "quality": np.full(5, 30, np.uint8)}
    for k in range(2):
        (tmp_path / "train" / f"shard-{k:05d}").mkdir(parents=True)
        for name, a in arrays.items():
            np.save(tmp_path / "train" / f"shard-{k:05d}" / f"{name}.npy", a)
    shards = list_shards(tmp_path, "train")
    assert [s.name for s in shards] == ["shard-00000", "shard-00001"]
    for shard in shards:
        with pytest.raises(SpnRestoreError) as caught:
            open_shard(shard)
        assert str(caught.value) == f"{shard}: " + FORMER.format("its targets stored (other_target.npy)")


def test_packed_pixels_give_back_the_same_array():
    """Noise (the worst case for a lossless codec), a flat patch and a saturated one; indexing as an ndarray."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (6, 3, 24, 24), dtype=np.uint8)
    rgb[1], rgb[2] = 0, 255
    data, offsets = pack_patches(rgb)
    packed = PackedPatches(data, offsets, Path("shard"))
    assert packed.shape == rgb.shape and len(packed) == 6 and packed.dtype == np.uint8
    assert np.array_equal(np.asarray(packed), rgb) and np.array_equal(packed[[4, 1, 4]], rgb[[4, 1, 4]])
    assert np.array_equal(packed[5], rgb[5]) and np.array_equal(packed[1:4, 2], rgb[1:4, 2])
    assert offsets[-1] == data.size < rgb.nbytes  # the flat patches pay for the noise's overhead
    empty = PackedPatches(*pack_patches(rgb[:0]), Path("shard"))
    assert empty.shape == (0, 3, 0, 0) and np.asarray(empty).shape == (0, 3, 0, 0)


def test_damaged_pixels_of_a_shard_or_raw_pixels_of_a_former_one(source, tmp_path):
    examples, prints = source
    build_dataset(examples, prints, tmp_path, patch=64, shard_size=40)
    shard = list_shards(tmp_path, "train")[0]
    pixels = np.asarray(open_shard(shard)["rgb"])
    data, offsets = np.load(shard / "rgb_files.npy"), np.load(shard / "rgb_offsets.npy")
    np.save(shard / "rgb_offsets.npy", offsets[:-1])
    with pytest.raises(SpnRestoreError, match="offsets do not fit.*rebuild the data set"):
        open_shard(shard)
    np.save(shard / "rgb_offsets.npy", offsets)
    broken = data.copy()
    broken[offsets[3] + 20:offsets[4]] = 0
    np.save(shard / "rgb_files.npy", broken)
    with pytest.raises(SpnRestoreError, match=f"{shard}: patch 3 is not a readable"):
        read_rows(open_shard(shard), np.array([0, 3]))
    for name in ("rgb_files", "rgb_offsets"):  # a shard of the former layout with raw pixels (rgb.npy)
        (shard / f"{name}.npy").unlink()
    np.save(shard / "rgb.npy", pixels)
    with pytest.raises(SpnRestoreError) as caught:
        open_shard(shard)
    assert str(caught.value) == f"{shard}: " + FORMER.format("raw pixels (rgb.npy)")


def test_mis_sized_images_are_skipped_with_a_reason(source, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="spnrestore")
    examples, prints = source
    prints = dict(prints, cam1=np.zeros((256, 320), np.float32))
    manifest = build_dataset(examples, prints, tmp_path / "d", patch=64)
    assert "cam1" not in set(manifest["camera"])
    assert any("cam1/img0 Q30: skipped: image is 256x256 but the fingerprint of cam1 is 256x320" in m
               for m in caplog.messages)


def test_bad_inputs_are_clear_errors(source, tmp_path):
    examples, prints = source
    with pytest.raises(ConfigError, match="missing column.*residual"):
        build_dataset(examples.drop(columns="residual"), prints, tmp_path)
    with pytest.raises(ConfigError, match="at least two cameras"):
        build_dataset(examples[examples.camera == "cam0"], {"cam0": prints["cam0"]}, tmp_path)
    with pytest.raises(ConfigError, match="multiple of 8"):
        build_dataset(examples, prints, tmp_path, patch=60)
    with pytest.raises(ConfigError, match="target"):
        build_dataset(examples, prints, tmp_path, target="fingerprint")
