"""Figures of the evaluation and of training, written as PNG files.

Every function draws one figure and writes it atomically as a PNG, returning
its path. matplotlib is imported only when a figure is drawn (with the Agg
canvas and no pyplot state), so importing this module stays cheap.

Inputs are the workflow's tables (a DataFrame or the path of its CSV):

* ``evaluation/scores.csv`` — one row per (image, quality, method, fingerprint
  camera) with columns camera, image, subset, quality, method, fingerprint,
  pce, ncc, match (:func:`roc_curves`, :func:`pce_distributions`);
* ``train_log.csv`` and ``val_log.csv`` of the model's training
  (:func:`training_curves`);
* residual arrays (float32 H x W) for :func:`residual_crops`, gathered from
  the drive by :mod:`spnrestore.stages.plots`.

The decision threshold is always passed in (``spn.pce_threshold`` of the run).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .errors import SpnRestoreError
from .spn import rates_at_threshold, roc_auc, roc_curve

#: Colours of the residual methods in the registry's order (plain orange, then the others); the training
#: figure's two series (plain residual, the model being trained) take the first two.
_PALETTE = ("tab:orange", "tab:purple", "tab:brown", "tab:cyan", "tab:blue", "tab:red", "tab:green", "tab:olive",
            "tab:pink", "tab:gray")
TRAINING_COLORS = {"plain": _PALETTE[0], "restored": "tab:blue"}


def method_color(method: str) -> str:
    """The colour of a residual method (stable: by its place in the registry)."""
    from .methods import method_order, registered

    names = method_order(list(registered()) + [method])
    return _PALETTE[names.index(method) % len(_PALETTE)]
SCORE_COLUMNS = ("quality", "method", "pce", "match")
LOSS_COLUMNS = ("total", "corr", "lf", "hf", "adv", "d")
# What each column of train_log.csv is (spnrestore.model.losses), for the legend of the training figure.
LOSS_LABELS = {
    "total": "total (weighted sum)",
    "corr": "corr: 1 - NCC with the target",
    "lf": "lf: low-frequency L1 (Gaussian blur)",
    "hf": "hf: high-frequency detail L1",
    "adv": "adv: adversarial (generator)",
    "d": "d: discriminator",
}
DPI = 100


# --------------------------------------------------------------------------- helpers
def _figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (inches), without pyplot's global state."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig, out: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG to ``out`` atomically; returns ``out`` as a Path."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return Path(out)


def _table(table: pd.DataFrame | str | os.PathLike, columns: Sequence[str], what: str) -> pd.DataFrame:
    """The table itself, or the CSV read from its path; missing columns are an error naming the file."""
    if isinstance(table, pd.DataFrame):
        frame, name = table, what
    else:
        name = os.fspath(table)
        if not Path(name).is_file():
            raise SpnRestoreError(f"{name}: {what} does not exist; run the workflow stage that writes it first.")
        try:
            frame = pd.read_csv(name, keep_default_na=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise SpnRestoreError(f"{name}: cannot read {what} as CSV ({exc}); delete it and re-run.") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SpnRestoreError(f"{name}: {what} lacks the column(s) {missing}; found {list(frame.columns)}.")
    return frame


def _scores(scores, subset: str | None) -> tuple[pd.DataFrame, str]:
    """Scores of one subset (or all), with an int quality and bool match; plus a label for titles."""
    frame = _table(scores, SCORE_COLUMNS + (("subset",) if subset else ()), "scores table")
    if subset:
        frame = frame[frame["subset"] == subset]
    if frame.empty:
        raise SpnRestoreError(f"scores table: no rows{f' of subset {subset!r}' if subset else ''} to plot.")
    frame = frame.assign(quality=frame["quality"].astype(int), match=frame["match"].astype(str).str.lower() == "true",
                         pce=frame["pce"].astype(float))
    return frame, (f"{subset} images" if subset else "all images")


def _methods(frame: pd.DataFrame) -> list[str]:
    """Methods present, in the registry's order (then any other)."""
    from .methods import method_order

    return method_order(frame["method"])


