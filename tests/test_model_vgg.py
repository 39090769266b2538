"""VGG-16 features without torchvision: key layout, hash check, fallback without weights."""

import hashlib
import logging
import warnings

import pytest
import torch

from spnrestore.errors import SpnRestoreError
from spnrestore.model.losses import HighFrequencyLoss, make_hf_loss
from spnrestore.model.train_config import resolve_config
from spnrestore.model.vgg import VGG16Features, load_vgg16_features

LAYERS = ("relu1_2", "relu2_2")


def test_state_dict_keys_follow_torchvision_layout():
    keys = list(VGG16Features(["relu5_3"]).state_dict())
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert keys == [f"features.{i}.{p}" for i in convs for p in ("weight", "bias")]
    assert VGG16Features(["relu5_3"]).state_dict()["features.28.weight"].shape == (512, 512, 3, 3)


@pytest.fixture
def weights_file(tmp_path):
    """A small generated file with the real layout (features up to relu2_2 plus a classifier tensor)."""
    torch.manual_seed(0)
    state = {k: torch.randn(v.shape) * 0.05 for k, v in VGG16Features(LAYERS).state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path / "vgg16-test.pth"
    torch.save(state, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest(), state


def test_loads_a_weights_file_with_matching_hash(weights_file):
    path, digest, state = weights_file
    model = load_vgg16_features(path, digest, LAYERS)
    assert torch.equal(model.state_dict()["features.7.weight"], state["features.7.weight"])
    assert not any(p.requires_grad for p in model.parameters())
    feats = model(torch.randn(1, 3, 32, 32))
    assert [f.shape[1:] for f in feats] == [(64, 32, 32), (128, 16, 16)]


def test_hash_mismatch_names_file_and_both_hashes(weights_file):
    path, digest, _ = weights_file
    wrong = "0" * 64
    with pytest.raises(SpnRestoreError) as err:
        load_vgg16_features(path, wrong, LAYERS)
    assert str(path) in str(err.value) and wrong in str(err.value) and digest in str(err.value)


def test_file_without_features_is_rejected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"classifier.0.weight": torch.zeros(2)}, path)
    with pytest.raises(SpnRestoreError, match="not VGG-16 features"):
        load_vgg16_features(path, hashlib.sha256(path.read_bytes()).hexdigest(), LAYERS)


def test_missing_file_warns_and_falls_back_to_haar(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="spnrestore")
    cfg = resolve_config({"vgg_weights": str(tmp_path / "absent.pth")})
    with pytest.warns(UserWarning, match="Haar"):
        hf = make_hf_loss(cfg)
    assert hf.kind == "haar" and hf.vgg is None and "absent.pth" in caplog.messages[0]


def test_configured_file_gives_vgg_loss(weights_file):
    path, digest, _ = weights_file
    cfg = resolve_config({"vgg_weights": str(path), "vgg_sha256": digest, "vgg_layers": list(LAYERS)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hf = make_hf_loss(cfg)
    assert isinstance(hf, HighFrequencyLoss) and hf.kind == "vgg16"
    x = torch.randn(2, 1, 32, 32)
    assert hf(x, x) == 0 and hf(x, torch.randn(2, 1, 32, 32)) > 0
