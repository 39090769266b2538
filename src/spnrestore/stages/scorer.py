"""The fingerprints of a drive and the scorer of residuals against them, shared by the rules that score:
``develop`` (the originals), ``score`` (the JPEGs) and ``restore`` (the restored residuals)."""

from __future__ import annotations

import logging
import os
from typing import Callable, Iterable, Mapping

import numpy as np

from ..paths import DrivePaths
from ..residual_files import load_residual
from ..spn import score_residual

logger = logging.getLogger(__name__)


#: Columns of a batch's score table (rules develop and score): one row per residual and fingerprint.
SCORE_TABLE_COLUMNS = ["camera", "image", "role", "quality", "fingerprint", "pce", "ncc", "match"]
#: Files whose presence says an NVIDIA driver is loaded: without one, scoring does not import torch to ask.
NVIDIA_DEVICE_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia/version")


def fingerprint_scorer(fingerprints: Mapping[str, np.ndarray]) -> Callable:
    """``score(residual, image, name) -> rows``: :func:`spnrestore.spn.score_residual` against
    ``fingerprints``, on a CUDA GPU (:class:`spnrestore.spn.torch_scoring.TorchScorer`, fingerprints uploaded
    once) when one is present, else with numpy; both give the same rows (PCE within float32 FFT rounding,
    ``tests/test_torch_scoring.py``). ``score.on_gpu`` says which. Torch is imported only where an NVIDIA
    driver is loaded."""
    if any(os.path.exists(f) for f in NVIDIA_DEVICE_FILES):
        try:
            from ..spn.torch_scoring import TorchScorer, torch_device_available
        except ImportError:  # torch missing: the numpy path
            pass
        else:
            if torch_device_available():
                logger.info("scoring on the GPU (torch FFT)")
                scorer = TorchScorer(fingerprints, "cuda")

                def score(residual, image, name):
                    return scorer.score(residual, image, name)

                score.on_gpu = True
                return score

    def score(residual, image, name):
        return score_residual(residual, image, fingerprints, name)

    score.on_gpu = False
    return score


def load_fingerprints(drive: DrivePaths | Mapping, cameras: Iterable[str]) -> dict[str, np.ndarray]:
    """Fingerprint arrays of ``cameras`` on the drive, each checked like a stored residual."""
    drive = DrivePaths.of(drive)
    return {camera: load_residual(drive.fingerprint(camera)) for camera in cameras}
