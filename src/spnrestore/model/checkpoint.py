"""Checkpoint files: saved atomically with ``torch.save``, loaded only with ``weights_only=True``.

A checkpoint is a dictionary of tensors and plain Python values (dicts, lists,
strings, numbers, booleans, None) — never pickled classes or code, so loading
one cannot run code. Keys of a model checkpoint: ``format``,
``format_version``, ``spnrestore_version``, ``model_config`` (a
:class:`GeneratorConfig` as dict), ``model_state`` (the generator's
``state_dict``) plus metadata (training config, residual settings, data manifest hash, metrics,
HF-loss kind...). Training checkpoints add optimiser and discriminator states.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Mapping

import torch

from .. import __version__
from ..atomic import atomic_path
from ..errors import SpnRestoreError
from .checkpoint_metadata import FORMAT, check_residual_settings  # noqa: F401  (one definition, no torch)
from .networks import Generator, GeneratorConfig

FORMAT_VERSION = 2  # 2: model_config has filter_bins (format 1 models have no block filter)


PLAIN_TYPES = (str, int, float, bool, type(None), torch.Tensor)


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """Raise TypeError unless ``value`` is made only of tensors, plain containers and plain scalars."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_plain(key, f"{where} key")
            check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
    elif type(value) not in PLAIN_TYPES and not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}: {type(value).__name__} is not loadable with weights_only=True")


def save_checkpoint(path: str | os.PathLike, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically (temporary name, then rename).

    The payload is checked first to hold only tensors and plain values, so that
    every written checkpoint loads with ``weights_only=True``.
    """
    check_plain(dict(payload))
    with atomic_path(path) as tmp:
        torch.save(dict(payload), tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises :class:`SpnRestoreError` naming the file when it is missing,
    truncated or corrupt, holds pickled objects other than tensors and plain
    data (refused: unpickling them could run code), or is not an spnrestore
    checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise SpnRestoreError(f"{path}: checkpoint does not exist; train a model first or fix the path.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise SpnRestoreError(
                f"{path}: refused to load: the file holds pickled Python objects (which can run code), not only "
                "tensors and plain data. Only load checkpoints written by spnrestore; re-train or re-export it."
            ) from None
        raise SpnRestoreError(f"{path}: corrupt checkpoint ({exc}); delete it and train again.") from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise SpnRestoreError(
            f"{path}: truncated or not a PyTorch checkpoint ({exc}); delete it and train again "
            "(a killed run resumes from its last complete checkpoint)."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SpnRestoreError(f"{path}: not an spnrestore checkpoint (no format '{FORMAT}' marker).")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise SpnRestoreError(
            f"{path}: checkpoint format {payload['format_version']} is newer than this spnrestore "
            f"understands ({FORMAT_VERSION}); upgrade spnrestore."
        )
    return payload


def model_payload(generator: Generator, **metadata: Any) -> dict:
    """A model checkpoint dictionary: format marker, versions, config, weights (on CPU) and ``metadata``."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spnrestore_version": __version__,
        "model_config": generator.config.as_dict(),
        "model_state": {k: v.detach().to("cpu", copy=True) for k, v in generator.state_dict().items()},
        **metadata,
    }


def config_difference(found: Mapping, expected: Mapping) -> str:
    """Human-readable list of keys whose values differ, e.g. ``width: 8 (checkpoint) vs 32``."""
    keys = sorted(set(found) | set(expected))
    return ", ".join(f"{k}: {found.get(k)!r} (checkpoint) vs {expected.get(k)!r}" for k in keys
                     if found.get(k) != expected.get(k))


def load_generator(
    source: str | os.PathLike | Mapping,
    expected_config: GeneratorConfig | Mapping | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[Generator, dict]:
    """Build the generator stored in a checkpoint (path or loaded dict); returns (model in eval mode, payload).

    With ``expected_config`` the checkpoint must hold exactly that model
    configuration. Weights that do not fit the stored configuration (missing,
    unexpected or misshapen tensors) are an error naming the checkpoint.
    """
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "checkpoint"
    payload = load_checkpoint(source, map_location) if isinstance(source, (str, os.PathLike)) else dict(source)
    stored = dict(payload.get("model_config") or {})
    if payload.get("format_version", 0) < 2:
        stored.setdefault("filter_bins", 0)
    config = GeneratorConfig.from_dict(stored, key=f"{name}: model_config")
    if expected_config is not None:
        expected = expected_config if isinstance(expected_config, GeneratorConfig) else GeneratorConfig.from_dict(expected_config)
        if expected != config:
            raise SpnRestoreError(
                f"{name}: checkpoint is for another model configuration ({config_difference(config.as_dict(), expected.as_dict())}); "
                "use the matching model settings or another checkpoint/work folder."
            )
    model = Generator(config)
    wanted, state = model.state_dict(), payload.get("model_state") or {}
    missing = sorted(set(wanted) - set(state))
    unexpected = sorted(set(state) - set(wanted))
    wrong = sorted(k for k in set(wanted) & set(state) if tuple(wanted[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        raise SpnRestoreError(
            f"{name}: weights do not fit the model configuration {config.as_dict()} (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}); the file is damaged or was edited."
        )
    model.load_state_dict(state)
    return model.eval(), payload
