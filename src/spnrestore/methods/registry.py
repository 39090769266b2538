"""The registry of residual methods: one name per way of turning a JPEG into a residual that is scored
against the camera fingerprints.

A :class:`Method` computes, from a JPEG's pixels (uint8 H x W x 3), its plain residual (float32 H x W) and
its quality, a float32 H x W residual in the plain residual's units. Two kinds are not computed from the
JPEG: ``original`` (the residual of the uncompressed development, the upper bound, scored where the drive
has one) and ``calibrated`` (per fingerprint and quality, the method its camera's calibration chose; its
scores are those of the chosen method). Every table, figure, report page and CLI command takes its method
names from here, in :func:`method_order`.

A built-in registers itself with :func:`register` in its own module (``methods/<name>.py``); a module
that adds a method is imported by ``methods/__init__.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..errors import SpnRestoreError

#: Kinds of method: computed from the JPEG without a model, with a restoration model, the uncompressed
#: development's residual, and the per-camera choice.
COMPUTED, MODEL, ORIGINAL, CALIBRATED = "computed", "model", "original", "calibrated"


@dataclass(frozen=True)
class Method:
    """A residual method. ``compute(rgb, plain, quality, context)`` -> float32 H x W (None for the kinds
    ``original`` and ``calibrated``, which are not computed from the JPEG); ``checkpoint``: for a model
    method, the keyword or path of its model (``shipped``: the packaged model, ``drive``: the model the
    drive trained or reuses, else a file)."""

    name: str
    title: str
    kind: str = COMPUTED
    compute: Callable | None = None
    checkpoint: str | None = None
    reference: str = ""

    @property
    def needs_model(self) -> bool:
        return self.kind == MODEL

    @property
    def computed(self) -> bool:
        """Whether its residual is computed from the JPEG (the kinds ``computed`` and ``model``)."""
        return self.kind in (COMPUTED, MODEL)


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (its module calls this on import); a name is registered once."""
    if method.name in _REGISTRY and _REGISTRY[method.name] != method:
        raise SpnRestoreError(f"residual method {method.name!r} is registered twice")
    _REGISTRY[method.name] = method
    return method


def registered() -> dict[str, Method]:
    """The built-in methods by name, in registration order."""
    return dict(_REGISTRY)


def get_method(name: str) -> Method:
    """The method ``name``: a registered one, or a model method of a checkpoint file given by path
    (``NAME=PATH`` names it; a bare path is named after its file)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if _is_path(name):
        return checkpoint_method(name)
    raise SpnRestoreError(
        f"residual method {name!r} is unknown; the methods are {', '.join(_REGISTRY)}, or a checkpoint file "
        "given by path (NAME=PATH to name it)")


def _is_path(value: str) -> bool:
    value = value.split("=", 1)[1] if "=" in value else value
    return value.endswith(".pt") or os.sep in value or "/" in value


def checkpoint_method(spec: str) -> Method:
    """A model method of the checkpoint file of ``spec`` (``NAME=PATH`` or ``PATH``: named after the file)."""
    name, path = spec.split("=", 1) if "=" in spec else (Path(spec).stem, spec)
    name = name.strip()
    if not name or name in _REGISTRY:
        raise SpnRestoreError(f"residual method {spec!r}: give the checkpoint a name of its own as NAME=PATH "
                              f"(not one of {', '.join(_REGISTRY)})")
    from .models import model_compute

    return Method(name, f"restoration model {Path(path).name}", MODEL, model_compute(str(path)), str(path),
                  "a model trained by spnrestore (train or pretrain), loaded from the file given")


def method_order(names: Iterable[str]) -> list[str]:
    """``names`` without duplicates, built-ins in registration order first, then the others as given."""
    names = list(dict.fromkeys(names))
    order = {n: i for i, n in enumerate(_REGISTRY)}
    return sorted(names, key=lambda n: (order.get(n, len(order)), names.index(n)))


@dataclass
class MethodContext:
    """What computing methods needs: the residual's denoiser ``sigma``, the ``drive`` model's file (None
    where the drive has none), the torch ``device`` (None: CUDA when present), and the loaded models."""

    sigma: float
    drive_checkpoint: str | None = None
    device: str | None = None
    _restorers: dict = field(default_factory=dict)
    _last: dict = field(default_factory=dict)

    def checkpoint_path(self, checkpoint: str | None) -> str | None:
        """The file of a model method's ``checkpoint``: ``shipped`` the packaged model, ``synthetic`` its
        synthetic base, ``drive`` the drive's."""
        from ..model.pretrained import pretrained_checkpoint, synthetic_checkpoint

        if checkpoint == "shipped":
            return str(pretrained_checkpoint())
        if checkpoint == "synthetic":
            return str(synthetic_checkpoint())
        if checkpoint == "drive":
            return self.drive_checkpoint
        return checkpoint

    def restorer(self, checkpoint: str):
        """The loaded model of ``checkpoint`` (once per context), refused when trained on other residual
        settings than ``sigma``."""
        path = self.checkpoint_path(checkpoint)
        if not path:
            raise SpnRestoreError("residual method 'drive': this drive has no model (it trained none and reuses "
                                  "none); leave it out of evaluation.methods or give model.checkpoint")
        if path not in self._restorers:
            from ..model.inference import load_restorer
            from ..spn import residual_settings

            self._restorers[path] = load_restorer(path, self.device, residual=residual_settings(self.sigma))
        return self._restorers[path]

    def model_residual(self, checkpoint: str, rgb: np.ndarray, plain: np.ndarray, quality: int) -> np.ndarray:
        """The whole-image restoration of ``plain`` by the model of ``checkpoint``; the last result per model
        is kept (keyed by the very arrays), so that methods built on one model run it once per image."""
        from ..model.inference import restore_residual

        last = self._last.get(checkpoint)
        if last is not None and last[0] is rgb and last[1] is plain and last[2] == quality:
            return last[3]
        out = restore_residual(self.restorer(checkpoint), rgb, plain, quality)
        self._last[checkpoint] = (rgb, plain, quality, out)
        return out


def residual_std(x: np.ndarray) -> float:
    """Standard deviation of a float32 residual, two-pass with float64 accumulation (no float64 copy)."""
    mean = float(x.sum(dtype=np.float64)) / x.size
    if not np.isfinite(mean):
        return float("nan")
    d = x - np.float32(mean)
    return float(np.sqrt(np.einsum("ij,ij->", d, d, dtype=np.float64) / x.size))


def in_plain_units(out: np.ndarray, std_in: float) -> np.ndarray:
    """A method's residual ``out`` as float32 with the plain residual's standard deviation ``std_in`` (zeros
    where ``out`` is constant): the units every method's result is in (PCE and NCC do not see the scale)."""
    out = np.ascontiguousarray(out, dtype=np.float32)
    std_out = residual_std(out)
    if not (np.isfinite(std_out) and std_out > 0.0):
        return np.zeros(out.shape, np.float32)
    out *= np.float32(std_in / std_out)
    return out


def compute_residual(method: Method, rgb: np.ndarray, plain: np.ndarray, quality: int,
                     context: MethodContext) -> np.ndarray:
    """The residual of ``method`` for one JPEG (float32 H x W, the shape of ``plain``)."""
    if not method.computed:
        raise SpnRestoreError(f"residual method {method.name!r} is not computed from a JPEG")
    out = np.asarray(method.compute(rgb, plain, int(quality), context), dtype=np.float32)
    if out.shape != plain.shape:
        raise SpnRestoreError(f"residual method {method.name!r} gave {out.shape}, expected {plain.shape}")
    return out
