"""Restoration of a JPEG's sensor-noise residual with a trained model (torch), for casework and evaluation.

Load a model once with :func:`load_restorer` (which refuses a model trained on residuals made with other
settings than the caller's), then restore many images with :func:`restore_residual` (the whole-image pass of
:mod:`.whole_image`: one pass or overlapping tiles blended without seams). On the CPU a loaded model's tiles run
through OpenVINO where it is installed (:mod:`.cpu_runtime`, 3.3x faster at 12 MP), else through torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from ..checksums import file_sha256
from ..errors import ConfigError
from .checkpoint import check_residual_settings, load_generator
from .cpu_runtime import CompiledTiles, openvino_available
from .device import pick_device
from .networks import Generator
from .whole_image import restore_image


@dataclass
class Restorer:
    """A generator ready for inference on ``device``, with its checkpoint's metadata (every key but the
    weights; a key the checkpoint lacks, such as ``residual`` in files older than the record, is absent) and
    the SHA-256 of the file it was loaded from (None for a model given in memory). ``runtime``: what runs the
    network on the CPU, ``openvino`` or ``torch`` (on CUDA always torch)."""

    model: Generator
    device: torch.device
    metadata: dict = field(default_factory=dict)
    sha256: str | None = None
    runtime: str = "torch"
    compiled: CompiledTiles = field(default_factory=CompiledTiles, repr=False)


RUNTIMES = ("auto", "openvino", "torch")


def pick_runtime(runtime: str | None, device: torch.device) -> str:
    """The CPU runtime a ``runtime`` setting names on ``device``: 'auto' (or None) is OpenVINO on the CPU where
    it imports, torch otherwise; 'openvino' where OpenVINO is missing is a ConfigError saying what to do."""
    runtime = "auto" if runtime is None else str(runtime)
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime = {runtime!r}: use one of {', '.join(RUNTIMES)}.")
    if device.type != "cpu" or runtime == "torch":
        return "torch"
    if openvino_available():
        return "openvino"
    if runtime == "openvino":
        raise ConfigError("runtime = 'openvino' but OpenVINO is not installed: pip install openvino, "
                          "or use runtime 'auto' or 'torch'.")
    return "torch"


def load_restorer(path: str | os.PathLike, device: str | torch.device | None = None,
                  residual: Mapping | None = None, runtime: str | None = "auto") -> Restorer:
    """Load the model of checkpoint ``path`` (weights_only) onto ``device`` (None/'auto': CUDA if present).

    ``residual``: the settings of the residuals it will restore (``spn.residual_settings(sigma)``); when the
    checkpoint records those of its training data and any differs, it is refused naming them
    (:func:`.checkpoint.check_residual_settings`). A checkpoint
    without the record (older files) loads unchecked. ``runtime``: see :func:`pick_runtime`; OpenVINO
    compiles the model on its first image, for torch's thread count then.
    """
    device = pick_device(device)
    model, payload = load_generator(path, map_location="cpu")
    check_residual_settings(payload, residual, path)
    model.to(device, memory_format=torch.channels_last)  # on the CPU too: oneDNN convolutions run faster
    return Restorer(model, device, {k: v for k, v in payload.items() if k != "model_state"}, file_sha256(path),
                    pick_runtime(runtime, device))


def checkpoint_summary(source: Restorer | Mapping) -> dict:
    """What a report states about a model, from a :class:`Restorer` or a loaded checkpoint payload: the
    file's ``sha256`` (None unless loaded from a file), ``selected_step``, ``steps_done``, ``stopped_by``,
    the ``residual`` settings and the training's ``pce_threshold`` (None where the checkpoint lacks them)."""
    meta = source.metadata if isinstance(source, Restorer) else source
    metrics, train_config = meta.get("metrics") or {}, meta.get("train_config") or {}
    return {"sha256": source.sha256 if isinstance(source, Restorer) else None,
            "selected_step": metrics.get("selected_step"), "steps_done": metrics.get("steps_done"),
            "stopped_by": metrics.get("stopped_by"), "residual": meta.get("residual"),
            "pce_threshold": train_config.get("pce_threshold")}


def _as_restorer(checkpoint, device) -> Restorer:
    """A :class:`Restorer` of a checkpoint path, Restorer (moved to ``device`` when given) or Generator."""
    if isinstance(checkpoint, Restorer):
        if device is not None and (dev := pick_device(device)) != checkpoint.device:
            checkpoint.model.to(dev)
            checkpoint.device = dev
        return checkpoint
    if isinstance(checkpoint, Generator):
        dev = pick_device(device)
        return Restorer(checkpoint.eval().to(dev), dev)
    return load_restorer(checkpoint, device)


def restore_residual(
    checkpoint,
    rgb: np.ndarray,
    residual: np.ndarray,
    quality: int,
    device: str | torch.device | None = None,
    tile: int | None = None,
    overlap: int = 32,
    batch: int | None = None,
) -> np.ndarray:
    """Restored sensor-noise residual of one JPEG, float32 H x W, in the units of ``residual``.

    ``checkpoint``: checkpoint path, a :class:`Restorer` from :func:`load_restorer`,
    or a :class:`Generator`. ``rgb``: the JPEG's pixels, uint8 H x W x 3 (RGB);
    ``residual``: its plain residual (``spn.extract_residual``), H x W;
    ``quality``: its JPEG quality 1..100. Tiling (``tile``, ``overlap``, ``batch``): see
    :func:`.whole_image.restore_image`; by default tiles of 512 px four at a time through torch, of 1024 px
    one at a time through OpenVINO (its cost per pixel is the same for both sizes, so the larger tile saves the
    overlap: 12.6 instead of 16.5 MP computed for 12 MP). With an untrained (identity) model the result equals
    ``residual``.
    """
    r = _as_restorer(checkpoint, device)
    runner = None
    if r.runtime == "openvino" and r.device.type == "cpu":
        runner = r.compiled.runner(r.model, torch.get_num_threads(), r.sha256)
    tile = tile or (1024 if runner else 512)
    batch = batch or (1 if runner else 4)
    return restore_image(r.model, r.device, rgb, residual, quality, tile, overlap, batch, runner)
