"""Rule ``restore``: the residual of every computed method other than plain (the classic enhancers, the
restoration models: :mod:`spnrestore.methods`) of every JPEG of one camera's evaluated images, scored against
every fingerprint (:func:`spnrestore.spn.score_residual`). One job per camera: each model is loaded once.
(The plain residuals are scored by the rule ``score``, the originals' by ``develop``.)

The methods run in the job's main thread, one JPEG after the other; with ``threads`` > 1 a pool of that
many threads reads the next JPEGs and computes their plain residuals ahead of them, and scores the methods'
residuals behind them (numpy and OpenCV leave Python's lock while they work), at most ``threads`` JPEGs of
each kind in flight (a GPU scorer scores in the main thread). Where the jobs take turns on one GPU
(``--resources gpu=1``) this keeps the GPU busy instead of waiting for one core's residuals and scores. The
rows are the same, in the same order, whatever ``threads``.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Mapping

import pandas as pd

from ..atomic import save_csv
from ..jpeg import read_rgb
from ..methods import MethodContext, compute_residual, get_method
from ..paths import DrivePaths
from ..residual_files import keeps_residuals, save_residual
from ..spn.scoring import score_residuals
from .develop import ok_images
from .evaluation import SCORE_COLUMNS
from .roles import EVALUATED_ROLES, subset_of
from .scorer import fingerprint_scorer, load_fingerprints
from .spn import jpeg_residual

logger = logging.getLogger(__name__)


def scored_methods(methods: Iterable[str]) -> list:
    """The methods of ``methods`` that this rule computes: those computed from the JPEG, but plain."""
    return [m for m in map(get_method, methods) if m.computed and m.name != "plain"]


def restore_camera(
    develop_tables: Iterable[str | os.PathLike],
    roles: Mapping[str, str],
    qualities: Iterable[int],
    drive: DrivePaths | Mapping,
    cameras: Iterable[str],
    methods: Iterable[str],
    checkpoint: str | os.PathLike | None,
    sigma: float,
    table: str | os.PathLike,
    device: str | None = None,
    storage: Mapping | None = None,
    threads: int = 1,
) -> pd.DataFrame:
    """Compute every method of ``methods`` (computed ones, plain excepted) for every JPEG of one camera's
    test/holdout images and score it.

    Writes a table with the SCORE_COLUMNS, one row per image, quality, method and fingerprint of ``cameras``,
    and, when ``storage`` keeps residuals, ``SPN/<camera>/methods/<method>/<Q>/<image>.npy`` (the plain
    residual is then read from the drive; otherwise it is computed from the JPEG, :func:`.spn.jpeg_residual`).
    ``checkpoint``: the drive's model (method ``drive``; None where it has none). A checkpoint trained on
    residuals of other settings than ``sigma`` is refused, naming both values.
    """
    drive = DrivePaths.of(drive)
    context = MethodContext(sigma, str(checkpoint) if checkpoint else None, device)
    chosen = scored_methods(methods)
    fingerprints = load_fingerprints(drive, cameras)
    score = fingerprint_scorer(fingerprints)
    keep, qualities = keeps_residuals(storage), list(qualities)
    images = pd.concat([ok_images(t) for t in develop_tables], ignore_index=True)
    work = [(item, roles[item.image], quality) for item in images.itertuples()
            if roles[item.image] in EVALUATED_ROLES for quality in qualities]

    def read(task):
        item, _, quality = task
        rgb = read_rgb(drive.jpeg(item.camera, quality, item.image))
        return (rgb,) + jpeg_residual(drive, item.camera, quality, item.image, sigma, storage, rgb)

    def rows_of(task, residuals, rgb, name):
        item, role, quality = task
        if score.on_gpu:
            found = {method: score(residual, rgb, label) for method, residual, label in residuals}
        else:  # each fingerprint's term transformed once for every method
            found = score_residuals({method: residual for method, residual, _ in residuals}, rgb, fingerprints,
                                    name)
        return [{"camera": item.camera, "image": item.image, "role": role, "subset": subset_of(role),
                 "quality": quality, "method": method, **row, "match": row["fingerprint"] == item.camera}
                for method, _, _ in residuals for row in found[method]]

    threads = max(1, int(threads))
    rows, ahead, behind = [], deque(), deque()
    with ThreadPoolExecutor(threads) as pool:
        for k, task in enumerate(work):
            while len(ahead) < threads and k + len(ahead) < len(work):
                ahead.append(pool.submit(read, work[k + len(ahead)]))
            rgb, plain, name = ahead.popleft().result()
            item, role, quality = task
            residuals = []
            for method in chosen:
                residual = compute_residual(method, rgb, plain, quality, context)
                target = drive.method_residual(item.camera, method.name, quality, item.image)
                if keep:
                    save_residual(target, residual, storage)
                residuals.append((method.name, residual, str(target) if keep else f"{name} ({method.name})"))
            if score.on_gpu:  # the GPU scores in this thread, between the model's turns (nothing is behind)
                rows += rows_of(task, residuals, rgb, name)
            else:
                behind.append(pool.submit(rows_of, task, residuals, rgb, name))
            while len(behind) > threads or (behind and behind[0].done()):
                rows += behind.popleft().result()
            if k + 1 == len(work) or work[k + 1][0] is not item:
                logger.info(f"{', '.join(m.name for m in chosen) or 'no method'}: {item.camera}/{item.image} "
                            f"({role})")
        while behind:
            rows += behind.popleft().result()
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    save_csv(table, frame)
    return frame
