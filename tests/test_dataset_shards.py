"""Training-pair shards: determinism, contents, skips, errors."""

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from spnrestore import spn
from spnrestore.dataset import build_shards, build_split, list_shards, open_shard, read_manifest
from spnrestore.errors import ConfigError
from spnrestore.jpeg import read_rgb

SIZE = (256, 256)


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
    build_shards(examples, prints, tmp_path / "a", patch=64, shard_size=50)
    build_shards(examples.sample(frac=1.0, random_state=1), prints, tmp_path / "b", patch=64, shard_size=50)
    a, b = tree_hashes(tmp_path / "a"), tree_hashes(tmp_path / "b")
    assert a == b and "train/shard-00000/rgb.npy" in a and "manifest.csv" in a
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_manifest_rows_match_shard_contents(source, tmp_path):
    examples, prints = source
    manifest = build_shards(examples, prints, tmp_path, patch=64, shard_size=40)
    assert manifest.equals(read_manifest(tmp_path / "manifest.csv"))
    assert set(manifest["split"]) == {"train", "val"}
    for split in ("train", "val"):
        shards = list_shards(tmp_path, split)
        sizes = [len(open_shard(s)["quality"]) for s in shards]
        assert sizes[:-1] == [40] * (len(sizes) - 1) and 0 < sizes[-1] <= 40
        assert sum(sizes) == (manifest["split"] == split).sum()
    by_jpeg = {}
    for row in manifest.sample(n=40, random_state=0).itertuples():
        arrays = open_shard(tmp_path / row.split / row.shard)
        if row.jpeg not in by_jpeg:
            rgb = read_rgb(row.jpeg)
            other = np.load(prints[row.other_camera])
            by_jpeg[row.jpeg] = (rgb, np.load(row.residual), spn.fingerprint_term(np.load(prints[row.camera]), rgb),
                                 spn.fingerprint_term(other, rgb))
        rgb, residual, target, other_target = by_jpeg[row.jpeg]
        window = np.s_[row.y:row.y + 64, row.x:row.x + 64]
        assert row.other_camera != row.camera
        assert (arrays["rgb"][row.index] == rgb[window].transpose(2, 0, 1)).all()
        assert np.array_equal(arrays["residual"][row.index, 0], half(residual[window]))
        assert np.allclose(arrays["target"][row.index, 0], half(target[window]), rtol=1e-6, atol=1e-9)
        assert np.allclose(arrays["other_target"][row.index, 0], half(other_target[window]), rtol=1e-6, atol=1e-9)
        assert arrays["quality"][row.index] == row.quality
        assert row.jpeg_sha256 == hashlib.sha256(Path(row.jpeg).read_bytes()).hexdigest()
    arrays = open_shard(list_shards(tmp_path, "train")[0])
    assert arrays["rgb"].dtype == np.uint8 and arrays["rgb"].shape[1:] == (3, 64, 64)
    assert all(arrays[k].dtype == np.float32 and arrays[k].shape[1:] == (1, 64, 64)
               and arrays[k][:2].dtype == np.float32 for k in ("residual", "target", "other_target"))
    stored = np.load(list_shards(tmp_path, "train")[0] / "target.npy", mmap_mode="r")
    assert stored.dtype == np.float16  # half the bytes on disk, float32 to the reader


def half(a: np.ndarray) -> np.ndarray:
    """What a shard stores of a float map: float16, read back as float32."""
    return a.astype(np.float16).astype(np.float32)


def test_original_residual_target_and_one_split_per_call(source, tmp_path):
    examples, prints = source
    rows = build_split(examples, prints, tmp_path, "val", target="original_residual", patch=64, shard_size=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["val"]
    assert (rows["target"] == "original_residual").all()
    row = rows.iloc[5]
    target = open_shard(tmp_path / "val" / row["shard"])["target"][row["index"], 0]
    assert np.array_equal(target, half(np.load(row.target_source)[row.y:row.y + 64, row.x:row.x + 64]))


def test_mis_sized_images_are_skipped_with_a_reason(source, tmp_path):
    examples, prints = source
    prints = dict(prints, cam1=np.zeros((256, 320), np.float32))
    messages = []
    manifest = build_shards(examples, prints, tmp_path / "d", patch=64, log=messages.append)
    assert "cam1" not in set(manifest["camera"])
    assert any("cam1/img0 Q30: skipped: image is 256x256 but the fingerprint of cam1 is 256x320" in m for m in messages)


def test_bad_inputs_are_clear_errors(source, tmp_path):
    examples, prints = source
    with pytest.raises(ConfigError, match="missing column.*residual"):
        build_shards(examples.drop(columns="residual"), prints, tmp_path)
    with pytest.raises(ConfigError, match="at least two cameras"):
        build_shards(examples[examples.camera == "cam0"], {"cam0": prints["cam0"]}, tmp_path)
    with pytest.raises(ConfigError, match="multiple of 8"):
        build_shards(examples, prints, tmp_path, patch=60)
    with pytest.raises(ConfigError, match="target"):
        build_shards(examples, prints, tmp_path, target="fingerprint")
