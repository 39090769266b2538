"""Evaluation: plain, restored and original residuals of held-out images scored against every fingerprint.

``plain`` is the standard residual of the JPEG, ``restored`` the plain residual
after the trained model, ``original`` the residual of the uncompressed
development (upper bound). Test images of cameras seen in training form the
``seen`` subset, every non-fingerprint image of a camera held out of training
the ``holdout`` subset; the two are reported separately.
"""

from __future__ import annotations

import os
from typing import Callable, Iterable, Mapping

import pandas as pd

from .atomic import save_csv
from .batch_develop import jpeg_path
from .batch_spn import load_fingerprints, ok_images, score_residual
from .identification import metrics_table
from .jpeg import read_rgb
from .residual_files import load_residual, residual_path, save_residual

EVALUATED_ROLES = ("test", "holdout")
SCORE_COLUMNS = ["camera", "image", "role", "subset", "quality", "method", "fingerprint", "pce", "ncc", "match"]


def subset_of(role: str) -> str:
    """``holdout`` for images of cameras held out of training, else ``seen``."""
    return "holdout" if role == "holdout" else "seen"


def restore_camera(
    develop_tables: Iterable[str | os.PathLike],
    roles: Mapping[str, str],
    qualities: Iterable[int],
    compressed: str | os.PathLike,
    spn: str | os.PathLike,
    checkpoint: str | os.PathLike,
    fingerprints: Mapping[str, str | os.PathLike],
    table: str | os.PathLike,
    device: str | None = None,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Restore the residual of every JPEG of one camera's test/holdout images and score it.

    One job per camera: the model is loaded once for all its batches.
    Writes ``SPN/<camera>/restored/<Q>/<image>.npy`` (+ preview) and a table with
    the SCORE_COLUMNS of the ``restored`` method.
    """
    from .restore import load_restorer, restore_residual

    restorer = load_restorer(checkpoint, device)
    arrays = load_fingerprints(fingerprints)
    rows = []
    images = pd.concat([ok_images(t) for t in develop_tables], ignore_index=True)
    for item in images.itertuples():
        role = roles[item.image]
        if role not in EVALUATED_ROLES:
            continue
        for quality in qualities:
            rgb = read_rgb(jpeg_path(compressed, item.camera, quality, item.image))
            plain = load_residual(residual_path(spn, item.camera, quality, item.image))
            restored = restore_residual(restorer, rgb, plain, quality)
            target = residual_path(spn, item.camera, f"restored/{quality}", item.image)
            save_residual(target, restored)
            for score in score_residual(restored, rgb, arrays, str(target), log):
                rows.append({"camera": item.camera, "image": item.image, "role": role, "subset": subset_of(role),
                             "quality": quality, "method": "restored", **score,
                             "match": score["fingerprint"] == item.camera})
        log(f"restored {item.camera}/{item.image} ({role})")
    frame = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    save_csv(table, frame)
    return frame


def evaluation_scores(spn_scores: pd.DataFrame, restored: pd.DataFrame, qualities: Iterable[int]) -> pd.DataFrame:
    """Plain and original rows of the evaluated images from the SPN stage's scores, plus the restored rows.

    The ``original`` score does not depend on the JPEG quality; it is repeated for
    every quality so each quality has its three methods side by side.
    """
    evaluated = spn_scores[spn_scores["role"].isin(EVALUATED_ROLES)].assign(
        subset=lambda f: f["role"].map(subset_of))
    plain = evaluated[evaluated["quality"] != "original"].assign(method="plain")
    original = evaluated[evaluated["quality"] == "original"]
    originals = pd.concat([original.assign(quality=str(q), method="original") for q in qualities], ignore_index=True)
    frames = [plain, originals, restored.assign(quality=restored["quality"].astype(str))]
    scores = pd.concat(frames, ignore_index=True)[SCORE_COLUMNS]
    scores["quality"] = scores["quality"].astype(int)
    return scores.sort_values(["subset", "camera", "image", "quality", "method", "fingerprint"]).reset_index(drop=True)


def write_evaluation(
    restored_tables: Iterable[str | os.PathLike],
    spn_scores: str | os.PathLike,
    qualities: Iterable[int],
    threshold: float,
    scores_out: str | os.PathLike,
    metrics_out: str | os.PathLike,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``scores.csv`` (every score of the three methods) and ``metrics.csv`` (per subset, camera,
    quality and method, with ``camera == 'all'`` rows over all cameras of a subset)."""
    read = dict(dtype={"camera": str, "image": str, "fingerprint": str, "quality": str}, keep_default_na=False)
    restored = pd.concat([pd.read_csv(t, **read) for t in restored_tables], ignore_index=True)
    scores = evaluation_scores(pd.read_csv(spn_scores, **read), restored, qualities)
    metrics = metrics_table(scores, ["subset", "camera", "quality", "method"], threshold)
    metrics = metrics.sort_values(["subset", "quality", "method", "camera"], ascending=[False, False, True, True])
    save_csv(scores_out, scores)
    save_csv(metrics_out, metrics)
    return scores, metrics
