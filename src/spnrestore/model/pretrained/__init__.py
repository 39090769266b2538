"""The restorers shipped with the package, about 1 MB each (figures in docs/model.md):

* ``restorer.pt``, the shipped model: the synthetic base fine-tuned on real cameras by ``spnrestore pretrain
  --settings config/pretrain-real.yaml`` (:mod:`spnrestore.model.pretrain`);
* ``synthetic.pt``, its base, pretrained on synthetic sensors only by ``spnrestore pretrain --settings
  config/pretrain.yaml`` (the model shipped until 2026-12-07; the method ``synthetic``).

 ``spnrestore restore``/``identify`` load it unless ``--checkpoint`` names another model, and a
drive uses it without training with ``model.checkpoint: pretrained``. Importing this module does not import torch.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

KEYWORD = "pretrained"
"""The name that stands for the shipped model wherever a checkpoint path is asked for."""
SYNTHETIC_KEYWORD = "pretrained-synthetic"
"""The name that stands for the shipped model's synthetic base (``synthetic.pt``)."""


def pretrained_checkpoint() -> Path:
    """Path of the shipped model file."""
    return Path(str(files(__name__).joinpath("restorer.pt")))


def synthetic_checkpoint() -> Path:
    """Path of the shipped model's synthetic base."""
    return Path(str(files(__name__).joinpath("synthetic.pt")))


def resolve_checkpoint(value: str | None) -> str | None:
    """A checkpoint setting as a path: :data:`KEYWORD` is the shipped model, :data:`SYNTHETIC_KEYWORD` its
    synthetic base, ``''``/``none``/None no model, anything else is returned as given."""
    if value is None or str(value).strip().lower() in ("", "none"):
        return None
    keyword = str(value).strip()
    if keyword == KEYWORD:
        return str(pretrained_checkpoint())
    return str(synthetic_checkpoint()) if keyword == SYNTHETIC_KEYWORD else str(value)
