"""bench/published_extractor.py: the published extractor's network from a weights file of its layout, both
runtimes, its registration as a method, and a clean skip without the file (never downloaded)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
torch = pytest.importorskip("torch")
import published_extractor as pe  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A weights file in the published layout (``dncnn.<index>``: conv with bias, then convs without), random
    small weights as the repository's file would hold trained ones."""
    gen = torch.Generator().manual_seed(0)
    state = {"dncnn.0.weight": torch.randn(pe.FEATURES, 1, 3, 3, generator=gen) * 0.3,
             "dncnn.0.bias": torch.randn(pe.FEATURES, generator=gen) * 0.01}
    for i in range(1, pe.LAYERS - 1):
        state[f"dncnn.{2 * i}.weight"] = torch.randn(pe.FEATURES, pe.FEATURES, 3, 3, generator=gen) * 0.05
    state[f"dncnn.{2 * (pe.LAYERS - 1)}.weight"] = torch.randn(1, pe.FEATURES, 3, 3, generator=gen) * 0.05
    path = tmp_path_factory.mktemp("zeng") / "DnCNN_SPN_Rho.pth"
    torch.save(state, path)
    return path


def test_the_published_layout_loads_strictly_and_a_foreign_one_is_refused(weights):
    state = torch.load(weights, weights_only=True)
    net = pe.spn_cnn(state)
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == pe.LAYERS and convs[0].bias is not None and all(c.bias is None for c in convs[1:])
    with pytest.raises(RuntimeError):
        pe.spn_cnn({k.replace("dncnn.0.", "head."): v for k, v in state.items()})


def test_the_extractor_reads_gray_in_unit_range_and_both_runtimes_agree(weights):
    rgb = np.random.default_rng(1).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    by_torch = pe.Extractor(weights, "torch").residual(rgb)
    x = torch.from_numpy(pe.rgb2gray(rgb)[None, None] / np.float32(255))
    with torch.no_grad():
        expected = pe.spn_cnn(torch.load(weights, weights_only=True))(x).numpy()[0, 0]
    np.testing.assert_allclose(by_torch, expected, rtol=1e-5, atol=1e-6)
    pytest.importorskip("openvino")
    by_openvino = pe.Extractor(weights, "openvino")
    assert by_openvino.runtime == "openvino"
    out = by_openvino.residual(rgb)
    assert out.shape == (96, 128)
    assert np.corrcoef(out.ravel(), by_torch.ravel())[0, 1] > 0.99999


def test_as_a_method_its_output_is_in_the_plain_residual_s_units(weights, monkeypatch):
    from spnrestore.methods import MethodContext, compute_residual
    from spnrestore.methods import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # the bench's method stays in this test

    method = pe.register_extractor(pe.Extractor(weights, "torch"))
    assert pe.register_extractor(pe.Extractor(weights, "torch")) is method  # registered once
    rgb = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    plain = np.random.default_rng(3).normal(0, 2.0, (64, 64)).astype(np.float32)
    out = compute_residual(method, rgb, plain, 30, MethodContext(5.0))
    assert out.shape == plain.shape and out.std() == pytest.approx(plain.std(), rel=1e-3)


def test_without_the_weights_file_it_says_so_and_exits_0(tmp_path, capsys):
    assert pe.main([str(tmp_path), "--weights", str(tmp_path / "absent.pth")]) == 0
    said = capsys.readouterr().out
    assert "skipped" in said and "absent.pth" in said and "--weights" in said
