"""The generator's tiles on the CPU through OpenVINO, an inference runtime made for CPUs (torch stays the
training and GPU path, and the CPU fallback where OpenVINO is not installed).

The network after the block filter (``Generator.forward(..., prefiltered=True)``) is converted from the loaded
torch model in memory, once per model and thread count, with dynamic batch, height and width, and compiled for
float32 inference (never bf16, even where the CPU has it), so its output is torch's to float rounding. On the
shipped model at 12 MP it restores 3.3x faster than torch's CPU path did with the same two threads (torch spends
half its time outside the convolutions: FiLM products, activations, concatenations); figures and command in
docs/benchmarks.md. Converting takes about 3 s, so the converted model of a checkpoint file is kept in a cache
folder (:func:`cache_dir`) and read back by later jobs in about 0.3 s.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from .networks import Generator
from .whole_image import TileRunner


def openvino_available() -> bool:
    """Whether OpenVINO imports here."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class _Tiles(torch.nn.Module):
    """The generator on prefiltered tiles: the graph that is converted."""

    def __init__(self, model: Generator):
        super().__init__()
        self.model = model

    def forward(self, rgb: torch.Tensor, residual: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        return self.model(rgb, residual, quality, prefiltered=True)


STATIC_PIXELS = 2**18
"""Tiles of at least this many pixels (512 x 512) run on a model compiled for their exact shape (the tiles of
one image share it), about 10 % faster than the model compiled for any shape that serves the others (compiling
takes about 0.5 s per shape; the last :data:`STATIC_SHAPES` are kept)."""
STATIC_SHAPES = 4


def cache_dir() -> Path:
    """Where converted models are kept: ``$SPNRESTORE_CACHE``, else ``$XDG_CACHE_HOME/spnrestore``, else
    ``~/.cache/spnrestore``, and below it ``openvino/``. Nothing in it is needed: deleting it costs a conversion."""
    root = os.environ.get("SPNRESTORE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "spnrestore")
    return Path(root) / "openvino"


def _cache_key(checkpoint_sha256: str) -> str:
    """The cached conversion's name: the checkpoint's bytes, the runtimes' versions and the code that makes the
    graph (a change to any gives a new conversion)."""
    import openvino as ov

    digest = hashlib.sha256(f"{checkpoint_sha256}|{ov.__version__}|{torch.__version__}".encode())
    here = Path(__file__).resolve().parent
    for name in ("cpu_runtime.py", "networks.py", "block_filter.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:32]


def _convert(model: Generator, checkpoint_sha256: str | None):
    """The OpenVINO model of ``model``'s tiles (any batch, height and width): read from the cache where a
    conversion of the same checkpoint is there, else converted and (for a checkpoint file) cached, atomically."""
    import openvino as ov

    xml = cache_dir() / f"{_cache_key(checkpoint_sha256)}.xml" if checkpoint_sha256 else None
    if xml is not None and xml.is_file():
        try:
            return ov.Core().read_model(xml)
        except RuntimeError:  # a damaged file: convert again and replace it
            pass
    f = model.config.factor
    example = (torch.zeros(1, 3, 2 * f, 2 * f), torch.zeros(1, 1, 2 * f, 2 * f), torch.full((1,), 90))
    inputs = [("rgb", [-1, 3, -1, -1], ov.Type.f32), ("residual", [-1, 1, -1, -1], ov.Type.f32),
              ("quality", [-1], ov.Type.i64)]
    with warnings.catch_warnings():  # the tracer's notes on shape checks that hold for every tile
        warnings.simplefilter("ignore")
        converted = ov.convert_model(_Tiles(model).eval(), example_input=example, input=inputs)
    if xml is not None:
        tmp = xml.with_name(f".{xml.stem}.{os.getpid()}.{threading.get_ident()}.xml")
        try:
            xml.parent.mkdir(parents=True, exist_ok=True)
            ov.save_model(converted, tmp, compress_to_fp16=False)  # the weights as they are, float32
            os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
            os.replace(tmp, xml)
            # the graph as read back compiles to other kernels than the converted one (outputs differ in
            # the 7th digit): the job that converts uses the file too, so every job gives the same output
            return ov.Core().read_model(xml)
        except (OSError, RuntimeError):  # a read-only or full cache costs the next job a conversion, nothing else
            for leftover in (tmp, tmp.with_suffix(".bin")):
                leftover.unlink(missing_ok=True)
    return converted


def compile_tiles(model: Generator, threads: int, checkpoint_sha256: str | None = None) -> TileRunner:
    """``model`` (on the CPU, in eval mode) compiled by OpenVINO for ``threads`` threads, as a
    :data:`TileRunner`. Each call has its own inference request, so calls from several threads are safe.
    ``checkpoint_sha256``: the SHA-256 of the file the model was loaded from, for the cache of conversions
    (None: converted, not cached)."""
    import openvino as ov

    converted = _convert(model, checkpoint_sha256)
    core = ov.Core()
    settings = {"INFERENCE_NUM_THREADS": max(1, int(threads)), "INFERENCE_PRECISION_HINT": "f32",
                "PERFORMANCE_HINT": "LATENCY"}
    any_shape = core.compile_model(converted, "CPU", settings)
    static: dict[tuple, object] = {}
    lock = threading.Lock()

    def for_shape(b: int, h: int, w: int):
        if h * w < STATIC_PIXELS:
            return any_shape
        with lock:
            if (b, h, w) not in static:
                if len(static) >= STATIC_SHAPES:
                    static.pop(next(iter(static)))
                fixed = converted.clone()
                fixed.reshape({"rgb": [b, 3, h, w], "residual": [b, 1, h, w], "quality": [b]})
                static[(b, h, w)] = core.compile_model(fixed, "CPU", settings)
            return static[(b, h, w)]

    def run(rgb: np.ndarray, residual: np.ndarray, quality: np.ndarray) -> np.ndarray:
        b, _, h, w = rgb.shape
        request = for_shape(b, h, w).create_infer_request()
        request.infer([np.ascontiguousarray(rgb, np.float32), np.ascontiguousarray(residual, np.float32),
                       np.ascontiguousarray(quality, np.int64)])
        return request.get_output_tensor(0).data.copy()

    return run


class CompiledTiles:
    """A model's :func:`compile_tiles`, made on first use and again when the thread count changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._runner: TileRunner | None = None

    def runner(self, model: Generator, threads: int, checkpoint_sha256: str | None = None) -> TileRunner:
        key = (id(model), int(threads))
        with self._lock:
            if self._runner is None or self._key != key:
                self._runner, self._key = compile_tiles(model, threads, checkpoint_sha256), key
            return self._runner
