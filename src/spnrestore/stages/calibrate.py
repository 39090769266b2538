"""Rule ``calibrate``: per camera, the residual method to use at each JPEG quality, chosen on the camera's
own fingerprint images by leave-one-out (:mod:`spnrestore.methods.calibration`), written to
``SPN/<camera>/calibration.json`` with the figures it was chosen on."""

from __future__ import annotations

import logging
import os
from typing import Iterable, Mapping

from ..methods import MethodContext, get_method
from ..methods.calibration import CalibrationSet, calibrate, save_calibration
from ..paths import DrivePaths
from .scorer import load_fingerprints

logger = logging.getLogger(__name__)


def calibrate_camera(
    camera: str,
    drive: DrivePaths | Mapping,
    cameras: Iterable[str],
    methods: Iterable[str],
    checkpoint: str | os.PathLike | None,
    qualities: Iterable[int],
    sigma: float,
    threshold: float,
    settings: Mapping | None,
    subsampling: str,
    out: str | os.PathLike,
    device: str | None = None,
) -> dict:
    """Calibrate ``camera`` among the computed methods of ``methods`` (``checkpoint``: the drive's model) and
    write ``out``; the non-matches come from the other ``cameras``' fingerprints."""
    drive = DrivePaths.of(drive)
    cset = CalibrationSet.load(drive.calibration_set(camera))
    context = MethodContext(sigma, str(checkpoint) if checkpoint else None, device)
    result = calibrate(cset, [get_method(m) for m in methods], context, load_fingerprints(drive, cameras),
                       qualities, threshold, settings, subsampling, camera)
    save_calibration(out, result)
    for q, choice in result["qualities"].items():
        logger.info(f"calibration {camera} Q{q}: {choice['chosen']} ({choice['reason']})")
    logger.info(f"calibration {camera}: {result['note']}")
    return result
