"""Whole-image restoration of a JPEG's sensor-noise residual with a trained model (torch).

``restore_residual`` runs the generator on an image of any size: small images
in one pass (reflect-padded to the model's downsampling factor), large ones in
overlapping tiles blended with linear ramps over the overlap, so no seam
appears. Load a model once with :func:`load_restorer` to restore many images.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import SpnRestoreError
from .model.checkpoint import load_generator
from .model.networks import Generator


@dataclass
class Restorer:
    """A generator ready for inference on ``device``, with its checkpoint's metadata (no weights)."""

    model: Generator
    device: torch.device
    metadata: dict = field(default_factory=dict)

    @property
    def amp(self) -> bool:
        """bf16 autocast for the network body on CUDA (the identity path stays float32)."""
        return self.device.type == "cuda"


def _device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpnRestoreError(f"device {str(device)!r}: no CUDA device is available; use 'cpu' or None.")
    return device


def load_restorer(path: str | os.PathLike, device: str | torch.device | None = None) -> Restorer:
    """Load the model of checkpoint ``path`` (weights_only) onto ``device`` (None/'auto': CUDA if present)."""
    device = _device(device)
    model, payload = load_generator(path, map_location="cpu")
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model.to(device, memory_format=fmt)
    return Restorer(model, device, {k: v for k, v in payload.items() if k != "model_state"})


def _as_restorer(checkpoint, device) -> Restorer:
    if isinstance(checkpoint, Restorer):
        if device is not None and _device(device) != checkpoint.device:
            checkpoint.model.to(_device(device))
            checkpoint.device = _device(device)
        return checkpoint
    if isinstance(checkpoint, Generator):
        dev = _device(device)
        return Restorer(checkpoint.eval().to(dev), dev)
    return load_restorer(checkpoint, device)


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile origins covering ``length``: every ``step``, the last one flush with the end."""
    if length <= tile:
        return [0]
    return sorted(set(range(0, length - tile, step)) | {length - tile})


def _ramp(size: int, overlap: int, rise: bool, fall: bool) -> np.ndarray:
    """1-D blending weight of a tile (float32): 1 inside; on a side shared with a neighbour (``rise`` at the
    start, ``fall`` at the end) it is 0 over the first quarter of the overlap, rises linearly over its
    central half and is 1 after, so the pixels nearest a tile edge (least context) never count."""
    d = np.arange(size, dtype=np.float32) + 0.5
    w = np.ones(size, np.float32)
    if overlap:
        ramp = lambda dist: np.clip((dist - overlap / 4) / (overlap / 2), 0.0, 1.0)  # noqa: E731
        if rise:
            w = np.minimum(w, ramp(d))
        if fall:
            w = np.minimum(w, ramp(size - d))
    return w


def restore_residual(
    checkpoint,
    rgb: np.ndarray,
    residual: np.ndarray,
    quality: int,
    device: str | torch.device | None = None,
    tile: int = 512,
    overlap: int = 32,
    batch: int = 4,
) -> np.ndarray:
    """Restored sensor-noise residual of one JPEG, float32 H x W, in the units of ``residual``.

    ``checkpoint``: checkpoint path, a :class:`Restorer` from :func:`load_restorer`,
    or a :class:`Generator`. ``rgb``: the JPEG's pixels, uint8 H x W x 3 (RGB);
    ``residual``: its plain residual (``spn.extract_residual``), H x W;
    ``quality``: its JPEG quality 1..100. Images larger than ``tile`` px run in
    tiles of ``tile`` x ``tile`` (rounded up to the model's downsampling factor)
    overlapping by ``overlap`` px (rounded up likewise), ``batch`` tiles per forward pass; each output
    pixel is a weighted mean of the tiles covering it, ignoring the outer quarter of every overlap. With an
    untrained (identity) model the result equals ``residual``.
    """
    rgb, residual = np.asarray(rgb), np.asarray(residual)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise SpnRestoreError(f"rgb: expected uint8 H x W x 3, got {rgb.dtype} {rgb.shape}.")
    if residual.shape != rgb.shape[:2]:
        raise SpnRestoreError(f"residual is {residual.shape} but the image is {rgb.shape[:2]}; they must match.")
    if not 1 <= int(quality) <= 100:
        raise SpnRestoreError(f"quality = {quality}: JPEG quality must be within 1..100.")
    if overlap < 0 or tile <= 0:
        raise SpnRestoreError(f"tile = {tile}, overlap = {overlap}: need tile > 0 and overlap >= 0.")
    r = _as_restorer(checkpoint, device)
    f = r.model.config.factor
    up = lambda n: int(math.ceil(n / f) * f)  # noqa: E731
    h, w = residual.shape
    hp, wp = up(h), up(w)
    tile, overlap = up(tile), up(overlap)
    if overlap >= tile:
        raise SpnRestoreError(f"overlap ({overlap} px) must be smaller than tile ({tile} px).")
    pad = ((0, hp - h), (0, wp - w))
    rgb_p = np.pad(rgb, pad + ((0, 0),), mode="reflect")
    res_p = np.pad(residual.astype(np.float32), pad, mode="reflect")
    model, dev = r.model, r.device
    with torch.inference_mode():  # the block filter runs once on the whole image (JPEG grid from its corner)
        whole_rgb = torch.from_numpy(rgb_p).to(dev).permute(2, 0, 1)[None].float().div_(255.0)
        whole_res = torch.from_numpy(res_p).to(dev)[None, None]
        res_p = model.prefilter(whole_rgb, whole_res, torch.tensor([int(quality)], device=dev))[0, 0].cpu().numpy()
    th, tw = min(tile, hp), min(tile, wp)
    origins = [(y, x) for y in _starts(hp, th, th - overlap) for x in _starts(wp, tw, tw - overlap)]
    acc = np.zeros((hp, wp), np.float32)
    norm = np.zeros((hp, wp), np.float32)
    fmt = torch.channels_last if dev.type == "cuda" else torch.contiguous_format
    with torch.inference_mode():
        for i in range(0, len(origins), batch):
            group = origins[i:i + batch]
            x_rgb = torch.from_numpy(np.stack([rgb_p[y:y + th, x:x + tw] for y, x in group]))
            x_res = torch.from_numpy(np.stack([res_p[y:y + th, x:x + tw] for y, x in group]))[:, None]
            x_rgb = x_rgb.to(dev, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0).contiguous(memory_format=fmt)
            x_res = x_res.to(dev, non_blocking=True).contiguous(memory_format=fmt)
            q = torch.full((len(group),), int(quality), device=dev)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=r.amp):
                out = model(x_rgb, x_res, q, prefiltered=True)
            out = (out[:, 0].float() * model.residual_scale).cpu().numpy()
            for (y, x), o in zip(group, out):
                weight = np.outer(_ramp(th, overlap, y > 0, y + th < hp), _ramp(tw, overlap, x > 0, x + tw < wp))
                acc[y:y + th, x:x + tw] += o * weight
                norm[y:y + th, x:x + tw] += weight
    return (acc / norm)[:h, :w]