# --------------------------------------------------------------------------- ROC
def roc_curves(
    scores: pd.DataFrame | str | os.PathLike,
    out: str | os.PathLike,
    threshold: float,
    subset: str | None = None,
) -> Path:
    """ROC curves of identification by PCE, one panel per JPEG quality (highest first), one line per method.

    The FPR axis is logarithmic, from half the smallest non-zero FPR the data
    can show (1 / 2 n_nonmatch) to 1; an FPR of 0 is drawn on that left edge.
    A marker shows each method's operating point at ``PCE > threshold``. The
    legend gives the area under each curve. ``subset``: ``seen``,
    ``holdout`` or None for all rows. Returns ``out``.
    """
    frame, label = _scores(scores, subset)
    qualities = sorted(frame["quality"].unique(), reverse=True)
    methods = _methods(frame)
    fig = _figure(4.2 * len(qualities), 4.0)
    axes = fig.subplots(1, len(qualities), squeeze=False, sharey=True)[0]
    for ax, q in zip(axes, qualities):
        at_q = frame[frame["quality"] == q]
        floor = 0.5 / max(1, int((~at_q["match"]).groupby(at_q["method"]).sum().max()))
        for method in methods:
            part = at_q[at_q["method"] == method]
            pce, match = part["pce"].to_numpy(), part["match"].to_numpy()
            if not match.any() or match.all():
                continue
            fpr, tpr, _ = roc_curve(pce, match)
            color = method_color(method)
            ax.plot(np.maximum(fpr, floor), tpr, color=color,
                    label=f"{method} (AUC {roc_auc(pce, match):.3f})")
            op_tpr, op_fpr = rates_at_threshold(pce, match, threshold)
            ax.plot(max(op_fpr, floor), op_tpr, "o", color=color, markeredgecolor="black", zorder=3)
        ax.set_xscale("log")
        ax.set_xlim(floor, 1.0)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(f"JPEG quality {q}")
        ax.set_xlabel("false positive rate (log)")
        ax.legend(loc="lower right", fontsize="small", title=f"o: PCE > {threshold:g}", title_fontsize="small")
    axes[0].set_ylabel("true positive rate")
    fig.suptitle(f"ROC of camera identification by PCE ({label})")
    return _save(fig, out)


