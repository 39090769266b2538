"""VGG-16 convolutional features in plain torch (no torchvision), loadable from the standard ImageNet file.

The layer layout and ``state_dict`` key names are those of torchvision's
``vgg16().features`` (``features.0.weight`` ... ``features.28.bias``), so the
file users download as ``vgg16-397923af.pth`` loads as it is: only its
``features.*`` tensors are taken (the ``classifier.*`` ones are ignored). The
file is loaded with ``weights_only=True`` after its SHA-256 is checked. Nothing
is ever downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from ..checksums import file_sha256
from ..errors import SpnRestoreError

VGG16_FILE = "vgg16-397923af.pth"
VGG16_SHA256 = "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0"
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
DEFAULT_LAYERS = ("relu1_2", "relu2_2")


def _relu_indices() -> dict[str, int]:
    """``relu{block}_{conv}`` -> index of that ReLU in ``features``."""
    names, index, block, conv = {}, 0, 1, 0
    for item in VGG16_LAYOUT:
        if item == "M":
            block, conv, index = block + 1, 0, index + 1
        else:
            conv += 1
            names[f"relu{block}_{conv}"] = index + 1
            index += 2
    return names


RELU_INDEX = _relu_indices()


class VGG16Features(nn.Module):
    """``features`` of VGG-16 up to the deepest requested ReLU; returns the requested activations.

    ``forward(x)``: x float (B, 3, H, W) -> list of activations, one per name in
    ``layers`` (in that order).
    """

    def __init__(self, layers: Iterable[str] = DEFAULT_LAYERS):
        super().__init__()
        self.layers = tuple(layers)
        unknown = [name for name in self.layers if name not in RELU_INDEX]
        if unknown or not self.layers:
            raise SpnRestoreError(f"vgg layers {list(self.layers)}: unknown name(s) {unknown}; use {sorted(RELU_INDEX)}.")
        self.taps = [RELU_INDEX[name] for name in self.layers]
        modules, cin = [], 3
        for item in VGG16_LAYOUT:
            if len(modules) > max(self.taps):
                break
            if item == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=False)]
                cin = item
        self.features = nn.Sequential(*modules[: max(self.taps) + 1])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = {}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in self.taps:
                out[i] = x
        return [out[i] for i in self.taps]


def load_vgg16_features(
    path: str | os.PathLike, sha256: str = VGG16_SHA256, layers: Iterable[str] = DEFAULT_LAYERS
) -> VGG16Features:
    """VGG-16 features with the weights of ``path`` (frozen, eval mode, on CPU).

    ``path`` is a torch file whose ``features.N.weight/bias`` tensors follow
    torchvision's layout. Its SHA-256 must equal ``sha256`` (the default is the
    ImageNet file ``vgg16-397923af.pth``); a mismatch, a file that is not a
    plain tensor dictionary, or missing/misshapen tensors raise
    :class:`SpnRestoreError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise SpnRestoreError(f"{path}: VGG-16 weights file does not exist; download {VGG16_FILE} or unset it.")
    actual = file_sha256(path)
    if actual != sha256.lower():
        raise SpnRestoreError(
            f"{path}: SHA-256 mismatch for the VGG-16 weights: expected {sha256.lower()}, found {actual}. "
            f"Use the original {VGG16_FILE} (re-download it if it is truncated) or set the expected hash of your file."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable or unsafe files
        raise SpnRestoreError(f"{path}: cannot be read as a weights-only torch file ({exc}).") from exc
    model = VGG16Features(layers)
    wanted = model.state_dict()
    if not isinstance(state, dict):
        raise SpnRestoreError(f"{path}: expected a dictionary of tensors, found {type(state).__name__}.")
    missing = [k for k in wanted if k not in state]
    wrong = [k for k in wanted if k in state and tuple(state[k].shape) != tuple(wanted[k].shape)]
    if missing or wrong:
        raise SpnRestoreError(
            f"{path}: not VGG-16 features weights (missing {missing[:4]}, wrong shape {wrong[:4]}); "
            f"use {VGG16_FILE}."
        )
    model.load_state_dict({k: state[k] for k in wanted})
    model.requires_grad_(False)
    return model.eval()
