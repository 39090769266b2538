"""Rule ``restore``: the restored residual of every JPEG of one camera's evaluated images, scored against
every fingerprint (:func:`spnrestore.spn.score_residual`). One job per camera: the model is loaded once.

The model runs in the job's main thread, one JPEG after the other; with ``threads`` > 1 a pool of that many
threads reads the next JPEGs and computes their plain residuals ahead of it, and scores the restored residuals
behind it (numpy and OpenCV leave Python's lock while they work), at most ``threads`` JPEGs of each kind in
flight (a GPU scorer scores in the main thread). Where the jobs take turns on one GPU (``--resources gpu=1``)
this keeps the GPU busy instead of waiting for one core's residuals and scores. The rows are the same, in the
same order, whatever ``threads``.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Mapping

import pandas as pd

from ..atomic import save_csv
from ..jpeg import read_rgb
from ..paths import DrivePaths
from ..residual_files import keeps_residuals, save_residual
from ..spn import residual_settings
from .develop import ok_images
from .evaluation import SCORE_COLUMNS
from .roles import EVALUATED_ROLES, subset_of
from .scorer import fingerprint_scorer, load_fingerprints
from .spn import jpeg_residual


def restore_camera(
    develop_tables: Iterable[str | os.PathLike],
    roles: Mapping[str, str],
    qualities: Iterable[int],
    drive: DrivePaths | Mapping,
    cameras: Iterable[str],
    checkpoint: str | os.PathLike,
    sigma: float,
    table: str | os.PathLike,
    device: str | None = None,
    log: Callable[[str], None] = print,
    storage: Mapping | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Restore the residual of every JPEG of one camera's test/holdout images and score it.

    Writes a table with the SCORE_COLUMNS of the ``restored`` method, scored against the fingerprints of
    ``cameras``, and, when ``storage`` keeps residuals, ``SPN/<camera>/restored/<Q>/<image>.npy`` (the plain
    residual is then read from the drive; otherwise it is computed from the JPEG, :func:`.spn.jpeg_residual`).
    A checkpoint trained on residuals of other settings than ``sigma`` is refused, naming both values.
    """
    from ..model.inference import load_restorer, restore_residual

    drive = DrivePaths.of(drive)
    restorer = load_restorer(checkpoint, device, residual=residual_settings(sigma))
    score = fingerprint_scorer(load_fingerprints(drive, cameras), log)
    keep, qualities = keeps_residuals(storage), list(qualities)
    images = pd.concat([ok_images(t) for t in develop_tables], ignore_index=True)
    work = [(item, roles[item.image], quality) for item in images.itertuples()
            if roles[item.image] in EVALUATED_ROLES for quality in qualities]

    def read(task):
        item, _, quality = task
        rgb = read_rgb(drive.jpeg(item.camera, quality, item.image))
        return (rgb,) + jpeg_residual(drive, item.camera, quality, item.image, sigma, storage, rgb)

    def rows_of(task, restored, rgb, name):
        item, role, quality = task
        return [{"camera": item.camera, "image": item.image, "role": role, "subset": subset_of(role),
                 "quality": quality, "method": "restored", **row, "match": row["fingerprint"] == item.camera}
                for row in score(restored, rgb, name, log)]

    threads = max(1, int(threads))
    rows, ahead, behind = [], deque(), deque()
    with ThreadPoolExecutor(threads) as pool:
        for k, task in enumerate(work):
            while len(ahead) < threads and k + len(ahead) < len(work):
                ahead.append(pool.submit(read, work[k + len(ahead)]))
            rgb, plain, name = ahead.popleft().result()
            item, role, quality = task
            restored = restore_residual(restorer, rgb, plain, quality)
            target = drive.restored(item.camera, quality, item.image)
            if keep:
                save_residual(target, restored, storage)
            label = str(target) if keep else f"{name} (restored)"
            if score.on_gpu:  # the GPU scores in this thread, between the model's turns (nothing is behind)
                rows += rows_of(task, restored, rgb, label)
            else:
                behind.append(pool.submit(rows_of, task, restored, rgb, label))
            while len(behind) > threads or (behind and behind[0].done()):
                rows += behind.popleft().result()
            if k + 1 == len(work) or work[k + 1][0] is not item:
                log(f"restored {item.camera}/{item.image} ({role})")
        while behind:
            rows += behind.popleft().result()
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    save_csv(table, frame)
    return frame
