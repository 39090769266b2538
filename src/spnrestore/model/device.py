"""The one choice of torch device, for training and inference."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def pick_device(name: str | torch.device | None, key: str = "device") -> torch.device:
    """``name`` as a device: ``'auto'`` or None -> CUDA when available, else CPU. A CUDA device that is not
    available is a ConfigError naming ``key`` (the setting or option the name came from)."""
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"{key} = {name!r} is not a torch device ({exc}); use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{key} = {str(name)!r} but no CUDA device is available; use 'auto' or 'cpu'.")
    return device
