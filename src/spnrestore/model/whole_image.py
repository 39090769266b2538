"""The generator on a whole image of any size (torch): the forward pass inference and training's whole-image
validation share.

Small images run in one pass (reflect-padded to the model's downsampling factor), large ones in overlapping
tiles blended with linear ramps over the overlap, so no seam appears. The block filter runs once on the whole
padded image (its JPEG grid from the image's corner), the U-Net in tiles.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ..errors import SpnRestoreError
from .networks import Generator

TileRunner = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``runner(rgb, residual, quality)``: float32 (B, 3, H, W) in 0..1, float32 (B, 1, H, W) prefiltered
residual, int64 (B,) quality -> float32 (B, 1, H, W), the generator's normalised output (another runtime's
forward pass of the tiles, :mod:`.cpu_runtime`)."""


def _tiles(length: int, tile: int, overlap: int, f: int) -> tuple[int, list[int]]:
    """(tile length, origins) along one side of ``length`` px: the fewest tiles of at most ``tile`` px that
    overlap by at least ``overlap`` px, all of one length, spread evenly, the last flush with the end. All
    lengths are multiples of ``f`` (so every origin lies on the JPEG grid and the model's)."""
    if length <= tile:
        return length, [0]
    lu, tu, ou = length // f, tile // f, overlap // f
    n = -(-(lu - ou) // (tu - ou))
    su = -(-(lu + (n - 1) * ou) // n)  # <= tu; the n - 1 steps of (lu - su) / (n - 1) leave >= ou of overlap
    return su * f, [i * (lu - su) // (n - 1) * f for i in range(n)]


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


def _check_inputs(rgb: np.ndarray, residual: np.ndarray, quality: int, tile: int, overlap: int) -> None:
    """Raise SpnRestoreError unless rgb is uint8 H x W x 3, residual H x W, quality 1..100, tile > 0 and
    overlap >= 0."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise SpnRestoreError(f"rgb: expected uint8 H x W x 3, got {rgb.dtype} {rgb.shape}.")
    if residual.shape != rgb.shape[:2]:
        raise SpnRestoreError(f"residual is {residual.shape} but the image is {rgb.shape[:2]}; they must match.")
    if not 1 <= int(quality) <= 100:
        raise SpnRestoreError(f"quality = {quality}: JPEG quality must be within 1..100.")
    if overlap < 0 or tile <= 0:
        raise SpnRestoreError(f"tile = {tile}, overlap = {overlap}: need tile > 0 and overlap >= 0.")


def _channels_last(model: torch.nn.Module) -> bool:
    """Whether the model's spatial convolution weights are stored channels-last."""
    return any(w.dim() == 4 and w.shape[-1] > 1 and not w.is_contiguous()
               and w.is_contiguous(memory_format=torch.channels_last) for w in model.parameters())


def restore_image(
    model: Generator,
    device: torch.device,
    rgb: np.ndarray,
    residual: np.ndarray,
    quality: int,
    tile: int = 512,
    overlap: int = 32,
    batch: int = 4,
    runner: TileRunner | None = None,
) -> np.ndarray:
    """Restored residual of one image, float32 H x W in the units of ``residual``, by ``model`` (on ``device``,
    in eval mode; bf16 autocast for the U-Net on CUDA, the identity path float32).

    ``rgb``: uint8 H x W x 3; ``residual``: H x W; ``quality``: JPEG quality 1..100. Images larger than
    ``tile`` px run in tiles of at most ``tile`` x ``tile`` (rounded up to the model's downsampling factor), the
    fewest per side, of one size, spread evenly and overlapping by at least ``overlap`` px (rounded up
    likewise), ``batch`` tiles per forward pass; each output pixel is a weighted mean of the tiles covering
    it, ignoring the outer quarter of every overlap.
    The tiles take the model's memory layout (channels-last on CUDA, or when the model's weights are: inference
    keeps its model channels-last on the CPU too, 1.75x faster there with oneDNN, 2026-11-27).
    ``runner``: the tiles go through it instead of the torch model (:mod:`.cpu_runtime`; the block filter still
    runs in torch, once per image).
    """
    rgb, residual = np.asarray(rgb), np.asarray(residual)
    _check_inputs(rgb, residual, quality, tile, overlap)
    f = model.config.factor
    up = lambda n: int(math.ceil(n / f) * f)  # noqa: E731
    h, w = residual.shape
    hp, wp = up(h), up(w)
    tile, overlap = up(tile), up(overlap)
    if overlap >= tile:
        raise SpnRestoreError(f"overlap ({overlap} px) must be smaller than tile ({tile} px).")
    pad = ((0, hp - h), (0, wp - w))
    rgb_p = np.pad(rgb, pad + ((0, 0),), mode="reflect")
    res_p = np.pad(residual.astype(np.float32), pad, mode="reflect")
    with torch.inference_mode():  # the block filter runs once on the whole image (JPEG grid from its corner)
        whole_rgb = torch.from_numpy(rgb_p).to(device).permute(2, 0, 1)[None].float().div_(255.0)
        whole_res = torch.from_numpy(res_p).to(device)[None, None]
        res_p = model.prefilter(whole_rgb, whole_res, torch.tensor([int(quality)], device=device))[0, 0].cpu().numpy()
    (th, ys), (tw, xs) = _tiles(hp, tile, overlap, f), _tiles(wp, tile, overlap, f)
    origins = [(y, x) for y in ys for x in xs]
    acc = np.zeros((hp, wp), np.float32)
    norm = np.zeros((hp, wp), np.float32)
    cuda = device.type == "cuda"
    fmt = torch.channels_last if cuda or _channels_last(model) else torch.contiguous_format
    with torch.inference_mode():
        for i in range(0, len(origins), batch):
            group = origins[i:i + batch]
            tiles_rgb = np.stack([rgb_p[y:y + th, x:x + tw] for y, x in group])
            tiles_res = np.stack([res_p[y:y + th, x:x + tw] for y, x in group])[:, None]
            if runner is not None:
                x_rgb = tiles_rgb.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
                out = runner(x_rgb, tiles_res, np.full(len(group), int(quality), np.int64))[:, 0]
                out *= np.float32(model.residual_scale.item())
            else:
                x_rgb = torch.from_numpy(tiles_rgb).to(device, non_blocking=True).permute(0, 3, 1, 2).float()
                x_rgb = x_rgb.div_(255.0).contiguous(memory_format=fmt)
                x_res = torch.from_numpy(tiles_res).to(device, non_blocking=True).contiguous(memory_format=fmt)
                q = torch.full((len(group),), int(quality), device=device)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                    out = model(x_rgb, x_res, q, prefiltered=True)
                out = (out[:, 0].float() * model.residual_scale).cpu().numpy()
            for (y, x), o in zip(group, out):
                weight = np.outer(_ramp(th, overlap, y > 0, y + th < hp), _ramp(tw, overlap, x > 0, x + tw < wp))
                acc[y:y + th, x:x + tw] += o * weight
                norm[y:y + th, x:x + tw] += weight
    return (acc / norm)[:h, :w]
