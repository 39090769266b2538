"""Training on real cameras (spnrestore.dataset.real, spnrestore.model.sources.RealSource): the targets come from
the other half's fingerprint, a camera without usable PRNU is left out, and the one engine fine-tunes from it."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch

from spnrestore.config import load_yaml
from spnrestore.dataset import real
from spnrestore.errors import ConfigError
from spnrestore.jpeg import encode_jpeg
from spnrestore.model.checkpoint import load_checkpoint, load_generator
from spnrestore.model.pretrain import MODEL_FILE, pretrain
from spnrestore.model.pretrained import pretrained_checkpoint, resolve_checkpoint, synthetic_checkpoint
from spnrestore.model.sources import RealSource, mixed_synthetic
from spnrestore.model.train_config import resolve_config
from spnrestore.spn.fingerprint import fingerprint_term
from spnrestore.stages.results import model_lines

SIDE = 256
IMAGES = 6


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _camera(folder, name: str, seed: int, prnu: float, images: int = IMAGES):
    """A camera folder of JPEGs (Q95) of smooth random scenes through a sensor with PRNU of std ``prnu``;
    returns its K."""
    rng = np.random.default_rng(seed)
    K = (rng.standard_normal((SIDE, SIDE)) * prnu).astype(np.float32)
    cam = folder / name
    cam.mkdir(parents=True)
    for i in range(images):
        scene = cv2.GaussianBlur(rng.uniform(40, 200, (SIDE, SIDE, 3)).astype(np.float32), (0, 0), 6)
        raw = scene * (1 + K[..., None]) + rng.normal(0, 1.5, scene.shape)
        (cam / f"IMG_{i:04d}.JPG").write_bytes(encode_jpeg(np.clip(raw, 0, 255).astype(np.uint8), 95))
    return K


@pytest.fixture(scope="module")
def cameras(tmp_path_factory):
    root = tmp_path_factory.mktemp("real-cameras")
    ks = {name: _camera(root, name, seed, 0.03) for seed, name in enumerate(["cam_a", "cam_b", "cam_c"])}
    _camera(root, "no_prnu", 9, 0.0)
    (root / "not_a_camera").mkdir()  # no JPEG in it: not a camera
    return root, ks


def _examples(cam, cache=None):
    return real.camera_examples(cam, [50, 90], 64, 3, 0, 5.0, cache)


def test_camera_examples_take_their_target_from_the_other_half(cameras, tmp_path):
    root, ks = cameras
    assert [c.name for c in real.camera_folders(root)] == ["cam_a", "cam_b", "cam_c", "no_prnu"]
    ex = _examples(root / "cam_a", tmp_path)
    n = IMAGES * 2 * 3  # images x qualities x patches per copy
    assert ex["rgb"].shape == (n, 3, 64, 64) and ex["rgb"].dtype == np.uint8
    assert ex["residual"].shape == ex["target"].shape == (n, 1, 64, 64) and ex["target"].dtype == np.float32
    assert sorted(set(ex["quality"].tolist())) == [50, 90]
    assert float(ex["own_pce"]) > 60  # its fingerprint identifies its own images
    # the patch's plain residual correlates with its target (the camera's term, from other images)
    assert _ncc(ex["residual"][:, 0], ex["target"][:, 0]) > 0.05
    none = _examples(root / "no_prnu")
    assert float(none["own_pce"]) < 60  # no PRNU: never trained on
    # the cache returns the same arrays, and a changed setting is not served from it
    again = _examples(root / "cam_a", tmp_path)
    assert all(np.array_equal(again[k], ex[k]) for k in real.ARRAYS)
    assert len(list(tmp_path.glob("cam_a-*.npz"))) == 1
    real.camera_examples(root / "cam_a", [50], 64, 3, 0, 5.0, tmp_path)
    assert len(list(tmp_path.glob("cam_a-*.npz"))) == 2


def test_the_targets_follow_the_camera_not_the_image(cameras):
    """Each half's target uses the other half's fingerprint: its term correlates with the true I*K of the
    camera, and not with another camera's."""
    root, ks = cameras
    a, b = real.halves(root / "cam_b")
    assert len(a) == len(b) == IMAGES // 2
    from spnrestore.spn.fingerprint import estimate_fingerprint

    Ka = estimate_fingerprint((rgb for _, rgb in a), 5.0)
    rgb = b[0][1]
    term = fingerprint_term(Ka, rgb)
    assert _ncc(term, fingerprint_term(ks["cam_b"], rgb)) > 0.3
    assert abs(_ncc(term, fingerprint_term(ks["cam_a"], rgb))) < 0.05


