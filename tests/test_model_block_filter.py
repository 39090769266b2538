"""JPEG-aware block filter: block DCT, texture classes, closed-form fit, nearest-quality weights."""

import numpy as np
import scipy.fft
import torch

from spnrestore.model.block_filter import BlockFilter


def blocks(x: np.ndarray) -> np.ndarray:
    """(B, 1, H, W) -> (B, H/8, W/8, 8, 8)."""
    b, _, h, w = x.shape
    return x.reshape(b, h // 8, 8, w // 8, 8).transpose(0, 1, 3, 2, 4)


def test_block_dct_matches_scipy_and_inverts():
    x = torch.randn(2, 1, 16, 24)
    f = BlockFilter(1)
    c = f.coefficients(x)  # (B, 64, H/8, W/8)
    ref = scipy.fft.dctn(blocks(x.numpy()), axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(c.permute(0, 2, 3, 1).numpy().reshape(ref.shape), ref, atol=1e-5)
    torch.testing.assert_close(torch.nn.functional.conv_transpose2d(c, f.basis, stride=8), x, atol=1e-5, rtol=0)


def test_texture_is_the_ac_energy_of_the_gray_block():
    rgb = torch.rand(1, 3, 8, 16)
    gray = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True) * 255
    c = scipy.fft.dctn(blocks(gray.numpy()), axes=(-2, -1), norm="ortho")
    ac = (c ** 2).sum((-1, -2)) - c[..., 0, 0] ** 2
    np.testing.assert_allclose(BlockFilter(1).texture(rgb).numpy(), np.log1p(np.sqrt(ac)), rtol=1e-4)


def test_unfitted_filter_is_the_identity():
    rgb, x = torch.rand(1, 3, 32, 32), torch.randn(1, 1, 32, 32)
    torch.testing.assert_close(BlockFilter(4)(rgb, x, torch.tensor([30])), x, atol=1e-5, rtol=0)


def _batches(weight_of_class, quality, n=8, seed=0):
    """Targets made by weighting the residual's block DCT per frequency; the weights depend on whether a
    block of the image is flat (class 0) or textured (class 1)."""
    g = torch.Generator().manual_seed(seed)
    f = BlockFilter(2)
    out = []
    for _ in range(3):
        textured = torch.rand(n, 4, 4, generator=g) < 0.5
        noise = (torch.rand(n, 3, 32, 32, generator=g) * 120).to(torch.uint8)
        mask = textured.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, None]
        rgb = torch.where(mask, 68 + noise, torch.full_like(noise, 128))
        residual = torch.randn(n, 1, 32, 32, generator=g)
        w = weight_of_class[textured.long()].permute(0, 3, 1, 2)  # (n, 64, 4, 4)
        target = torch.nn.functional.conv_transpose2d(f.coefficients(residual) * w, f.basis, stride=8)
        out.append({"rgb": rgb, "residual": residual, "target": target, "quality": torch.full((n,), quality)})
    return out


def test_fit_recovers_the_weights_per_texture_class_and_copies_the_nearest_quality():
    weights = torch.rand(2, 64, generator=torch.Generator().manual_seed(1))
    f = BlockFilter(2)
    counts = f.fit(_batches(weights, quality=30), ridge=0.0)
    assert counts == {30: 3 * 8 * 16}
    assert f.fitted.nonzero().flatten().tolist() == [29]
    torch.testing.assert_close(f.weights[29], weights, atol=1e-4, rtol=0)
    torch.testing.assert_close(f.weights[99], f.weights[29])  # quality 100 takes its nearest fitted quality
    batch = _batches(weights, quality=30, seed=5)[0]
    out = f(batch["rgb"].float() / 255, batch["residual"], batch["quality"])
    torch.testing.assert_close(out, batch["target"], atol=1e-4, rtol=0)
