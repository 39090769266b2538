"""Generator, discriminator and losses: shapes, identity start, sizes."""

import pytest
import torch

from spnrestore.errors import ConfigError
from spnrestore.model.losses import GeneratorLoss, HighFrequencyLoss, LossWeights, correlation_loss, haar_details, ncc
from spnrestore.model.networks import Discriminator, Generator, GeneratorConfig, count_parameters


def inputs(b=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, size, size, generator=g), 3 * torch.randn(b, 1, size, size, generator=g), torch.tensor([30, 60][:b])


def test_untrained_generator_is_the_identity_map():
    model = Generator(GeneratorConfig.tiny())
    model.residual_scale.fill_(3.0)
    rgb, residual, q = inputs()
    torch.testing.assert_close(model(rgb, residual, q), residual / 3.0, rtol=0, atol=1e-5)  # block DCT round trip
    plain = Generator(GeneratorConfig(**{**GeneratorConfig.tiny().as_dict(), "filter_bins": 0}))
    plain.residual_scale.fill_(3.0)
    assert torch.equal(plain(rgb, residual, q), residual / 3.0)


def test_default_size_and_tiny_size():
    assert 7e6 < count_parameters(Generator()) < 9e6
    assert count_parameters(Generator(GeneratorConfig.tiny())) < 100_000
    assert GeneratorConfig().factor == 32 and GeneratorConfig.tiny().factor == 8


def test_quality_changes_the_output_once_trained_weights_are_nonzero():
    torch.manual_seed(0)
    model = Generator(GeneratorConfig.tiny())
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    rgb, residual, _ = inputs(b=1)
    a = model(rgb, residual, torch.tensor([30]))
    b = model(rgb, residual, torch.tensor([90]))
    assert a.shape == (1, 1, 64, 64) and not torch.allclose(a, b)


def test_sizes_not_multiple_of_factor_are_rejected():
    model = Generator(GeneratorConfig.tiny())
    rgb, residual, q = inputs(size=60)
    with pytest.raises(ValueError, match="multiple of 8"):
        model(rgb, residual, q)


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown key"):
        GeneratorConfig.from_dict({"widht": 8})
    with pytest.raises(ConfigError, match="model.width = -1 .*integer >= 1"):
        GeneratorConfig.from_dict({"width": -1})


def test_discriminator_is_a_patch_critic():
    rgb, residual, q = inputs(size=64)
    logits = Discriminator(width=16)(rgb, residual, residual, q)
    assert logits.shape == (2, 1, 8, 8)


def test_losses_behave():
    x = torch.randn(3, 1, 32, 32)
    assert torch.allclose(ncc(x, 2 * x + 1), torch.ones(3), atol=1e-6)
    assert correlation_loss(x, x).abs() < 1e-6
    assert len(haar_details(x, 2)) == 2 and haar_details(x, 2)[1].shape == (3, 3, 8, 8)
    loss = GeneratorLoss(LossWeights(), HighFrequencyLoss(None))
    same = loss(x, x, torch.ones(3, 1, 4, 4))
    other = loss(x, torch.randn(3, 1, 32, 32), torch.zeros(3, 1, 4, 4))
    assert same["corr"] < 1e-6 and same["lf"] == 0 and same["hf"] == 0 and same["adv"] == 0
    assert other["total"] > same["total"]
    assert set(loss(x, x)) == {"corr", "lf", "hf", "total"}  # no critic logits: no adversarial term