def test_real_source_batches_and_validation(cameras):
    root, _ = cameras
    per = {name: _examples(root / name) for name in ("cam_a", "cam_b", "cam_c")}
    source = RealSource(per, 64, val_every=4)
    n = sum(len(e["quality"]) for e in per.values())
    assert len(source.val_set) == 3 * len(range(0, 36, 4))  # every fourth patch of each camera
    assert len(source.train_arrays["quality"]) + len(source.val_set) == n
    cfg = resolve_config({"batch_size": 8, "seed": 5})
    source.open(cfg, torch.device("cpu"))
    first = list(source.train_batches(0, 2))
    again = list(source.train_batches(1, 2))
    assert torch.equal(first[1]["target"], again[0]["target"])  # a function of the seed and the step
    assert first[0]["rgb"].shape == (8, 3, 64, 64) and "other_target" in first[0]
    # validation in turns across cameras: an example's non-match term is another camera's target
    val = source.val_arrays["target"]
    assert not torch.equal(val[0], val[1])
    assert source.record()["real"]["cameras"] == ["cam_a", "cam_b", "cam_c"]
    with pytest.raises(ConfigError, match="at least 2"):
        RealSource({"cam_a": per["cam_a"]}, 64)
    with pytest.raises(ConfigError, match="batch_size = 500"):
        source.open(resolve_config({"batch_size": 500}), torch.device("cpu"))


def test_a_synthetic_share_mixes_the_stream_into_each_batch(cameras):
    """real.synthetic_share: each batch holds that share of the synthetic stream's step (same patch size),
    after the real patches of the step, whose draw is unchanged by the mix; validation stays real."""
    root, _ = cameras
    per = {name: _examples(root / name) for name in ("cam_a", "cam_b")}
    cfg = resolve_config({"batch_size": 8, "seed": 5, "num_workers": 0,
                          "synthetic": {"patch": 64, "margin": 32, "val_examples": 4},
                          "real": {"patch": 64, "synthetic_share": 0.25}})
    syn, share = mixed_synthetic(cfg)
    mixed = RealSource(per, 64, settings={"synthetic_share": share}, synthetic=syn, synthetic_share=share)
    plain = RealSource(per, 64)
    mixed.open(cfg, torch.device("cpu"))
    plain.open(resolve_config({"batch_size": 6, "seed": 5}), torch.device("cpu"))
    batch, real_only = next(iter(mixed.train_batches(3, 4))), next(iter(plain.train_batches(3, 4)))
    assert batch["rgb"].shape == (8, 3, 64, 64) and batch["rgb"].dtype == torch.uint8
    assert torch.equal(batch["target"][:6], real_only["target"])  # the real part: the same draw
    # the synthetic part: the synthetic stream's own step 3 (2 examples a step)
    alone, _ = mixed_synthetic(cfg)
    alone.open({**cfg, "batch_size": 2}, torch.device("cpu"))
    stream = next(iter(alone.train_batches(3, 4)))
    assert torch.equal(batch["target"][6:], stream["target"]) and torch.equal(batch["rgb"][6:], stream["rgb"])
    assert len(mixed.val_set) == len(plain.val_set)
    assert mixed.record()["real"]["synthetic"]["patch"] == 64 and "generator_sha256" in mixed.identity()
    with pytest.raises(ConfigError, match="synthetic_share = 0.1 of batch_size = 8"):
        RealSource(per, 64, synthetic=syn, synthetic_share=0.1).open(cfg, torch.device("cpu"))
    with pytest.raises(ConfigError, match="one patch size"):
        mixed_synthetic(resolve_config({"real": {"synthetic_share": 0.5, "patch": 64}}))


