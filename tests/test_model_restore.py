"""Whole-image restoration: shapes, identity, tiling equal to a single pass, loading once (on CPU: exact
float32 comparisons; on CUDA the network body runs in bf16)."""

import hashlib

import numpy as np
import pytest
import torch

from spnrestore.errors import SpnRestoreError
from spnrestore.model.checkpoint import model_payload, save_checkpoint
from spnrestore.model.networks import Generator, GeneratorConfig
from spnrestore.spn import residual_settings
from spnrestore.model.inference import Restorer, checkpoint_summary, load_restorer, restore_residual

SHALLOW = GeneratorConfig(width=8, max_width=8, depth=1, blocks=1, hourglass=0, q_embed=8)  # receptive field < 8 px
torch.set_num_threads(1)  # tiny tensors: extra threads only add contention


def image(h=150, w=230, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8), rng.normal(0, 3, (h, w)).astype(np.float32)


def trained_like(config, seed=0):
    """A generator with non-zero weights everywhere (an untrained one is the identity map)."""
    torch.manual_seed(seed)
    model = Generator(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1)
    model.residual_scale.fill_(3.0)
    return model.eval()


def test_identity_model_returns_the_residual():
    rgb, residual = image()
    out = restore_residual(Generator(GeneratorConfig.tiny()), rgb, residual, 30, "cpu", tile=64, overlap=16)
    assert out.dtype == np.float32 and out.shape == residual.shape
    np.testing.assert_allclose(out, residual, rtol=0, atol=2e-5)


def test_tiled_equals_single_pass_exactly_when_the_receptive_field_fits_the_margin():
    rgb, residual = image()
    model = trained_like(SHALLOW)
    whole = restore_residual(model, rgb, residual, 30, "cpu", tile=1024)
    tiled = restore_residual(model, rgb, residual, 30, "cpu", tile=64, overlap=32, batch=3)
    assert tiled.shape == whole.shape == (150, 230)
    assert np.abs(whole - residual).std() > 0.1  # the model really changes the residual
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=1e-5)


def test_tiled_stays_close_to_single_pass_for_a_deeper_model():
    rgb, residual = image()
    torch.manual_seed(0)
    model = Generator(GeneratorConfig.tiny()).eval()
    with torch.no_grad():
        model.head.weight.normal_(0, 0.1)
    whole = restore_residual(model, rgb, residual, 30, "cpu", tile=1024)
    change = np.abs(whole - residual).std()
    assert change > 0.05
    for tile, overlap in ((64, 32), (128, 64)):
        tiled = restore_residual(model, rgb, residual, 30, "cpu", tile=tile, overlap=overlap)
        assert np.abs(tiled - whole).max() < 0.01 * change


def test_single_pass_matches_the_network_on_padded_input():
    rgb, residual = image(h=64, w=96)
    model = trained_like(GeneratorConfig.tiny())
    with torch.no_grad():
        direct = model(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255,
                       torch.from_numpy(residual)[None, None], torch.tensor([60]))[0, 0] * 3.0
    np.testing.assert_allclose(restore_residual(model, rgb, residual, 60, "cpu"), direct.numpy(), rtol=1e-5, atol=1e-5)


def test_load_once_restore_many(tmp_path):
    model = trained_like(GeneratorConfig.tiny())
    path = tmp_path / "m.pt"
    save_checkpoint(path, model_payload(model, hf_loss="haar"))
    restorer = load_restorer(path, "cpu")
    assert isinstance(restorer, Restorer) and restorer.metadata["hf_loss"] == "haar"
    for seed, size in ((1, (40, 50)), (2, (200, 130))):
        rgb, residual = image(*size, seed=seed)
        np.testing.assert_array_equal(restore_residual(restorer, rgb, residual, 30),
                                      restore_residual(path, rgb, residual, 30, "cpu"))


def test_bad_inputs_are_clear_errors():
    rgb, residual = image()
    model = Generator(GeneratorConfig.tiny())
    with pytest.raises(SpnRestoreError, match="must match"):
        restore_residual(model, rgb, residual[:-1], 30)
    with pytest.raises(SpnRestoreError, match="uint8"):
        restore_residual(model, rgb.astype(np.float32), residual, 30)
    with pytest.raises(SpnRestoreError, match="quality"):
        restore_residual(model, rgb, residual, 0)
    with pytest.raises(SpnRestoreError, match="smaller than tile"):
        restore_residual(model, rgb, residual, 30, tile=64, overlap=64)


def test_a_model_trained_on_other_residual_settings_is_refused(tmp_path):
    path = tmp_path / "m.pt"
    metrics = {"selected_step": 40, "steps_done": 60, "stopped_by": "time_budget"}
    save_checkpoint(path, model_payload(Generator(GeneratorConfig.tiny()), residual=residual_settings(5.0),
                                        train_config={"pce_threshold": 60.0}, metrics=metrics))
    with pytest.raises(SpnRestoreError, match=r"m\.pt: the model was trained on residuals made with other settings "
                                              r"\(sigma: 5\.0 \(recorded\) vs 3\.0 \(now\)\).*--sigma"):
        load_restorer(path, "cpu", residual=residual_settings(3.0))
    restorer = load_restorer(path, "cpu", residual=residual_settings(5))
    assert checkpoint_summary(restorer) == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), **metrics,
                                            "residual": residual_settings(5.0), "pce_threshold": 60.0}
    assert checkpoint_summary(restorer.metadata)["sha256"] is None


def test_a_checkpoint_without_the_record_loads_and_says_so(tmp_path):
    path = tmp_path / "old.pt"
    save_checkpoint(path, model_payload(Generator(GeneratorConfig.tiny())))
    restorer = load_restorer(path, "cpu", residual=residual_settings(3.0))
    assert "residual" not in restorer.metadata and checkpoint_summary(restorer)["residual"] is None
