"""Synthetic sensors (spnrestore.dataset.synthetic), the quantisation-aware generator input, the pretraining
loop and the model shipped with the package."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from spnrestore.dataset.synthetic import SensorRanges, dead_leaves, example_seed, random_prnu, synthetic_photo
from spnrestore.errors import ConfigError
from spnrestore.jpeg import IJG_TABLES, ZIGZAG, encode_jpeg
from spnrestore.model.block_filter import ZERO_BANDS, JpegFeatures, dct_matrix
from spnrestore.model.checkpoint import load_checkpoint
from spnrestore.model.inference import load_restorer, restore_residual
from spnrestore.model.networks import Generator, GeneratorConfig
from spnrestore.model.pretrain import pretrain, settings_from
from spnrestore.model.pretrained import pretrained_checkpoint, resolve_checkpoint
from spnrestore.spn import extract_residual, residual_settings


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


# ------------------------------------------------------------------------------------------- the generator
def test_prnu_statistics_follow_the_ranges():
    r = SensorRanges()
    stds, lowpassed = [], 0
    for i in range(40):
        k = random_prnu(example_seed(0, 9, i), 256, 256, r)
        assert k.dtype == np.float32 and abs(float(k.mean())) < 1e-6
        stds.append(float(k.std()))
        # a low-passed PRNU has clearly less energy between neighbours than its own variance
        lowpassed += float(np.mean((k[:, 1:] - k[:, :-1]) ** 2)) < 1.5 * float(k.var())
    assert r.prnu_strength[0] * 0.999 <= min(stds) and max(stds) <= r.prnu_strength[1] * 1.001
    assert 0.3 < lowpassed / 40 < 0.9  # about prnu_blur_probability of them
    lines = random_prnu(example_seed(0, 9, 0), 512, 512, SensorRanges(prnu_lines=(0.5, 0.5), prnu_blur_probability=0))
    row_means = lines.mean(axis=1)
    assert row_means.std() > 5 * lines.std() / np.sqrt(512)  # rows share an offset: far above chance


def test_scenes_are_procedural_and_varied():
    scenes = [dead_leaves(example_seed(1, 0, i), 128, 128) for i in range(6)]
    assert all(s.shape == (128, 128, 3) and s.dtype == np.float32 and s.min() >= 0 for s in scenes)
    assert len({round(float(s.mean()), 4) for s in scenes}) == 6  # every scene differs


def test_photo_is_deterministic_per_example_and_on_the_jpeg_grid():
    a = synthetic_photo(example_seed(3, 0, 5), 192, 30)
    b = synthetic_photo(example_seed(3, 0, 5), 192, 30)
    c = synthetic_photo(example_seed(3, 0, 6), 192, 30)
    assert a[0].shape == (192, 192, 3) and a[0].dtype == np.uint8 and a[1].shape == (192, 192)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.array_equal(a[0], c[0])
    with pytest.raises(ValueError, match="quality 0"):
        synthetic_photo(example_seed(3, 0, 5), 192, 0)
    with pytest.raises(ValueError, match="multiple of 8"):
        synthetic_photo(example_seed(3, 0, 5), 190, 30)


def test_target_is_exactly_the_prnu_term():
    """Without PRNU the target vanishes; with it, the target is what the residual of the photo correlates with,
    and not the term of another sensor."""
    plain = SensorRanges(camera_jpeg_probability=0, denoise_probability=0, sharpen_probability=0,
                         resample_probability=0, prnu_strength=(0.02, 0.02))
    none = SensorRanges(prnu_strength=(1e-12, 1e-12))
    _, target, _ = synthetic_photo(example_seed(4, 0, 0), 256, 95, none)
    assert float(np.abs(target).max()) < 1e-3
    own, other = [], []
    for i in range(6):
        pixels, target, _ = synthetic_photo(example_seed(4, 0, i), 256, 100, plain)
        _, another, _ = synthetic_photo(example_seed(4, 1, i), 256, 100, plain)
        w = extract_residual(pixels)
        own.append(ncc(w, target))
        other.append(ncc(w, another))
    assert min(own) > 0.05 and max(np.abs(other)) < 0.03, (own, other)


# ------------------------------------------------------------------------------------------- JPEG features
def test_jpeg_features_find_the_coefficients_the_jpeg_zeroed():
    """The zeroed share per band, recomputed from the decoded pixels, agrees with the quantisation of the
    encoder's own DCT of the same blocks (libjpeg's), and falls with the quality."""
    rng = np.random.default_rng(0)
    gray = cv2.GaussianBlur(rng.normal(128, 40, (256, 256)).astype(np.float32), (0, 0), 1.2)
    rgb = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)  # gray: luma = pixels
    features = JpegFeatures()
    d = dct_matrix().numpy().astype(np.float64)
    shares = {}
    for q in (30, 60, 90):
        decoded = cv2.imdecode(np.frombuffer(encode_jpeg(rgb, q, "444"), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        x = torch.from_numpy(decoded.copy()).permute(2, 0, 1)[None].float() / 255
        found = features(x, torch.tensor([q]))[0, :, ::8, ::8].numpy()  # (4, 32, 32), in -1..1
        blocks = rgb[..., 0].astype(np.float64).reshape(32, 8, 32, 8).transpose(0, 2, 1, 3) - 128
        coef = np.einsum("ui,abij,vj->abuv", d, blocks, d).reshape(32, 32, 64)
        zeroed = np.abs(np.rint(coef / IJG_TABLES[q - 1])) == 0
        truth = np.stack([zeroed[:, :, ZIGZAG[lo:hi]].mean(-1) for lo, hi in ZERO_BANDS]) * 2 - 1
        assert np.abs(found - truth).mean() < 0.05, q
        shares[q] = float(found.mean())
    assert shares[30] > shares[60] > shares[90]


def test_quantisation_aware_generator_starts_as_its_filter_and_loads_old_configs():
    config = GeneratorConfig.tiny()
    assert config.jpeg_features is False  # older checkpoints, which lack the key, keep their input
    model = Generator(GeneratorConfig(**{**config.as_dict(), "jpeg_features": True})).eval()
    rgb, r = torch.rand(2, 3, 64, 64), torch.randn(2, 1, 64, 64)
    q = torch.tensor([30, 90])
    out = model(rgb, r, q)
    assert out.shape == (2, 1, 64, 64)
    assert torch.allclose(out, model.prefilter(rgb, r, q) / model.residual_scale)  # untrained: the identity
    assert model.stem.in_channels == 4 + JpegFeatures.channels


# ------------------------------------------------------------------------------------------- pretraining
def test_settings_are_checked():
    with pytest.raises(ConfigError, match="unknown key"):
        settings_from({"stepz": 3}, name="p.yaml")
    with pytest.raises(ConfigError, match="ranges"):
        settings_from({"ranges": {"iso_max": 3}}, name="p.yaml")
    with pytest.raises(ConfigError, match="variants.bad name"):
        settings_from({"variants": {"bad name": {"model": {}}}}, name="p.yaml")
    s = settings_from({"qualities": [30, 90], "ranges": {"iso": [100, 200]}})
    assert s.qualities == (30, 90) and s.ranges.iso == (100, 200)


def test_pretrain_writes_a_loadable_restorer(tmp_path):
    s = settings_from({"patch": 64, "margin": 32, "steps": 3, "batch_size": 4, "filter_examples": 48,
                       "val_examples": 12, "val_every": 3, "workers": 0, "warmup_steps": 1,
                       "variants": {"tiny": {"model": {**GeneratorConfig.tiny().as_dict(), "jpeg_features": True}}}})
    summary = pretrain(tmp_path, s, device="cpu", log=lambda line: None)["tiny"]
    assert summary["steps_done"] == 3 and summary["examples_seen"] == 12
    payload = load_checkpoint(tmp_path / "tiny.pt")
    assert payload["residual"] == residual_settings(5.0) and payload["pretrain"]["variant"] == "tiny"
    assert [row["step"] for row in payload["history"]] == [3]
    restorer = load_restorer(tmp_path / "tiny.pt", "cpu", residual=residual_settings(5.0))
    assert restorer.model.config.jpeg_features


# ------------------------------------------------------------------------------------------- the shipped model
def test_shipped_model_loads_with_weights_only_and_restores():
    path = pretrained_checkpoint()
    assert path.is_file() and path.stat().st_size < 4_000_000
    assert resolve_checkpoint("pretrained") == str(path) and resolve_checkpoint("none") is None
    payload = load_checkpoint(path)  # weights_only=True
    assert payload["pretrain"]["variant"] and payload["metrics"]["steps_done"] > 0
    assert payload["residual"] == residual_settings(5.0)
    restorer = load_restorer(path, "cpu", residual=residual_settings(5.0))
    assert restorer.model.config.jpeg_features and restorer.model.block_filter is not None
    pixels, target, _ = synthetic_photo(example_seed(7, 5, 0), 256, 30)
    w = extract_residual(pixels)
    restored = restore_residual(restorer, pixels, w, 30)
    assert restored.shape == w.shape and restored.dtype == np.float32 and np.isfinite(restored).all()
    assert not np.allclose(restored, w)  # it learned something: not the identity
