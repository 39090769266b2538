"""Generator (U-Net with hourglass blocks at its deepest level, conditioned on JPEG quality)
and patch discriminator. Design choices and their reasons: docs/model.md.

Tensor conventions: images are (B, C, H, W). ``rgb`` is float in 0..1, the
residual is in its own units (0..255 intensity scale, std ~1..5), ``quality``
is the JPEG quality 1..100 of each example (B,). The generator's output is in
*normalised* units: the input residual divided by ``residual_scale`` plus a
learned correction, so that the untrained network is the identity map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .block_filter import BLOCK, BlockFilter, JpegFeatures
from .train_config import defaults, resolve_section

SLOPE = 0.2


_MODEL, _CRITIC = defaults("model"), defaults("discriminator")  # the defaults of training_schema.yaml


@dataclass(frozen=True)
class GeneratorConfig:
    """Size of the generator (the ``model`` section of ``training_schema.yaml``: defaults and bounds).

    ``width``: channels at full resolution; they double per U-Net level up to
    ``max_width``. ``depth``: stride-2 downsamplings of the U-Net. ``blocks``:
    residual blocks per level (encoder and decoder each). ``hourglass``:
    stacked hourglass blocks at the deepest level; ``hourglass_depth``:
    further halvings inside each. ``q_embed``: size of the quality embedding.
    ``filter_bins``: texture classes of the JPEG-aware block filter applied to
    the residual before the U-Net (:mod:`.block_filter`; 0: no filter). ``jpeg_features``: the U-Net also
    sees where the JPEG zeroed its coefficients (:class:`.block_filter.JpegFeatures`, 4 input planes) and is
    conditioned on the quantisation table of the quality (64 log steps) rather than the quality number alone.
    The default has about 7.8 M parameters; ``tiny()`` about 47 k.
    """

    width: int = _MODEL["width"]
    max_width: int = _MODEL["max_width"]
    depth: int = _MODEL["depth"]
    blocks: int = _MODEL["blocks"]
    hourglass: int = _MODEL["hourglass"]
    hourglass_depth: int = _MODEL["hourglass_depth"]
    q_embed: int = _MODEL["q_embed"]
    filter_bins: int = _MODEL["filter_bins"]
    jpeg_features: bool = _MODEL["jpeg_features"]

    @classmethod
    def from_dict(cls, cfg: Mapping | None, key: str | None = None) -> "GeneratorConfig":
        """Build from a mapping (missing keys take defaults), validated by the schema: unknown keys or bad
        values are a ConfigError naming ``key`` (default: the training config's ``model``)."""
        return cls(**resolve_section("model", cfg, key))

    @classmethod
    def tiny(cls) -> "GeneratorConfig":
        """A few-ten-thousand-parameter model for tests and CPU demos."""
        return cls(width=8, max_width=16, depth=2, blocks=1, hourglass=1, hourglass_depth=1, q_embed=16)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def factor(self) -> int:
        """Input height and width must be multiples of this (total downsampling; 8, the JPEG block, at least
        with the block filter)."""
        factor = 2 ** (self.depth + (self.hourglass_depth if self.hourglass else 0))
        return max(factor, BLOCK) if self.filter_bins else factor


def _conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class QualityEmbedding(nn.Module):
    """Quality 1..100 (B,) -> embedding (B, dim) by a small MLP on q / 100 and ``extra`` further inputs per
    example (the 64 log quantisation steps of the quality's table for a quantisation-aware generator)."""

    def __init__(self, dim: int, extra: int = 0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1 + extra, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU())

    def forward(self, quality: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        x = quality.float()[:, None] / 100.0
        return self.net(x if extra is None else torch.cat([x, extra], dim=1))


class ResBlock(nn.Module):
    """``x + conv(lrelu(FiLM_q(conv(x))))``; FiLM = per-channel (1 + gamma) * h + beta from the quality embedding.

    The FiLM projection starts at zero, so every block starts unconditioned.
    """

    def __init__(self, channels: int, embed: int):
        super().__init__()
        self.conv1, self.conv2 = _conv(channels, channels), _conv(channels, channels)
        self.film = nn.Linear(embed, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.film(e)[:, :, None, None].chunk(2, dim=1)
        h = self.conv1(x) * (1 + gamma) + beta
        return x + self.conv2(F.leaky_relu(h, SLOPE))


class Stage(nn.Module):
    """``n`` residual blocks sharing one quality embedding."""

    def __init__(self, channels: int, embed: int, n: int):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(channels, embed) for _ in range(n))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, e)
        return x


class Hourglass(nn.Module):
    """Recursive hourglass: a same-scale residual branch plus a branch that goes down ``depth`` halvings
    and back up; the two are summed, so deep features are added to (never replace) the input's."""

    def __init__(self, channels: int, embed: int, depth: int):
        super().__init__()
        self.skip = ResBlock(channels, embed)
        self.down = _conv(channels, channels, 3, 2)
        self.pre = ResBlock(channels, embed)
        self.inner = Hourglass(channels, embed, depth - 1) if depth > 1 else ResBlock(channels, embed)
        self.post = ResBlock(channels, embed)
        self.up = _conv(channels, channels)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = self.pre(F.leaky_relu(self.down(x), SLOPE), e)
        h = self.post(self.inner(h, e), e)
        return self.skip(x, e) + self.up(_up(h))


class Generator(nn.Module):
    """U-Net restorer of the sensor-noise residual of a JPEG.

    ``forward(rgb, residual, quality)``: rgb float (B, 3, H, W) in 0..1,
    residual float (B, 1, H, W) in residual units, quality (B,) 1..100; H and W
    multiples of ``config.factor``. Returns float32 (B, 1, H, W) in normalised
    units: ``filtered / residual_scale + correction``, where ``filtered`` is the
    block-filtered residual (:meth:`prefilter`; the residual itself without the
    filter). ``residual_scale`` and ``target_scale`` are buffers (saved with the
    weights) set from the training data: restored residual = output *
    residual_scale, output compared with target / target_scale. Whole images
    are prefiltered once and the rest runs in tiles (``forward(...,
    prefiltered=True)``, :mod:`.whole_image`).
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = c = config
        widths = [min(c.width * 2**level, c.max_width) for level in range(c.depth + 1)]
        self.register_buffer("residual_scale", torch.tensor(1.0))
        self.register_buffer("target_scale", torch.tensor(1.0))
        self.block_filter = BlockFilter(c.filter_bins) if c.filter_bins else None
        self.jpeg = JpegFeatures() if c.jpeg_features else None
        self.embed = QualityEmbedding(c.q_embed, BLOCK * BLOCK if self.jpeg else 0)
        self.stem = _conv(4 + (JpegFeatures.channels if self.jpeg else 0), widths[0])
        self.encoder = nn.ModuleList(Stage(widths[i], c.q_embed, c.blocks) for i in range(c.depth))
        self.down = nn.ModuleList(_conv(widths[i], widths[i + 1], 3, 2) for i in range(c.depth))
        deep = widths[-1]
        self.hourglasses = nn.ModuleList(Hourglass(deep, c.q_embed, c.hourglass_depth) for _ in range(c.hourglass))
        self.keep = _conv(deep * c.hourglass, deep, 1) if c.hourglass else None
        self.up = nn.ModuleList(_conv(widths[i + 1], widths[i]) for i in range(c.depth))
        self.merge = nn.ModuleList(_conv(2 * widths[i], widths[i], 1) for i in range(c.depth))
        self.decoder = nn.ModuleList(Stage(widths[i], c.q_embed, c.blocks) for i in range(c.depth))
        self.head = _conv(widths[0], 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def correction(self, rgb: torch.Tensor, r: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """The learned correction (B, 1, H, W) for normalised residual ``r`` (runs under autocast if enabled)."""
        f = self.config.factor
        if rgb.shape[-2] % f or rgb.shape[-1] % f:
            raise ValueError(f"input {tuple(rgb.shape[-2:])} is not a multiple of {f}; pad it first")
        e = self.embed(quality, self.jpeg.log_steps(quality) if self.jpeg is not None else None)
        planes = [rgb * 2 - 1, r] + ([self.jpeg(rgb, quality).to(r.dtype)] if self.jpeg is not None else [])
        x = self.stem(torch.cat(planes, dim=1))
        skips = []
        for stage, down in zip(self.encoder, self.down):
            x = stage(x, e)
            skips.append(x)
            x = F.leaky_relu(down(x), SLOPE)
        if self.hourglasses:
            kept, h = [], x
            for hourglass in self.hourglasses:
                h = hourglass(h, e)
                kept.append(h)
            x = x + self.keep(torch.cat(kept, dim=1))
        for i in reversed(range(self.config.depth)):
            x = F.leaky_relu(self.up[i](_up(x)), SLOPE)
            x = self.decoder[i](self.merge[i](torch.cat([x, skips[i]], dim=1)), e)
        return self.head(F.leaky_relu(x, SLOPE))

    def prefilter(self, rgb: torch.Tensor, residual: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """The block-filtered residual (B, 1, H, W) float32 in residual units (the residual without a filter)."""
        if self.block_filter is None:
            return residual.float()
        with torch.autocast(rgb.device.type, enabled=False):  # block DCTs in float32, also under bf16 autocast
            return self.block_filter(rgb, residual, quality)

    def forward(self, rgb: torch.Tensor, residual: torch.Tensor, quality: torch.Tensor,
                prefiltered: bool = False) -> torch.Tensor:
        """Normalised output (see the class docstring); ``prefiltered``: ``residual`` is already the output of
        :meth:`prefilter` (whole images are filtered once, then refined in tiles)."""
        filtered = residual if prefiltered else self.prefilter(rgb, residual, quality)
        r = filtered.float() / self.residual_scale
        return r + self.correction(rgb, r, quality).float()


class Discriminator(nn.Module):
    """PatchGAN critic conditioned on the input: sees (rgb, normalised residual, candidate, quality plane).

    ``forward(rgb, r, candidate, quality)``: rgb (B, 3, H, W) in 0..1, ``r`` the
    normalised input residual, ``candidate`` the real (target / target_scale) or
    generated residual (B, 1, H, W); returns logits (B, 1, H / 2**layers, W / 2**layers),
    one per overlapping patch. Spectral normalisation on every convolution.
    """

    def __init__(self, width: int = _CRITIC["width"], layers: int = _CRITIC["layers"]):
        super().__init__()
        chans = [6] + [width * 2**i for i in range(layers)]
        convs = [spectral_norm(nn.Conv2d(a, b, 4, 2, 1)) for a, b in zip(chans[:-1], chans[1:])]
        convs += [spectral_norm(_conv(chans[-1], chans[-1])), spectral_norm(_conv(chans[-1], 1))]
        self.convs = nn.ModuleList(convs)

    def forward(self, rgb, r, candidate, quality) -> torch.Tensor:
        q = (quality.float() / 100.0)[:, None, None, None].expand(-1, 1, *rgb.shape[-2:]).to(rgb.dtype)
        x = torch.cat([rgb * 2 - 1, r, candidate, q], dim=1)
        for conv in self.convs[:-1]:
            x = F.leaky_relu(conv(x), SLOPE)
        return self.convs[-1](x)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
