"""Rule ``train``: the restoration model trained on the drive's shards (:mod:`spnrestore.model.train`),
selected on whole validation images scored against the training cameras' fingerprints."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Mapping

from ..atomic import write_bytes
from ..paths import DrivePaths
from ..spn import residual_settings

logger = logging.getLogger(__name__)


def train_restorer(
    dataset_dir: str | os.PathLike,
    checkpoint: str | os.PathLike,
    work_dir: str | os.PathLike,
    settings: Mapping,
    drive: DrivePaths | Mapping,
    cameras: Iterable[str],
    sigma: float,
    logs_out: Mapping[str, str | os.PathLike],
) -> dict:
    """Train (or resume) the restorer with the training ``settings`` and write the selected model to
    ``checkpoint``, recording the residual settings (``sigma``) its inputs were made with.

    ``logs_out`` maps ``train_log`` and ``val_log`` to the rule's declared copies of the work folder's logs:
    Snakemake deletes a rule's outputs before re-running it, and the logs in the work folder must survive
    for a killed run to resume with its whole history. An interrupted run (Ctrl-C, SIGTERM) ends the job with
    a non-zero status, its resumable ``last.pt`` saved. Returns the training metrics."""
    from ..model.train import train

    drive = DrivePaths.of(drive)
    try:
        metrics = train(data=dataset_dir, out_checkpoint=checkpoint, work_dir=work_dir, cfg=settings,
                        fingerprints={camera: drive.fingerprint(camera) for camera in cameras},
                        residual=residual_settings(sigma))
    except KeyboardInterrupt:  # Ctrl-C: training saved its last.pt and said so; end without a traceback
        logger.warning("training interrupted (Ctrl-C): run the workflow again to resume from the last checkpoint")
        raise SystemExit(130) from None
    logger.info(f"final metrics: {metrics}")
    for name, out in logs_out.items():
        write_bytes(out, (Path(work_dir) / f"{name}.csv").read_bytes())
    return metrics