def test_pretrain_fine_tunes_the_synthetic_base_on_real_cameras(cameras, tmp_path, caplog):
    """spnrestore pretrain with real.folder: the one engine on the usable cameras (no_prnu left out, and the log
    says so), starting from the synthetic base, written as a loadable model recording the cameras."""
    root, _ = cameras
    base, _ = load_generator(synthetic_checkpoint())
    cfg = {"init": "pretrained-synthetic", "model": base.config.as_dict(), "steps": 2, "batch_size": 4,
           "val_every": 1, "checkpoint_every": 1, "num_workers": 0, "progress": False, "cpu_time_budget_s": None,
           "loss_weights": {"corr": 1.0, "lf": 0.0, "hf": 0.0, "adv": 0.0},
           "real": {"folder": str(root), "qualities": [50], "patch": 64, "patches": 2, "val_every": 3}}
    caplog.set_level(logging.INFO, logger="spnrestore")
    metrics = pretrain(tmp_path, cfg)
    assert metrics["steps_done"] == 2
    assert any("no_prnu" in m and "not used" in m for m in caplog.messages)
    payload = load_checkpoint(tmp_path / MODEL_FILE)  # weights_only
    assert payload["real"]["cameras"] == ["cam_a", "cam_b", "cam_c"] and "pretrain" not in payload
    assert payload["train_config"]["init"] == "pretrained-synthetic"
    assert payload["train_config"]["real"]["folder"] == root.name  # the folder's name, not this machine's path
    model = load_generator(tmp_path / MODEL_FILE)[0]
    assert torch.equal(model.block_filter.weights, base.block_filter.weights)  # the base's filter is kept
    assert list((tmp_path / "real-examples").glob("*.npz"))  # the examples are kept for a resumed run
    lines = model_lines(tmp_path / MODEL_FILE, reused=True)  # results.md's Model section names the cameras
    assert any("3 real cameras (cam_a, cam_b, cam_c" in line and "from `pretrained-synthetic`" in line for line in lines)
    with pytest.raises(ConfigError, match="real.folder|not a folder"):
        pretrain(tmp_path / "other", {**cfg, "real": {"folder": str(tmp_path / "missing")}})


def test_the_shipped_model_is_the_real_recipe_from_its_synthetic_base(project_root):
    """config/pretrain-real.yaml starts from the synthetic base, and the shipped model records the real
    cameras it was fine-tuned on and that recipe's settings."""
    cfg = resolve_config(load_yaml(project_root / "config" / "pretrain-real.yaml"))
    assert cfg["init"] == "pretrained-synthetic" and cfg["time_budget_s"] is None and cfg["cpu_time_budget_s"] is None
    assert resolve_checkpoint("pretrained-synthetic") == str(synthetic_checkpoint())
    shipped, base = load_checkpoint(pretrained_checkpoint()), load_checkpoint(synthetic_checkpoint())
    assert cfg["model"] == shipped["model_config"] == base["model_config"]
    assert base["pretrain"]["variant"]  # the synthetic base: the former shipped model
    assert shipped["real"]["cameras"] and "OnePlus_3" not in shipped["real"]["cameras"]
    recorded = shipped["train_config"]
    assert {k: recorded[k] for k in ("seed", "steps", "lr", "batch_size", "init")} == \
        {k: cfg[k] for k in ("seed", "steps", "lr", "batch_size", "init")}
    assert {k: shipped["real"][k] for k in ("qualities", "patches", "val_every")} == \
        {k: cfg["real"][k] for k in ("qualities", "patches", "val_every")}
