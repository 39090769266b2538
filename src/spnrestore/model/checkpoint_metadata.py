"""A checkpoint's metadata without torch: what planning needs from a model file (its format and the residual
settings it was trained on) without importing torch (seconds) in every ``snakemake -n``.

A checkpoint written by :func:`spnrestore.model.checkpoint.save_checkpoint` is a zip archive whose
``<name>/data.pkl`` holds the payload dictionary; tensors in it refer to storages in other members. The
restricted unpickler here builds plain Python values only: every tensor becomes ``None`` (storages are not
read), and any class other than torch's tensor rebuilders and ``collections.OrderedDict`` is refused, so
reading cannot run code.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

from ..errors import SpnRestoreError

FORMAT = "spnrestore.restorer"


def _no_tensor(*args, **kwargs) -> None:
    return None


class _MetadataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch" or module.startswith("torch."):
            return _no_tensor  # tensor and storage rebuilders, storage types: no tensor is built
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")

    def persistent_load(self, pid: Any) -> None:
        return None


def read_metadata(path: str | os.PathLike) -> dict:
    """The payload of the checkpoint at ``path`` with every tensor as ``None``. Raises
    :class:`SpnRestoreError` naming the file when it is missing, not a checkpoint, or not an spnrestore one."""
    path = Path(path)
    if not path.is_file():
        raise SpnRestoreError(f"{path}: checkpoint does not exist; train a model first or fix the path.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not names:
                raise SpnRestoreError(f"{path}: truncated or not a PyTorch checkpoint (no data.pkl); delete it "
                                      "and train again.")
            payload = _MetadataUnpickler(io.BytesIO(archive.read(min(names, key=len)))).load()
    except zipfile.BadZipFile as exc:
        raise SpnRestoreError(f"{path}: truncated or not a PyTorch checkpoint ({exc}); delete it and train again "
                              "(a killed run resumes from its last complete checkpoint).") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise SpnRestoreError(f"{path}: refused or corrupt checkpoint ({exc}); only load checkpoints written "
                              "by spnrestore.") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise SpnRestoreError(f"{path}: not an spnrestore checkpoint (no format '{FORMAT}' marker).")
    return payload


def check_residual_settings(payload: Mapping, residual: Mapping | None, name: str | os.PathLike) -> None:
    """Refuse a model whose checkpoint ``payload`` records residual settings other than ``residual`` (those of
    the residuals it is about to restore, ``spn.residual_settings(sigma)``), naming both values; a checkpoint
    without the record (older files), or no ``residual`` given, passes unchecked."""
    from ..spn import settings_difference

    recorded = payload.get("residual")
    diffs = settings_difference(recorded, dict(residual)) if residual is not None and recorded is not None else []
    if diffs:
        raise SpnRestoreError(
            f"{name}: the model was trained on residuals made with other settings ({'; '.join(diffs)}); "
            "use the training's settings (e.g. --sigma / spn.sigma) or another checkpoint.")
