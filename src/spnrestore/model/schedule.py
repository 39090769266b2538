"""What changes with the training step: the learning-rate schedule and the augmentation of each batch."""

from __future__ import annotations

import math

import torch


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine from 1 to ``floor`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    return cosine_factor((step - warmup) / max(1, total - warmup), floor)


def cosine_factor(progress: float, floor: float) -> float:
    """Cosine from 1 at ``progress`` 0 to ``floor`` at 1 (and after)."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def augmentation_generator(device: torch.device, seed: int, step: int) -> torch.Generator:
    """The random generator of step ``step``'s augmentation: a pure function of (seed, step), so a resumed
    run augments exactly as an uninterrupted one."""
    return torch.Generator(device).manual_seed(seed * 1_000_003 + step)


def dihedral(tensors: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Apply the same random flip / flip / transpose (per example) to every (B, C, P, P) tensor
    (``generator`` on the tensors' device, so no host synchronisation)."""
    b = tensors[0].shape[0]
    bits = torch.rand(3, b, generator=generator, device=generator.device).lt(0.5)
    out = []
    for t in tensors:
        t = torch.where(bits[0].view(-1, 1, 1, 1), t.flip(-1), t)
        t = torch.where(bits[1].view(-1, 1, 1, 1), t.flip(-2), t)
        out.append(torch.where(bits[2].view(-1, 1, 1, 1), t.transpose(-1, -2), t))
    return out
