"""Scoring a residual against camera fingerprints, and the identification decision: the one path that the
score rule, the evaluation, the image validation of training, the figures and ``spnrestore identify`` take.

:func:`score_residual` gives the PCE (and NCC) of a residual against the fingerprint term ``K * I`` of
every camera of the image's size; an image turned by the camera without an orientation tag (its size is
the transpose of the fingerprint's) is scored against both quarter turns and keeps the higher PCE.
:func:`decide` turns a table of such scores into decisions: the highest-PCE camera when its PCE is above
the threshold, else ``unknown``.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np

from spnrestore.errors import BadImageError, SpnRestoreError

from ._checks import as_float_map, check_same_size, label
from .detection import _zero_shift_scores, _zero_shift_scores_many, residual_spectrum
from .fingerprint import gray_intensity

__all__ = ["UNKNOWN", "score_residual", "score_residuals", "score_pair", "decide"]

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"


def usable_fingerprints(fingerprints: Mapping, shape: tuple, name: str) -> list[tuple[str, object]]:
    """(camera, K) of the ``fingerprints`` of a residual's ``shape`` or its transpose; each other one is not
    scored, which is logged (a warning naming the file ``name`` and both sizes)."""
    usable = []
    for camera, k in fingerprints.items():
        if tuple(k.shape) in (tuple(shape), tuple(shape)[::-1]):
            usable.append((camera, k))
        else:
            logger.warning(f"not scored: {name} is {shape[1]}x{shape[0]}, the fingerprint of {camera!r} "
                           f"is {k.shape[1]}x{k.shape[0]} (crop or rotate the image to the sensor size)")
    return usable


def score_residual(
    residual: np.ndarray,
    image: np.ndarray,
    fingerprints: Mapping[str, np.ndarray],
    name: str = "residual",
    *,
    with_ncc: bool = True,
) -> list[dict]:
    """Rows ``{fingerprint, pce, ncc}`` of ``residual`` against each fingerprint's term ``K * I(image)``.

    ``image`` is the tested image (uint8 RGB or gray) whose residual is ``residual``. A residual of the
    transposed size (an image turned by the camera without an orientation tag) is turned a quarter turn
    each way and the higher PCE is kept: the direction is unknown, which doubles the chances of a chance
    non-match peak for those images only. A fingerprint of another size is not scored; the mismatch is
    logged (a warning) with the file ``name``. ``with_ncc=False`` leaves ``ncc`` out (NaN) for callers that rank by PCE
    alone.

    The PCE is :func:`~spnrestore.spn.pce` at zero shift (equal within float32 FFT rounding, relative 1e-5)
    computed from the residual's spectrum, once per residual (and quarter turn) for all fingerprints: per
    fingerprint one real FFT of the term and no inverse FFT (:func:`~spnrestore.spn.pce_with_spectrum`).
    """
    usable = usable_fingerprints(fingerprints, residual.shape, name)
    results = _score_all(residual, image, [k for _, k in usable], with_ncc)
    return [{"fingerprint": camera, "pce": value, "ncc": correlation}
            for (camera, _), (value, correlation, _) in zip(usable, results)]


def score_residuals(
    residuals: Mapping[str, np.ndarray],
    image: np.ndarray,
    fingerprints: Mapping[str, np.ndarray],
    name: str = "residual",
    *,
    with_ncc: bool = True,
) -> dict[str, list[dict]]:
    """:func:`score_residual` of several residuals of one image (its residual methods), by key: the same rows,
    with each fingerprint's term transformed once for all of them. M residuals against F fingerprints cost
    M + F FFTs and M x F cheap products, not M x F FFTs (``tests/test_spn_scoring.py``)."""
    keys = list(residuals)
    if not keys:
        return {}
    shape = residuals[keys[0]].shape
    if any(residuals[k].shape != shape for k in keys):
        return {k: score_residual(residuals[k], image, fingerprints, name, with_ncc=with_ncc) for k in keys}
    usable = usable_fingerprints(fingerprints, shape, name)
    best: dict = {key: [None] * len(usable) for key in keys}
    for turn in (0, 1, -1):
        todo = [i for i, (_, k) in enumerate(usable) if turn in _turns(shape, k.shape)]
        if not todo:
            continue
        gray = _scaled_gray(np.rot90(image, turn), usable[todo[0]][1].shape)
        specs = [residual_spectrum(np.rot90(residuals[key], turn)) for key in keys]
        for i in todo:
            for key, (value, correlation) in zip(keys, _zero_shift_scores_many(
                    specs, gray, _float_fingerprint(usable[i][1]), with_ncc)):
                if best[key][i] is None or value > best[key][i][0]:
                    best[key][i] = (value, correlation, turn)
        del specs, gray
    return {key: [{"fingerprint": camera, "pce": found[0], "ncc": found[1]}
                  for (camera, _), found in zip(usable, best[key])] for key in keys}


def score_pair(residual: np.ndarray, image: np.ndarray, k: np.ndarray, with_ncc: bool = True) -> tuple[float, float, int]:
    """(PCE, NCC, quarter turn) of ``residual`` against the term ``K * I(image)`` of one fingerprint ``k`` of
    the residual's size or of its transpose; for the transpose, the turn (1 or -1, of ``np.rot90``) of the
    residual and image with the higher PCE. NCC is NaN when ``with_ncc`` is False."""
    return _score_all(residual, image, [k], with_ncc)[0]


def _turns(residual_shape, k_shape) -> tuple[int, ...]:
    return (0,) if tuple(k_shape) == tuple(residual_shape) else (1, -1)


def _score_all(residual, image, ks, with_ncc) -> list[tuple[float, float, int]]:
    """(PCE, NCC, turn) of ``residual`` against each fingerprint of ``ks`` (each of the residual's size or its
    transpose): the zero-shift PCE of :func:`pce`, via the residual's spectrum, computed once per quarter turn
    and shared by all fingerprints (:func:`~spnrestore.spn.detection.pce_with_spectrum`); the NCC of
    :func:`ncc` (float64 sums, the residual's once per turn). One turn's spectrum is held at a time."""
    best: list = [None] * len(ks)
    for turn in (0, 1, -1):
        todo = [i for i, k in enumerate(ks) if turn in _turns(residual.shape, k.shape)]
        if not todo:
            continue
        spec = gray = None
        for i in todo:
            k = ks[i]
            if gray is None:  # the checks of fingerprint_term and pce, in their order; once per quarter turn
                gray = _scaled_gray(np.rot90(image, turn), k.shape)  # I = gray / 255
                spec = residual_spectrum(np.rot90(residual, turn))
            value, correlation = _zero_shift_scores(spec, gray, _float_fingerprint(k), with_ncc)
            if best[i] is None or value > best[i][0]:
                best[i] = (value, correlation, turn)
        del spec, gray
    return best


def _float_fingerprint(k) -> np.ndarray:
    """``k`` as a C-contiguous float32 2-D array (as :func:`fingerprint_term` converts it). A float32 array is
    used as is: a NaN or infinity in it makes the scores non-finite, which the scoring reports."""
    a = np.asarray(k)
    if a.dtype == np.float32 and a.ndim == 2 and a.flags.c_contiguous:
        return a
    return as_float_map(a, "fingerprint")


def _scaled_gray(rgb, shape) -> np.ndarray:
    """``rgb2gray(rgb) / 255`` (float32) with the checks of :func:`fingerprint_term` against a fingerprint of
    ``shape``: ``term = _scaled_gray(rgb, k.shape) * k`` equals ``fingerprint_term(k, rgb)`` bit for bit."""
    a = np.asarray(rgb)
    if a.ndim not in (2, 3):
        raise BadImageError(label(None), f"has shape {a.shape}", "expected H x W x 3 (RGB) or H x W")
    check_same_size(a.shape, shape, "image", "fingerprint")
    i = gray_intensity(a)
    if not np.isfinite(i).all():
        raise BadImageError(label(None), "contains NaN or infinite values")
    return i


def decide(scores, threshold: float, keys: Sequence[str] = ("camera", "image")):
    """Per tested residual (the rows sharing ``keys``): the decision of source-camera identification.

    ``scores``: a DataFrame (or rows) with columns ``keys``, ``fingerprint`` and ``pce``. Returns one row per
    tested residual, in order of first appearance, with ``keys``, ``best`` (the highest-PCE fingerprint),
    ``best_pce``, ``decision`` (``best`` when ``best_pce > threshold``, else ``unknown``) and, when the
    table has a ``camera`` column (the true camera), ``correct``. An empty table gives an empty result; a
    missing column or a non-finite PCE is an error.
    """
    import pandas as pd

    frame = pd.DataFrame(scores)
    keys = list(keys)
    missing = [c for c in (*keys, "fingerprint", "pce") if c not in frame.columns]
    if missing and len(frame):
        raise SpnRestoreError(f"scores table: no column {missing[0]!r} (columns: {list(frame.columns)})")
    columns = [*keys, "best", "best_pce", "decision", *(["correct"] if "camera" in frame.columns else [])]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    values = pd.to_numeric(frame["pce"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise SpnRestoreError("scores table: a PCE is missing, not a number or infinite; recompute the scores")
    best = frame.loc[frame.assign(pce=values).groupby(keys, sort=False)["pce"].idxmax()]
    accepted = best["pce"].to_numpy(dtype=float) > threshold
    out = best[keys].assign(best=best["fingerprint"].to_numpy(), best_pce=best["pce"].to_numpy(dtype=float),
                            decision=np.where(accepted, best["fingerprint"].astype(object).to_numpy(), UNKNOWN))
    if "camera" in frame.columns:
        out["correct"] = out["decision"].to_numpy() == best["camera"].to_numpy()
    return out[columns].reset_index(drop=True)
