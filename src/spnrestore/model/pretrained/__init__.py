"""The restorer shipped with the package (``restorer.pt``, about 1 MB), pretrained on synthetic sensors by
``spnrestore pretrain --settings config/pretrain.yaml`` (:mod:`spnrestore.model.pretrain`; figures in
docs/model.md). ``spnrestore restore``/``identify`` load it unless ``--checkpoint`` names another model, and a
drive uses it without training with ``model.checkpoint: pretrained``. Importing this module does not import torch.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

KEYWORD = "pretrained"
"""The name that stands for the shipped model wherever a checkpoint path is asked for."""


def pretrained_checkpoint() -> Path:
    """Path of the shipped model file."""
    return Path(str(files(__name__).joinpath("restorer.pt")))


def resolve_checkpoint(value: str | None) -> str | None:
    """A checkpoint setting as a path: :data:`KEYWORD` is the shipped model, ``''``/``none``/None no model,
    anything else is returned as given."""
    if value is None or str(value).strip().lower() in ("", "none"):
        return None
    return str(pretrained_checkpoint()) if str(value).strip() == KEYWORD else str(value)
