"""Set-up shared by the workflow's scripts: log file, thread limits, error reporting.

Scripts stay thin: ``log = start_job(snakemake)`` then one call into the package.
"""

from __future__ import annotations

import os
import sys
from typing import Callable


def limit_threads(threads: int) -> None:
    """Make OpenCV, BLAS/OpenMP (and torch, if already imported) use ``threads`` threads."""
    threads = max(1, int(threads))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def start_job(smk) -> Callable[[str], None]:
    """Send stderr to the rule's log file, honour ``threads``; return a log function."""
    if smk.log:
        os.makedirs(os.path.dirname(os.path.abspath(smk.log[0])), exist_ok=True)
        sys.stderr = open(smk.log[0], "w", buffering=1, encoding="utf-8")
    limit_threads(getattr(smk, "threads", 1))

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    return log
