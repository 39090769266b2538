"""Losses of the restoration GAN. All inputs are (B, 1, H, W) in normalised units
(output of the generator and target / target_scale, both of roughly unit std).

* correlation: 1 - NCC per patch (identification scores correlation: this term carries most weight);
* LF: L1 between Gaussian low-passes (sigma 2 px) of output and target — keeps smooth content right
  (for the camera term target it is near zero, so this removes scene leakage);
* HF: relative L1 between features of the high-passed output and target, on VGG-16 ReLU
  activations when the weights file is available, else on Haar wavelet detail bands (weight-free);
* adversarial: least-squares (default) or hinge, against the conditional patch discriminator.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .train_config import defaults
from .vgg import VGG16_FILE, VGG16Features, load_vgg16_features

logger = logging.getLogger(__name__)

ADVERSARIAL = ("lsgan", "hinge")
LOWPASS_SIGMA = 2.0


_WEIGHTS = defaults("loss_weights")  # the defaults of training_schema.yaml


@dataclass(frozen=True)
class LossWeights:
    """Weight of each generator loss term (0 switches a term off); the ``loss_weights`` section of
    ``training_schema.yaml`` holds their defaults and bounds."""

    corr: float = _WEIGHTS["corr"]
    lf: float = _WEIGHTS["lf"]
    hf: float = _WEIGHTS["hf"]
    adv: float = _WEIGHTS["adv"]

    def as_dict(self) -> dict:
        return asdict(self)


def ncc(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Normalised cross-correlation of each sample (B,), computed in float32 over all but the batch axis."""
    a = a.float().flatten(1)
    b = b.float().flatten(1)
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(1) / torch.sqrt((a * a).sum(1) * (b * b).sum(1) + eps)


def correlation_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 - NCC(output, target); 0 when perfectly correlated."""
    return (1.0 - ncc(output, target)).mean()


def _gauss_kernel(sigma: float, device, dtype) -> torch.Tensor:
    radius = int(math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def lowpass(x: torch.Tensor, sigma: float = LOWPASS_SIGMA) -> torch.Tensor:
    """Separable Gaussian blur (reflect borders) of (B, C, H, W), per channel."""
    k = _gauss_kernel(sigma, x.device, x.dtype)
    r, c = len(k) // 2, x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def highpass(x: torch.Tensor, sigma: float = LOWPASS_SIGMA) -> torch.Tensor:
    """``x - lowpass(x)``."""
    return x - lowpass(x, sigma)


def lf_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 between the low-passed output and target."""
    return F.l1_loss(lowpass(output.float()), lowpass(target.float()))


def haar_details(x: torch.Tensor, levels: int = 2) -> list[torch.Tensor]:
    """Orthonormal Haar detail bands (LH, HL, HH stacked: (B, 3C, H/2^l, W/2^l)) of ``levels`` levels."""
    bands = []
    for _ in range(levels):
        a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
        c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
        bands.append(torch.cat([a - b + c - d, a + b - c - d, a - b - c + d], dim=1) / 2)
        x = (a + b + c + d) / 2
    return bands


def _relative_l1(found: list[torch.Tensor], wanted: list[torch.Tensor]) -> torch.Tensor:
    """Mean over feature sets of mean|found - wanted| / mean|wanted| (scale-free)."""
    terms = [(f.float() - w.float()).abs().mean() / (w.float().abs().mean() + 1e-6) for f, w in zip(found, wanted)]
    return torch.stack(terms).mean()


class HighFrequencyLoss(nn.Module):
    """HF loss on VGG-16 features of the high-passed signals (``kind='vgg16'``) or, without VGG weights,
    on their Haar detail bands (``kind='haar'``). The single-channel signal is repeated on 3 channels
    for VGG; its unit std matches the ImageNet-normalised inputs VGG was trained on."""

    def __init__(self, vgg: VGG16Features | None = None, haar_levels: int = 3):
        super().__init__()
        self.vgg = vgg
        self.kind = "vgg16" if vgg is not None else "haar"
        self.haar_levels = haar_levels

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = highpass(x.float())
        if self.vgg is None:
            return haar_details(x, self.haar_levels)
        return self.vgg(x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.features(target)
        return _relative_l1(self.features(output), wanted)


def make_hf_loss(cfg: Mapping) -> HighFrequencyLoss:
    """VGG-16 HF loss from ``cfg['vgg_weights']`` (hash-checked), or the weight-free Haar loss with a warning."""
    path = cfg["vgg_weights"]
    if path and Path(path).is_file():
        return HighFrequencyLoss(load_vgg16_features(path, cfg["vgg_sha256"], cfg["vgg_layers"]))
    reason = f"vgg_weights = {path!r} does not exist" if path else "vgg_weights is not set"
    message = (f"HF loss: {reason}; using the weight-free Haar wavelet HF loss instead (recorded in the checkpoint "
               f"as hf_loss='haar'). Nothing is downloaded: to use VGG-16 features, put {VGG16_FILE} on disk "
               "and set vgg_weights to its path.")
    logger.warning(message)
    warnings.warn(message, stacklevel=3)
    return HighFrequencyLoss(None)


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """Critic loss from its logits on real targets and on (detached) generated residuals."""
    real, fake = real.float(), fake.float()
    if kind == "lsgan":
        return 0.5 * (((real - 1) ** 2).mean() + (fake**2).mean())
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def generator_adversarial_loss(fake: torch.Tensor, kind: str = "lsgan") -> torch.Tensor:
    """Generator's adversarial term from the critic's logits on its output."""
    fake = fake.float()
    return 0.5 * ((fake - 1) ** 2).mean() if kind == "lsgan" else -fake.mean()


class GeneratorLoss(nn.Module):
    """Weighted sum of the generator's terms. ``forward(output, target, fake_logits=None)`` returns a dict
    of 0-d tensors: ``corr``, ``lf``, ``hf``, ``adv`` (only those with weight > 0) and ``total``."""

    def __init__(self, weights: LossWeights, hf: HighFrequencyLoss, adversarial: str = "lsgan"):
        super().__init__()
        if adversarial not in ADVERSARIAL:
            raise ConfigError(f"adversarial = {adversarial!r}: must be one of {list(ADVERSARIAL)}.")
        self.weights, self.hf, self.adversarial = weights, hf, adversarial

    def forward(self, output, target, fake_logits=None) -> dict[str, torch.Tensor]:
        w = self.weights
        terms = {}
        if w.corr:
            terms["corr"] = correlation_loss(output, target)
        if w.lf:
            terms["lf"] = lf_loss(output, target)
        if w.hf:
            terms["hf"] = self.hf(output, target)
        if w.adv and fake_logits is not None:
            terms["adv"] = generator_adversarial_loss(fake_logits, self.adversarial)
        terms["total"] = sum(getattr(w, name) * value for name, value in terms.items())
        return terms