# --------------------------------------------------------------------------- PCE distributions
def _symlog_bins(values: np.ndarray, per_decade: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges even on a symlog axis (linear in -1..1, logarithmic beyond) covering ``values``, and the
    major ticks for that axis (0 and signed powers of ten, every decade up to 4 decades, else every other)."""
    top = max(1.0, float(np.abs(values).max(initial=1.0)))
    decades = max(1, int(np.ceil(np.log10(top))))
    pos = np.logspace(0, decades, decades * per_decade + 1)
    low = float(values.min(initial=0.0))
    neg = -pos[: int(np.searchsorted(pos, -low)) + 1][::-1] if low < -1 else np.array([])
    bins = np.unique(np.r_[neg, np.linspace(-1, 1, 5), pos])
    powers = 10.0 ** np.arange(0, decades + 1, 1 if decades <= 4 else 2)
    ticks = np.r_[-powers[powers <= -bins[0]][::-1], 0.0, powers]
    return bins, ticks


def _pce_label(value: float) -> str:
    """Tick label of 0 or a signed power of ten, all in one notation: 0, 1, 10, 10², 10³, −10⁴ (mathtext)."""
    if value == 0:
        return "0"
    power = int(round(np.log10(abs(value))))
    sign = "-" if value < 0 else ""
    return f"${sign}{10 ** power}$" if power <= 1 else f"${sign}10^{{{power}}}$"


def pce_distributions(
    scores: pd.DataFrame | str | os.PathLike,
    out: str | os.PathLike,
    threshold: float,
    subset: str | None = None,
) -> Path:
    """Histograms of PCE for matching and non-matching pairs: one row per quality, one column per method.

    The x axis is symlog (linear within +-1, logarithmic beyond: PCE is signed
    and spans about 1e-1..1e5); each histogram is normalised to fractions of
    its pairs, and the panel notes how many of each lie above ``threshold``
    (drawn as a dashed line). Returns ``out``.
    """
    frame, label = _scores(scores, subset)
    qualities = sorted(frame["quality"].unique(), reverse=True)
    methods = _methods(frame)
    bins, ticks = _symlog_bins(frame["pce"].to_numpy())
    fig = _figure(3.8 * len(methods), 2.8 * len(qualities) + 0.5)
    axes = fig.subplots(len(qualities), len(methods), squeeze=False, sharex=True)
    handles = {}
    for row, q in zip(axes, qualities):
        for ax, method in zip(row, methods):
            part = frame[(frame["quality"] == q) & (frame["method"] == method)]
            notes = []
            for is_match, name, color in ((True, "match", "tab:blue"), (False, "non-match", "tab:red")):
                values = part.loc[part["match"] == is_match, "pce"].to_numpy()
                if values.size:
                    _, _, patches = ax.hist(values, bins=bins, weights=np.full(values.size, 1.0 / values.size),
                                            histtype="stepfilled", alpha=0.45, color=color, edgecolor=color)
                    handles.setdefault(name, patches[0])
                    notes.append(f"{int((values > threshold).sum())}/{values.size} {name}")
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xticks(ticks, [_pce_label(t) for t in ticks])
            ax.set_xlim(bins[0], bins[-1])
            # the counts above the threshold go in the title: nothing is drawn over the bars
            ax.set_title(f"Q{q} - {method}\nabove {threshold:g}: " + ", ".join(notes), fontsize="medium")
            ax.tick_params(labelsize="medium")
            ax.grid(True, alpha=0.3)
        row[0].set_ylabel("fraction of pairs", fontsize="medium")
    for ax in axes[-1]:
        ax.set_xlabel("PCE (symlog: linear within ±1)", fontsize="medium")
    from matplotlib.lines import Line2D

    names = [n for n in ("match", "non-match") if n in handles]
    fig.legend([handles[n] for n in names] + [Line2D([], [], color="black", linestyle="--", linewidth=1)],
               [f"{n} pairs" for n in names] + [f"threshold PCE {threshold:g}"], loc="outside lower center",
               ncol=3, fontsize="medium", frameon=False)
    fig.suptitle(f"PCE of matching and non-matching fingerprints ({label})", fontsize="large")
    return _save(fig, out)


# --------------------------------------------------------------------------- training
def _smooth(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average over about ``span`` points (NaN-aware, same length)."""
    return pd.Series(values).ewm(span=span, ignore_na=True).mean().to_numpy()


def training_curves(
    train_log: pd.DataFrame | str | os.PathLike,
    out: str | os.PathLike,
    val_log: pd.DataFrame | str | os.PathLike | None = None,
) -> Path:
    """Training losses per step, and per validation the NCC of plain and restored residuals, its gain and the
    non-match NCC; with whole-image validation columns, a third row with its PCE figures.

    ``train_log``: columns step and any of total, corr, lf, hf, adv, d (empty
    before a term starts). ``val_log`` (optional; without it, or when it does
    not exist yet, only the losses are drawn): columns step, ncc_plain,
    ncc_restored, gain, nonmatch_plain, nonmatch_restored, optionally
    ncc_restored_q<Q> per quality, nonmatch_raise_se and is_best (the selected
    validation is starred), and the whole-image columns pce_plain_q<Q>, pce_restored_q<Q>, pce_nonmatch_plain,
    pce_nonmatch_restored and pce_gain when present. Returns ``out``.
    """
    log = _table(train_log, ("step",), "training log")
    val = None
    if val_log is not None and (isinstance(val_log, pd.DataFrame) or Path(val_log).is_file()):
        val = _table(val_log, ("step", "ncc_plain", "ncc_restored", "gain", "nonmatch_plain", "nonmatch_restored"),
                     "validation log")
        val = None if val.empty else val  # no validation split: losses only
    rows = 1 if val is None else 3 if "pce_gain" in val.columns else 2
    fig = _figure(11.0, 3.75 * rows if rows > 1 else 3.8)
    axes = fig.subplots(rows, 2, squeeze=False).ravel()
    ax = axes[0]
    step = log["step"].to_numpy(dtype=float)
    span = max(1, len(log) // 50)
    drawn = [c for c in LOSS_COLUMNS if c in log.columns and log[c].notna().any()]
    for column in drawn:
        values = log[column].to_numpy(dtype=float)
        line, = ax.plot(step, _smooth(values, span), label=LOSS_LABELS[column], linewidth=1.5)
        ax.plot(step, values, color=line.get_color(), alpha=0.2, linewidth=0.7)
    if drawn and all((log[c].dropna() > 0).all() for c in drawn):
        ax.set_yscale("log")
    ax.set(title="training losses (EMA; faint: raw)", xlabel="step", ylabel="loss")
    if drawn:
        ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    if "lr" in log.columns and log["lr"].notna().any():
        ax_lr = axes[1]
        ax_lr.plot(step, log["lr"].to_numpy(dtype=float), color="tab:gray")
        ax_lr.set(title="learning rate", xlabel="step", ylabel="lr")
        ax_lr.grid(True, alpha=0.3)
    else:
        axes[1].set_axis_off()
    if val is None:
        fig.suptitle("training (no validation log)")
        return _save(fig, out)
    vstep = val["step"].to_numpy(dtype=float)
    best = val["is_best"].astype(str).str.lower().eq("true").to_numpy() if "is_best" in val.columns else None
    ax = axes[2]
    ax.plot(vstep, val["ncc_plain"], "o-", color=TRAINING_COLORS["plain"], label="plain")
    ax.plot(vstep, val["ncc_restored"], "o-", color=TRAINING_COLORS["restored"], label="restored")
    for column in sorted((c for c in val.columns if c.startswith("ncc_restored_q")), key=lambda c: int(c[14:])):
        ax.plot(vstep, val[column], "--", linewidth=1, label=f"restored Q{column[14:]}")
    ax.set(title="validation NCC with the target", xlabel="step", ylabel="NCC")
    ax.legend(fontsize="small", ncol=2)
    ax.grid(True, alpha=0.3)
    ax = axes[3]
    ax.plot(vstep, val["gain"], "o-", color="tab:purple", label="NCC gain (restored - plain)")
    ax.plot(vstep, val["nonmatch_plain"], "s--", color=TRAINING_COLORS["plain"], label="non-match NCC, plain")
    ax.plot(vstep, val["nonmatch_restored"], "s--", color=TRAINING_COLORS["restored"], label="non-match NCC, restored")
    if "nonmatch_raise_se" in val.columns:
        se = val["nonmatch_raise_se"].to_numpy(dtype=float)
        centre = val["nonmatch_plain"].to_numpy(dtype=float)
        ax.fill_between(vstep, centre - 2 * se, centre + 2 * se, color=TRAINING_COLORS["plain"], alpha=0.15,
                        label="plain +- 2 s.e. of the raise")
    if best is not None and best.any():
        last = np.flatnonzero(best)[-1]
        ax.plot(vstep[last], val["gain"].iloc[last], "*", color="gold", markersize=16, markeredgecolor="black",
                label=f"selected (step {int(vstep[last])})")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set(title="validation gain and non-match NCC", xlabel="step", ylabel="NCC")
    ax.legend(fontsize="x-small")
    ax.grid(True, alpha=0.3)
    if rows == 3:
        _image_validation_axes(axes[4], axes[5], val, vstep, best)
    fig.suptitle("training and validation")
    return _save(fig, out)


def _image_validation_axes(ax_match, ax_nonmatch, val: pd.DataFrame, vstep: np.ndarray, best) -> None:
    """Whole validation images: median match PCE per quality, and the largest non-match PCE with the gain."""
    qualities = sorted(int(c[len("pce_restored_q"):]) for c in val.columns if c.startswith("pce_restored_q"))
    for i, q in enumerate(qualities):
        color = f"C{i}"
        ax_match.plot(vstep, val[f"pce_restored_q{q}"], "o-", color=color, label=f"restored Q{q}")
        ax_match.plot(vstep, val[f"pce_plain_q{q}"], "--", color=color, linewidth=1, label=f"plain Q{q}")
    if (val[[f"pce_restored_q{q}" for q in qualities]].to_numpy(dtype=float) > 0).all():
        ax_match.set_yscale("log")
    ax_match.set(title="whole validation images: median match PCE", xlabel="step", ylabel="PCE")
    ax_match.legend(fontsize="x-small", ncol=2)
    ax_match.grid(True, which="both", alpha=0.3)
    ax_nonmatch.plot(vstep, val["pce_nonmatch_restored"], "o-", color=TRAINING_COLORS["restored"],
                     label="largest non-match PCE, restored")
    ax_nonmatch.plot(vstep, val["pce_nonmatch_plain"], "--", color=TRAINING_COLORS["plain"],
                     label="largest non-match PCE, plain")
    ax_nonmatch.set(title="whole validation images: non-match PCE and gain", xlabel="step", ylabel="PCE")
    ax_nonmatch.grid(True, alpha=0.3)
    ax_gain = ax_nonmatch.twinx()
    ax_gain.plot(vstep, val["pce_gain"], "^:", color="tab:purple", label="per-image gain (log2, right)")
    if best is not None and best.any():
        last = np.flatnonzero(best)[-1]
        ax_gain.plot(vstep[last], val["pce_gain"].iloc[last], "*", color="gold", markersize=16,
                     markeredgecolor="black", label=f"selected (step {int(vstep[last])})")
    ax_gain.set_ylabel("mean log2 PCE ratio")
    lines = ax_nonmatch.get_legend_handles_labels()
    extra = ax_gain.get_legend_handles_labels()
    # below the panel: inside, it covered the curves and the selected step's star
    ax_nonmatch.legend(lines[0] + extra[0], lines[1] + extra[1], fontsize="small", ncol=2, loc="upper center",
                       bbox_to_anchor=(0.5, -0.18))


# --------------------------------------------------------------------------- residual crops
@dataclass
class CropPanel:
    """One map of a crop figure: ``array`` float H x W (residual or fingerprint term), its PCE if scored."""

    label: str
    array: np.ndarray
    pce: float | None = None


@dataclass
class CropRow:
    """One image of a crop figure: a title and its panels (all the same H x W)."""

    title: str
    panels: list[CropPanel] = field(default_factory=list)


#: Side (px) of the crops of :func:`residual_crops` (by default the centre of each image).
CROP_SIDE = 128


def residual_crops(
    rows: Sequence[CropRow],
    out: str | os.PathLike,
    size: int = CROP_SIDE,
    origin: tuple[int, int] | None = None,
) -> Path:
    """Side-by-side crops of each image's maps (e.g. plain, restored, original residual, fingerprint term).

    Every panel of a row shows the same ``size`` x ``size`` px crop (top-left
    ``origin`` = (y, x), default the centre of the image), divided by the
    crop's own standard deviation and drawn in gray over -3..3, so the
    texture can be compared whatever each map's scale. Panels are titled with
    their PCE when it is known. Returns ``out``.
    """
    if not rows:
        raise SpnRestoreError("residual_crops: no images to draw.")
    columns = max(len(r.panels) for r in rows)
    fig = _figure(2.6 * columns, 2.8 * len(rows))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    image = None
    for row, row_axes in zip(rows, axes):
        shapes = {p.array.shape for p in row.panels}
        if len(shapes) != 1:
            raise SpnRestoreError(f"{row.title}: the maps have different sizes {sorted(shapes)}; they must match.")
        h, w = shapes.pop()
        ch, cw = min(size, h), min(size, w)
        y, x = origin if origin is not None else ((h - ch) // 2, (w - cw) // 2)
        y, x = int(np.clip(y, 0, h - ch)), int(np.clip(x, 0, w - cw))
        for ax, panel in zip(row_axes, row.panels):
            crop = np.asarray(panel.array[y:y + ch, x:x + cw], dtype=np.float32)
            std = float(crop.std())
            image = ax.imshow(crop / std if std > 0 else crop, cmap="gray", vmin=-3, vmax=3, interpolation="nearest")
            ax.set_title(panel.label + ("" if panel.pce is None else f"\nPCE {panel.pce:,.1f} (whole image)"),
                         fontsize="medium")
            ax.set_xticks([])
            ax.set_yticks([])
        for ax in row_axes[len(row.panels):]:
            ax.set_axis_off()
        row_axes[0].set_ylabel(f"{row.title}\ncrop [{y}:{y + ch}, {x}:{x + cw}]", fontsize="medium")
    fig.colorbar(image, ax=axes, shrink=0.6, label="value / crop std")
    fig.suptitle(f"residual crops ({size} px), each scaled by its own standard deviation\n"
                 "PCE: of the whole image's residual against its camera's fingerprint, not of the crop")
    return _save(fig, out)


def note_figure(out: str | os.PathLike, title: str, message: str) -> Path:
    """A figure that holds only a title and a message: what a report shows where there is nothing to plot
    (no evaluated image of a subset on a small drive), so that every declared figure exists and says why."""
    fig = _figure(6.4, 2.4)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize="medium", transform=ax.transAxes)
    return _save(fig, out)
