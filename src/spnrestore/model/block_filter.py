"""JPEG-aware block filter: the restorer's first stage, fitted in closed form before the GAN is trained.

JPEG quantises each 8 x 8 block's DCT coefficients; how much sensor noise
survives at a frequency depends on the quality and on the block's content (a
flat block keeps little more than its DC term, a textured one keeps many AC
terms). The filter multiplies each block-DCT coefficient of the plain
residual by a weight chosen by (JPEG quality, texture class of the block,
frequency), the least-squares (Wiener) weight ``sum(r * t) / sum(r * r)``
between residual ``r`` and training target ``t`` over the training patches.
The texture class is the decile (``bins`` classes) of ``log1p(sqrt(AC energy))`` of
the block's gray intensity, with class edges per quality. The GAN then learns
a correction on top of the filtered residual.

Blocks follow the JPEG grid: inputs must start on it (patches and whole
images do) and have sides that are multiples of 8. Weights exist for every
quality 1..100: a quality absent from training takes the weights of the
nearest trained one. With unfitted buffers (weights 1) the filter is the identity.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..jpeg import IJG_TABLES, ZIGZAG

BLOCK = 8
GRAY = (0.299, 0.587, 0.114)


def dct_matrix(n: int = BLOCK) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n, n), float32: ``coefficients = D @ block @ D.T``."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    x = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.float()


def dct_basis() -> torch.Tensor:
    """The 64 basis images of the 8 x 8 DCT as convolution weights (64, 1, 8, 8), frequency ``8 * u + v``: a
    stride-8 ``conv2d`` with them is the block DCT, ``conv_transpose2d`` its inverse."""
    d = dct_matrix()
    return (d[:, None, :, None] * d[None, :, None, :]).reshape(BLOCK * BLOCK, 1, BLOCK, BLOCK)  # (u, v, y, x)


class BlockFilter(nn.Module):
    """Per-(quality, texture class, frequency) weighting of the block-DCT of a residual.

    Buffers (saved with the model): ``weights`` float32 (100, bins, 64), row
    ``q - 1`` for JPEG quality q, frequency ``8 * u + v`` last; ``edges`` float32
    (100, bins - 1), increasing texture-class edges per quality; ``fitted`` bool
    (100,), the qualities the weights were fitted on (others copy the nearest
    fitted quality). The block DCT is a stride-8 convolution with the 64 DCT basis
    images (``basis``), its inverse the transposed convolution.
    """

    def __init__(self, bins: int):
        super().__init__()
        self.bins = bins
        self.register_buffer("basis", dct_basis())
        self.register_buffer("weights", torch.ones(100, bins, BLOCK * BLOCK))
        self.register_buffer("edges", torch.zeros(100, max(bins - 1, 0)))
        self.register_buffer("fitted", torch.zeros(100, dtype=torch.bool))

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """Block-DCT (B, 64, H/8, W/8) of (B, 1, H, W) (H, W multiples of 8)."""
        if x.shape[-2] % BLOCK or x.shape[-1] % BLOCK:
            raise ValueError(f"input {tuple(x.shape[-2:])} is not a multiple of {BLOCK}; pad it first")
        return F.conv2d(x.float(), self.basis, stride=BLOCK)

    def texture(self, rgb: torch.Tensor) -> torch.Tensor:
        """``log1p(sqrt(AC energy))`` of each 8 x 8 block of the gray intensity in 0..255 units (AC energy: sum of
        squared AC coefficients = 64 x the block's variance), (B, H/8, W/8); ``rgb`` float (B, 3, H, W) in 0..1."""
        weights = torch.tensor(GRAY, device=rgb.device, dtype=torch.float32).view(1, 3, 1, 1)
        gray = (rgb.float() * weights).sum(1, keepdim=True) * 255.0
        mean, mean_sq = F.avg_pool2d(gray, BLOCK), F.avg_pool2d(gray * gray, BLOCK)
        return torch.log1p((BLOCK * BLOCK * (mean_sq - mean * mean)).clamp_min(0).sqrt())[:, 0]

    def classes(self, rgb: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """Texture class 0..bins-1 of each block (B, H/8, W/8), int64, with the edges of each example's quality."""
        t = self.texture(rgb)
        edges = self.edges[quality.long() - 1]  # (B, bins - 1)
        return (t[..., None] > edges[:, None, None, :]).sum(-1)

    def forward(self, rgb: torch.Tensor, residual: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """Filtered residual (B, 1, H, W) float32 of ``residual`` (B, 1, H, W); ``quality`` (B,) 1..100."""
        c = self.coefficients(residual)
        q = (quality.long() - 1).view(-1, 1, 1)
        w = self.weights[q, self.classes(rgb, quality)].permute(0, 3, 1, 2)  # (B, 64, H/8, W/8)
        return F.conv_transpose2d(c * w, self.basis, stride=BLOCK)

    @torch.no_grad()
    def fit(self, batches, ridge: float = 1.0, max_edge_blocks: int = 2_000_000) -> dict[int, int]:
        """Fit edges and weights from training batches; returns the number of blocks per fitted quality.

        ``batches``: a re-iterable of dicts with ``rgb`` uint8 (B, 3, P, P), ``residual`` and ``target``
        float32 (B, 1, P, P), ``quality`` (B,); iterated twice (edges from up to ``max_edge_blocks``
        blocks per quality, then the least-squares sums over all blocks). ``ridge``: added to each
        denominator as a multiple of its quality's mean cell denominator, so the weights of rare
        (class, frequency) cells shrink towards 0 (1.0 was best on the demo drive's validation split).
        """
        textures: dict[int, list[torch.Tensor]] = {}
        for batch in batches:
            rgb, quality = batch["rgb"].float() / 255.0, batch["quality"].long()
            t = self.texture(rgb)
            for q in quality.unique().tolist():
                kept = sum(len(x) for x in textures.get(q, []))
                if kept < max_edge_blocks:
                    textures.setdefault(q, []).append(t[quality == q].flatten()[: max_edge_blocks - kept])
        if not textures:
            raise ValueError("no training examples to fit the block filter on")
        levels = torch.linspace(0, 1, self.bins + 1, dtype=torch.float64)[1:-1]
        for q, parts in textures.items():
            self.edges[q - 1] = torch.quantile(torch.cat(parts).double(), levels).float()
        num = torch.zeros(100, self.bins, BLOCK * BLOCK, dtype=torch.float64)
        den = torch.zeros_like(num)
        counts = torch.zeros(100, dtype=torch.int64)
        for batch in batches:
            rgb, quality = batch["rgb"].float() / 255.0, batch["quality"].long()
            r, t = self.coefficients(batch["residual"]), self.coefficients(batch["target"])
            cls = self.classes(rgb, quality)
            index = ((quality - 1).view(-1, 1, 1) * self.bins + cls).flatten()
            for sums, product in ((num, r * t), (den, r * r)):
                sums.view(-1, BLOCK * BLOCK).index_add_(0, index, product.permute(0, 2, 3, 1).reshape(-1, BLOCK * BLOCK).double())
            counts.index_add_(0, quality - 1, torch.full_like(quality, cls[0].numel()))
        fitted = counts > 0
        scale = den.sum((1, 2), keepdim=True) / (self.bins * BLOCK * BLOCK)
        weights = num / (den + ridge * scale).clamp_min(1e-30)
        trained = torch.nonzero(fitted).flatten()
        nearest = trained[(torch.arange(100)[:, None] - trained[None, :]).abs().argmin(1)]
        self.weights.copy_(weights[nearest].float())
        self.edges.copy_(self.edges[nearest])
        self.fitted.copy_(fitted)
        return {int(q) + 1: int(counts[q]) for q in trained}



ZERO_BANDS = ((1, 6), (6, 15), (15, 36), (36, 64))
"""Zig-zag ranges of the AC frequencies whose quantised-to-zero share :class:`JpegFeatures` reports."""


class JpegFeatures(nn.Module):
    """Where the JPEG kept the noise: per 8 x 8 block of the luma, the share of AC coefficients quantised to
    zero in each of the :data:`ZERO_BANDS` (low to high frequencies), for the IJG luminance table of the
    block's JPEG quality; (B, 4, H, W), constant over each block, in -1..1 (1: every coefficient zeroed).

    The coefficients are recomputed from the decoded pixels (the JPEG's own level shift, colour transform and
    orthonormal DCT): a coefficient counts as zeroed when it lies within half a quantisation step of 0, which
    the decoder's rounding moves by well under one step. ``log_steps(quality)`` (B, 64): log2 of the table
    over 8, the quality conditioning of a quantisation-aware generator.
    """

    channels = len(ZERO_BANDS)

    def __init__(self):
        super().__init__()
        self.register_buffer("basis", dct_basis())
        self.register_buffer("tables", torch.from_numpy(IJG_TABLES.astype(np.float32)), persistent=False)
        band = np.full(BLOCK * BLOCK, -1)
        for i, (lo, hi) in enumerate(ZERO_BANDS):
            band[ZIGZAG[lo:hi]] = i
        members = torch.zeros(len(ZERO_BANDS), BLOCK * BLOCK)
        for i in range(len(ZERO_BANDS)):
            members[i, torch.from_numpy(band == i)] = 1.0 / float((band == i).sum())
        self.register_buffer("members", members, persistent=False)

    def log_steps(self, quality: torch.Tensor) -> torch.Tensor:
        return torch.log2(self.tables[quality.long().clamp(1, 100) - 1] / 8.0)

    def forward(self, rgb: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        with torch.autocast(rgb.device.type, enabled=False):
            weights = torch.tensor(GRAY, device=rgb.device).view(1, 3, 1, 1)  # JPEG's luma
            luma = (rgb.float() * weights).sum(1, keepdim=True) * 255.0 - 128.0
            c = F.conv2d(luma, self.basis, stride=BLOCK)  # (B, 64, H/8, W/8)
            steps = self.tables[quality.long().clamp(1, 100) - 1][:, :, None, None]
            zeroed = (c.abs() < steps / 2).float()
            share = torch.einsum("bkhw,nk->bnhw", zeroed, self.members)
            return (share * 2 - 1).repeat_interleave(BLOCK, -2).repeat_interleave(BLOCK, -1)
