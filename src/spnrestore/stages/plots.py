"""Rule ``plots``: the report's figures from the evaluation's scores, the training logs and the drive.

The figures themselves are drawn by :mod:`spnrestore.figures`; this stage picks what to draw and reads (or,
when the drive does not keep them, computes) the residuals of the example images (:func:`drive_crop_row`).
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from .. import figures
from ..figures import CropPanel, CropRow
from ..jpeg import read_rgb
from ..methods import ORIGINAL_NAME, PLAIN_NAME, MethodContext, compute_residual, get_method, method_order
from ..originals import load_original
from ..paths import ORIGINAL, DrivePaths
from ..residual_files import keeps_residuals, load_residual
from ..spn import extract_residual, fingerprint_term, score_pair
from .identification import read_scores
from .spn import jpeg_residual

logger = logging.getLogger(__name__)


def drive_crop_row(
    drive: DrivePaths | Mapping,
    camera: str,
    image: str,
    quality: int,
    scores: pd.DataFrame | None = None,
    sigma: float | None = None,
    storage: Mapping | None = None,
    context: MethodContext | None = None,
    develop: Callable[[str, str], np.ndarray] | None = None,
) -> CropRow:
    """The maps of one evaluated image from the drive: its residual by each method scored, the original's
    residual and the term K * I.

    Reads the image's JPEG, the original's residual and its camera's fingerprint. The plain residual and
    those of the computed methods are read from the drive when ``storage`` keeps them (``None``: the command
    line's full storage, which does); otherwise the plain one is computed from the JPEG with ``sigma`` and
    each other computed method's (those with scores in ``scores``) with ``context`` around the figure's
    central crop only (:func:`_method_window`). A method's panel is left out where it has no stored file, no
    score, or no context is given. PCEs
    (of the whole image, with its own camera's fingerprint) come from ``scores`` when given. The original's
    residual is read from the drive where it was stored, else made by ``develop(camera, image)`` (the
    original developed again, :func:`original_developer`), else left out. An image turned
    by the camera without a tag is shown in the quarter turn that scoring chose
    (:func:`spnrestore.spn.score_pair`).
    """
    drive = DrivePaths.of(drive)
    own = None
    if scores is not None:
        own = scores[(scores["camera"].astype(str) == camera) & (scores["image"].astype(str) == image)
                     & (scores["fingerprint"].astype(str) == camera) & (scores["quality"].astype(int) == int(quality))]
    pce_of = lambda method: (None if own is None or not (own["method"] == method).any()  # noqa: E731
                             else float(own.loc[own["method"] == method, "pce"].iloc[0]))
    rgb = read_rgb(drive.jpeg(camera, quality, image))
    plain = jpeg_residual(drive, camera, quality, image, sigma, storage, rgb)[0]
    scored = method_order(own["method"]) if own is not None else []
    maps = [(PLAIN_NAME, plain)]
    maps += [(m, _method_window(drive, camera, quality, image, rgb, plain, storage, context, get_method(m)))
             for m in scored if m != PLAIN_NAME and get_method(m).computed]
    maps.append((ORIGINAL_NAME, _original(drive, camera, image, develop)))
    panels = [CropPanel(f"{method} residual", array, pce_of(method)) for method, array in maps if array is not None]
    k = load_residual(drive.fingerprint(camera))
    if k.shape != panels[0].array.shape:  # turned by the camera (no tag): the turn scoring kept
        turn = score_pair(panels[0].array, rgb, k, with_ncc=False)[2]
        panels = [CropPanel(p.label, np.rot90(p.array, turn), p.pce) for p in panels]
        rgb = np.rot90(rgb, turn)
    panels.append(CropPanel("fingerprint term K*I", fingerprint_term(k, rgb)))
    return CropRow(f"{camera}/{image} Q{quality}", panels)


def _original(drive: DrivePaths, camera: str, image: str, develop) -> np.ndarray | None:
    """The residual of the original: stored by the develop rule, or developed again, or None."""
    path = drive.residual(camera, ORIGINAL, image)
    if path.is_file():
        return load_residual(path)
    return None if develop is None else develop(camera, image)


def original_developer(manifest_csv: str | os.PathLike, develop_settings: Mapping,
                       sigma: float) -> Callable[[str, str], np.ndarray]:
    """``develop(camera, image)``: the residual of an original of the run's manifest, developed (or loaded)
    again as the develop rule did it, for the few originals a figure shows whose residual is not stored."""
    manifest = pd.read_csv(manifest_csv, dtype=str, keep_default_na=False).set_index(["camera", "image"])

    def develop(camera: str, image: str) -> np.ndarray:
        row = manifest.loc[(camera, image)]
        rgb = load_original(row["path"], row["format"], develop_settings).rgb
        return extract_residual(rgb, sigma=sigma, name=row["path"])

    return develop


#: Pixels of context restored around the figure's central crop (more than the whole-image pass's tile overlap).
CONTEXT = 192


def _method_window(drive: DrivePaths, camera, quality, image, rgb, plain, storage, context,
                   method) -> np.ndarray | None:
    """The residual of one JPEG by ``method``: the stored file when the drive keeps residuals, else computed
    now with ``context`` (None: left out).

    Computed now, only a window is: the figure's central crop (:data:`spnrestore.figures.CROP_SIDE` px) with
    :data:`CONTEXT` px around it, its corner on the 16 px grid of the JPEG's blocks (and chroma), zeros
    elsewhere. For a model, in the crop it is the whole image's restoration as far as the whole-image pass's
    own tiles agree with each other: 3e-5 of the largest value where the crop lies inside one of its tiles,
    1.6 % (correlation 0.99997) where it blends two (tests/test_figures.py); a 12 MP image takes 15-20 s whole
    on the CPU, a window 0.4 s. A method with a global step (the phase whitening's FFT) is shown as it
    comes out of the window; the panel's PCE is the whole image's."""
    if keeps_residuals(storage):
        path = drive.method_residual(camera, method.name, quality, image)
        return load_residual(path) if path.is_file() else None
    if context is None:
        return None
    (h, w), side = plain.shape, figures.CROP_SIDE
    y0, x0 = (max(0, ((n - side) // 2 - CONTEXT) // 16 * 16) for n in (h, w))
    y1, x1 = (min(n, (n - side) // 2 + side + CONTEXT) for n in (h, w))
    out = np.zeros_like(plain)
    out[y0:y1, x0:x1] = compute_residual(method, rgb[y0:y1, x0:x1], plain[y0:y1, x0:x1], quality, context)
    return out


def write_plots(
    scores_csv: str | os.PathLike,
    drive: DrivePaths | Mapping,
    subsets: Iterable[str],
    threshold: float,
    roc_out: Iterable[str | os.PathLike],
    pce_out: Iterable[str | os.PathLike],
    crops_out: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    sigma: float | None = None,
    storage: Mapping | None = None,
    manifest_csv: str | os.PathLike | None = None,
    develop_settings: Mapping | None = None,
) -> None:
    """ROC curves and PCE distributions per subset, and residual crops of the two weakest plain-residual
    matches per subset at the lowest quality. A subset without evaluated images (a small drive) gets a
    figure that says so instead of a plot. When the drive does not keep residuals (``storage``), the crops'
    residuals are computed again: the plain ones with ``sigma``, the other methods' with ``checkpoint`` as the
    drive's model (on the CPU: a few windows), and the originals' (when not stored) by developing the
    originals of ``manifest_csv`` again with ``develop_settings``."""
    scores = read_scores(scores_csv)
    scores["quality"] = scores["quality"].astype(int)
    for subset, roc, pce in zip(subsets, roc_out, pce_out):
        if (scores["subset"] == subset).any():
            figures.roc_curves(scores, roc, threshold, subset=subset)
            figures.pce_distributions(scores, pce, threshold, subset=subset)
        else:
            message = f"no image of subset {subset!r} was evaluated (see the run's first lines and skipped.csv)"
            for out in (roc, pce):
                figures.note_figure(out, f"{subset} images", message)
            logger.warning(message)
    if scores.empty:
        figures.note_figure(crops_out, "residual crops", "no image was evaluated")
        logger.warning("no image was evaluated: figures say so")
        return
    lowest = int(scores["quality"].min())
    examples = scores[scores["match"] & (scores["method"] == PLAIN_NAME) & (scores["quality"] == lowest)]
    examples = examples.sort_values("pce").groupby("subset").head(2)
    context = MethodContext(sigma, str(checkpoint) if checkpoint else None, "cpu")
    develop = (original_developer(manifest_csv, develop_settings, sigma)
               if manifest_csv is not None and develop_settings is not None else None)
    rows = [drive_crop_row(drive, r.camera, r.image, lowest, scores, sigma, storage, context, develop)
            for r in examples.itertuples()]
    figures.residual_crops(rows, crops_out)
    logger.info(f"plots written; crops of {len(rows)} images at quality {lowest}")
