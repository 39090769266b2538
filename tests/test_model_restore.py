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


def _ncc(a, b):
    a, b = a.astype(np.float64).ravel() - a.mean(), b.astype(np.float64).ravel() - b.mean()
    return a @ b / np.sqrt((a @ a) * (b @ b))


@pytest.mark.parametrize("tile", [64, 1024])
def test_openvino_tiles_give_torch_output(tmp_path, tile):
    pytest.importorskip("openvino")
    model = trained_like(GeneratorConfig.tiny())
    path = tmp_path / "m.pt"
    save_checkpoint(path, model_payload(model))
    rgb, residual = image(200, 260)
    fast, slow = load_restorer(path, "cpu"), load_restorer(path, "cpu", runtime="torch")
    assert (fast.runtime, slow.runtime) == ("openvino", "torch")
    a = restore_residual(fast, rgb, residual, 30, tile=tile, overlap=32)
    b = restore_residual(slow, rgb, residual, 30, tile=tile, overlap=32)
    assert np.abs(b - residual).std() > 0.1  # the model really changes the residual
    assert _ncc(a, b) > 0.999999
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4 * np.abs(b).max())


def test_openvino_compiles_a_full_tile_for_its_shape_and_keeps_the_output(monkeypatch):
    pytest.importorskip("openvino")
    from spnrestore.model import cpu_runtime

    monkeypatch.setattr(cpu_runtime, "STATIC_PIXELS", 64 * 64)  # the 64 px tiles count as full ones
    model = trained_like(GeneratorConfig.tiny())
    rgb, residual = image(150, 230)
    runner = cpu_runtime.compile_tiles(model, 1)
    a = restore_residual(Restorer(model, torch.device("cpu")), rgb, residual, 30, tile=64, overlap=16)
    from spnrestore.model.whole_image import restore_image

    b = restore_image(model, torch.device("cpu"), rgb, residual, 30, 64, 16, 2, runner)
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-4 * np.abs(a).max())


def test_runtime_choice_and_its_errors(monkeypatch):
    from spnrestore.errors import ConfigError
    from spnrestore.model import inference

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert inference.pick_runtime("torch", cpu) == "torch"
    assert inference.pick_runtime("auto", cuda) == inference.pick_runtime("openvino", cuda) == "torch"
    with pytest.raises(ConfigError, match="runtime = 'onnx'"):
        inference.pick_runtime("onnx", cpu)
    monkeypatch.setattr(inference, "openvino_available", lambda: False)
    assert inference.pick_runtime(None, cpu) == "torch"
    with pytest.raises(ConfigError, match="pip install openvino"):
        inference.pick_runtime("openvino", cpu)


def test_tiles_are_fewest_even_on_the_grid_and_overlap_enough():
    from spnrestore.model.whole_image import _tiles

    for tile, overlap, f in ((64, 32, 8), (512, 32, 8), (1024, 32, 16), (1024, 0, 8)):
        for length in range(f, 2400, f):  # the padded side: a multiple of the model's factor
            size, starts = _tiles(length, tile, overlap, f)
            assert size <= tile and size % f == 0 and all(s % f == 0 for s in starts)
            assert starts[0] == 0 and starts[-1] + size == length
            assert all(b > a and a + size - b >= overlap for a, b in zip(starts, starts[1:]))
            assert len(starts) == (1 if length <= tile else -(-(length - overlap) // (tile - overlap)))
    assert _tiles(1536, 1024, 32, 8) == (784, [0, 752])  # 2 tiles of 784 px, not 1024 px twice


def test_a_converted_model_is_cached_by_checkpoint_and_read_back(tmp_path, monkeypatch):
    ov = pytest.importorskip("openvino")
    from spnrestore.model import cpu_runtime

    monkeypatch.setenv("SPNRESTORE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "m.pt"
    save_checkpoint(path, model_payload(trained_like(GeneratorConfig.tiny())))
    rgb, residual = image(120, 140)
    first = restore_residual(load_restorer(path, "cpu"), rgb, residual, 30)
    cached = sorted(p.name for p in (tmp_path / "cache" / "openvino").iterdir())
    assert len(cached) == 2 and cached[0].endswith(".bin") and cached[1].endswith(".xml")

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again although cached")

    monkeypatch.setattr(ov, "convert_model", no_conversion)
    np.testing.assert_array_equal(restore_residual(load_restorer(path, "cpu"), rgb, residual, 30), first)
    other = tmp_path / "other.pt"  # another checkpoint is another conversion
    save_checkpoint(other, model_payload(trained_like(GeneratorConfig.tiny(), seed=1)))
    with pytest.raises(AssertionError, match="converted again"):
        restore_residual(load_restorer(other, "cpu"), rgb, residual, 30)
    assert cpu_runtime.cache_dir() == tmp_path / "cache" / "openvino"
