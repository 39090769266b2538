"""Checkpoints: weights-only round trip and clear errors for unsafe, truncated or mismatched files."""

import os

import numpy as np
import pytest
import torch

from spnrestore.errors import SpnRestoreError
from spnrestore.model.checkpoint import FORMAT, load_checkpoint, load_generator, model_payload, save_checkpoint
from spnrestore.model.networks import Generator, GeneratorConfig


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = Generator(GeneratorConfig.tiny())
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    model.residual_scale.fill_(2.5)
    path = tmp_path / "model.pt"
    save_checkpoint(path, model_payload(model, metrics={"gain": 0.1}, hf_loss="haar", train_config={"lr": 1e-3}))
    return model, path


def test_round_trip_with_weights_only(saved):
    model, path = saved
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT and raw["hf_loss"] == "haar" and raw["metrics"] == {"gain": 0.1}
    loaded, payload = load_generator(path)
    assert loaded.config == model.config and loaded.residual_scale.item() == 2.5
    x, r, q = torch.rand(1, 3, 32, 32), torch.randn(1, 1, 32, 32), torch.tensor([30])
    with torch.no_grad():
        assert torch.equal(loaded(x, r, q), model.eval()(x, r, q))


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "model_state": Payload()}, path)
    with pytest.raises(SpnRestoreError, match="refused to load"):
        load_checkpoint(path)
    assert not marker.exists()


def test_truncated_file_is_a_clear_error(saved, tmp_path):
    _, path = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SpnRestoreError, match="cut.pt: truncated"):
        load_checkpoint(cut)
    with pytest.raises(SpnRestoreError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.pt")


def test_other_model_configuration_is_a_clear_error(saved):
    _, path = saved
    with pytest.raises(SpnRestoreError, match=r"another model configuration \(.*width: 8 \(checkpoint\) vs 32"):
        load_generator(path, GeneratorConfig())
    payload = load_checkpoint(path)
    payload["model_config"] = dict(payload["model_config"], width=16)
    with pytest.raises(SpnRestoreError, match="weights do not fit"):
        load_generator(payload)


def test_only_plain_values_can_be_saved(tmp_path):
    with pytest.raises(TypeError, match="float64"):
        save_checkpoint(tmp_path / "x.pt", {"format": FORMAT, "metric": np.float64(1.0)})
    assert not (tmp_path / "x.pt").exists()
