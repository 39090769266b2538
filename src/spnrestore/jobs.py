"""Set-up shared by the workflow's scripts: log file, thread limits, error reporting.

Scripts stay thin: ``start_job(snakemake)`` then one call into the package, whose messages go to the rule's
log file.
"""

from __future__ import annotations

import logging
import os
import sys

from .log_setup import PACKAGE_LOGGER, add_handler, stream_handler

#: The handler :func:`start_job` gave the package's messages (one per job; a second call replaces it).
_job_handler: logging.Handler | None = None


def limit_threads(threads: int) -> None:
    """Make OpenCV, BLAS/OpenMP (and torch, if already imported) use ``threads`` threads."""
    threads = max(1, int(threads))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def start_job(smk) -> None:
    """Send stderr to the rule's log file, honour ``threads``, and send the messages of the package's
    loggers (level INFO and above, the bare text of each) to that stderr: the log file holds one line per
    message, as the package words it."""
    global _job_handler
    if smk.log:
        os.makedirs(os.path.dirname(os.path.abspath(smk.log[0])), exist_ok=True)
        sys.stderr = open(smk.log[0], "w", buffering=1, encoding="utf-8")
    limit_threads(getattr(smk, "threads", 1))
    if _job_handler is not None:
        logging.getLogger(PACKAGE_LOGGER).removeHandler(_job_handler)
    _job_handler = stream_handler(sys.stderr)
    add_handler(_job_handler, logging.INFO)
