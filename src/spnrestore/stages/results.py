"""Rule ``results``: the evaluation's figures as Markdown (``results.md``), computed from ``metrics.csv`` and
``gains.csv``.

The goals are checked against the measured figures, never typed by hand, for the method that decides
(``calibrated`` where the drive scores it, else the last computed method of the registry's order): it lowers
fewer than 1 image in 10 at every quality, no camera is below plain in its median gain, and no method has a
non-matching pair above the threshold; beside them the headline ratio of median match PCE at the lowest
quality. Comparisons between methods allow a relative difference of ``RTOL`` (float noise: a model that
learned the identity restores the residual up to rounding).
"""

from __future__ import annotations

import logging
import os
from typing import Mapping, Sequence

import pandas as pd

from ..atomic import write_text
from ..methods import CALIBRATED_NAME, ORIGINAL_NAME, PLAIN_NAME, get_method, method_order, registered
from ..metrics import METRIC_COLUMNS, gain_summary

logger = logging.getLogger(__name__)

RTOL = 1e-4
NO_NONMATCH = ("no non-matching pair was scored: every camera has its own sensor size, so no image meets "
               "another camera's fingerprint (add cameras of a shared size to measure false matches)")
COLUMNS = ["quality", "method", *METRIC_COLUMNS]
#: The share of images a deciding method may lower at any quality (fewer than 1 in 10).
MAX_LOWERED = 0.1


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return ("" if pd.isna(value) else f"{value:.3g}") if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + " --- |" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def deciding_method(methods: Sequence[str]) -> str | None:
    """The method the goals judge: ``calibrated`` where scored, else the last computed one other than plain."""
    methods = method_order(methods)
    if CALIBRATED_NAME in methods:
        return CALIBRATED_NAME
    computed = [m for m in methods if m != PLAIN_NAME and get_method(m).computed]
    return computed[-1] if computed else None


def goal_checks(metrics: pd.DataFrame, threshold: float) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) for each subset, from the ``camera == 'all'`` rows of ``metrics``; ``met`` is None
    where a goal cannot be measured (no non-matching pair on a drive whose cameras all differ in size)."""
    checks = []
    overall = metrics[metrics["camera"] == "all"]
    for subset, table in overall.groupby("subset", sort=False):
        by = table.set_index(["quality", "method"])
        low = int(table["quality"].min())
        focus = deciding_method(table["method"].unique())
        if focus is not None and (low, PLAIN_NAME) in by.index and (low, focus) in by.index:
            plain, chosen = by.loc[(low, PLAIN_NAME)], by.loc[(low, focus)]
            ratio = (chosen["median_pce_match"] / plain["median_pce_match"] if plain["median_pce_match"] > 0
                     else float("nan"))
            checks.append((f"{subset}: median match PCE at Q{low}, {focus} / plain >= 2",
                           f"{chosen['median_pce_match']:.3g} / {plain['median_pce_match']:.3g} = {ratio:.2f}",
                           bool(ratio >= 2)))
        scored = table[table["method"] != ORIGINAL_NAME]
        worst = scored["max_pce_nonmatch"].max()
        if pd.isna(worst):  # every camera has its own sensor size: no image is compared with another's K
            checks.append((f"{subset}: non-match PCE (any quality, any method)", NO_NONMATCH, None))
            continue
        at = scored.loc[scored["max_pce_nonmatch"].idxmax()]
        checks.append((f"{subset}: no non-matching pair above PCE {threshold:g} (any quality, any method)",
                       f"largest non-match PCE {worst:.3g} ({at['method']}, Q{int(at['quality'])})",
                       bool(worst <= threshold)))
    return checks


def harm_checks(gains: pd.DataFrame) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) of the per-image gains (``evaluation/gains.csv``) of the deciding method per
    subset: fewer than 1 image in 10 lowered at every quality, and no camera below plain in median gain at
    any quality."""
    checks = []
    focus = deciding_method(gains["method"].unique()) if len(gains) else None
    if focus is None:
        return checks
    summary = gain_summary(gains[gains["method"] == focus])
    for subset, table in summary.groupby("subset", sort=False):
        by = table.set_index("quality")
        qualities = sorted(by.index, reverse=True)
        checks.append((f"{subset}: {focus} lowers fewer than 1 image in 10 (every quality)",
                       "; ".join(f"Q{q} {by.loc[q, 'share_lowered']:.2f}" for q in qualities),
                       bool((table["share_lowered"] < MAX_LOWERED).all())))
        checks.append((f"{subset}: {focus}: no camera below plain in median gain (every quality)",
                       "; ".join(f"Q{q} {by.loc[q, 'worst_camera_median_gain']:.2f} ({by.loc[q, 'worst_camera']})"
                                 for q in qualities),
                       bool((table["worst_camera_median_gain"] >= 1 - RTOL).all())))
    return checks


def method_lines(methods: Sequence[str]) -> list[str]:
    """One line per method scored: its name and what it is (from the registry)."""
    known = registered()
    return [f"- `{m}`: {known[m].title if m in known else get_method(m).title}" for m in method_order(methods)]


def results_markdown(metrics: pd.DataFrame, threshold: float, title: str = "Evaluation results",
                     gains: pd.DataFrame | None = None) -> str:
    """Markdown with the goal checks and, per subset, the all-camera metrics per quality and method (and, given
    the per-image ``gains``, the do-no-harm checks and their table per method)."""
    parts = [f"# {title}", "",
             "Generated by the workflow's `evaluation` rule from `evaluation/metrics.csv`; do not edit by hand.",
             "`seen`: test images of cameras used in training; `holdout`: every non-fingerprint image of cameras",
             "never seen in training; `new_drive`: every non-fingerprint image of a drive evaluated with a model",
             "trained elsewhere (or with none). Methods:", "", *method_lines(metrics["method"].unique()), "",
             "## Goals", "", "| goal | measured | met |", "| --- | --- | --- |"]
    verdict = {True: "yes", False: "no", None: "n/a"}
    has_gains = gains is not None and not gains.empty
    checks = goal_checks(metrics, threshold) + (harm_checks(gains) if has_gains else [])
    parts += [f"| {goal} | {measured} | {verdict[met]} |" for goal, measured, met in checks]
    overall = metrics[metrics["camera"] == "all"]
    for subset, table in overall.groupby("subset", sort=False):
        parts += ["", f"## {subset}", "", _markdown(table[COLUMNS])]
    if has_gains:
        parts += ["", "## Do no harm", "",
                  "Per image, quality and method, its match PCE over plain's (both floored at 1: "
                  "`evaluation/gains.csv`): median, share of images lowered, worst image, worst camera in median.",
                  "", _markdown(gain_summary(gains))]
    return "\n".join(parts) + "\n"


def read_metrics(metrics_csv: str | os.PathLike) -> pd.DataFrame:
    """``evaluation/metrics.csv`` with the camera column as text and empty metrics as NaN (a measure without
    its pairs, e.g. no non-matching pair on a drive whose cameras all differ in size)."""
    return pd.read_csv(metrics_csv, keep_default_na=False, dtype={"camera": str},
                       na_values={c: [""] for c in METRIC_COLUMNS})


def _training(payload: Mapping, summary: Mapping, metrics: Mapping) -> tuple[str, str]:
    """What a checkpoint was trained on and the model its training selected (and why), in words."""
    if payload.get("real") and "selected" in metrics:  # the training engine on real cameras
        cams = payload["real"].get("cameras") or []
        return (f"{len(cams)} real cameras ({', '.join(cams)}; `spnrestore pretrain --real`, seed "
                f"{payload.get('seed')}), from `{(payload.get('train_config') or {}).get('init')}`, "
                f"{metrics.get('examples_seen')} patches, {metrics.get('steps_done')} steps ({metrics.get('stopped_by')}) "
                f"in {metrics.get('elapsed_s', 0):.0f} s on {metrics.get('device_name')}",
                f"{metrics['selected']} (validation patches of those cameras)")
    if payload.get("pretrain") and "selected" in metrics:  # the training engine on synthetic sensors
        return (f"synthetic sensors (`spnrestore pretrain`, seed {payload['pretrain'].get('seed')}), "
                f"{metrics.get('examples_seen')} examples of new cameras, {metrics.get('steps_done')} steps "
                f"({metrics.get('stopped_by')}) in {metrics.get('elapsed_s', 0):.0f} s on {metrics.get('device_name')}",
                f"{metrics['selected']} (synthetic validation sensors)")
    if payload.get("pretrain"):  # the former pretraining loop (the shipped model's synthetic base)
        val = metrics.get("validation") or {}
        return (f"synthetic sensors (`spnrestore pretrain`, variant `{metrics.get('variant')}`, seed "
                f"{payload['pretrain'].get('seed')}), {metrics.get('examples_seen')} examples of new cameras, "
                f"{metrics.get('steps_done')} steps in {metrics.get('train_seconds', 0):.0f} s on {metrics.get('device_name')}",
                "the block filter alone (no step beat it on the synthetic validation)" if metrics.get("filter_alone")
                else f"step {metrics.get('selected_step')}: mean NCC with the exact PRNU term "
                     f"{val.get('ncc_model', float('nan')):.4f} vs {val.get('ncc_filter', float('nan')):.4f} "
                     f"for the block filter alone and {val.get('ncc_plain', float('nan')):.4f} plain "
                     "(synthetic validation sensors)")
    step, done = summary["selected_step"], summary["steps_done"]
    init = (payload.get("train_config") or {}).get("init")
    if metrics.get("selected"):
        chosen = metrics["selected"]
    elif step is None:
        chosen = "not recorded in the checkpoint"
    elif step == 0 and init:
        chosen = (f"the initial model ({init}) unchanged (step 0): no later step beat it "
                  "on the validation images without widening their non-match PCE")
    elif step == 0:
        chosen = ("the block filter alone (step 0): no later step of the U-Net beat it on the validation images "
                  "without widening their non-match PCE")
    else:
        chosen = f"the U-Net at step {step} of {done} (best on the validation images)"
    if init and step:
        chosen += f"; training started from {init} (its model is step 0)"
    stopped = {"steps": "all steps done", "time_budget": f"time budget of {metrics.get('time_budget_s')} s spent"}
    return (f"`{payload.get('dataset_dir', '?')}` (manifest SHA-256 `{payload.get('manifest_sha256', '?')}`), "
            f"{done} steps ({stopped.get(summary['stopped_by'], summary['stopped_by'])})", chosen)


def model_lines(checkpoint: str | os.PathLike, reused: bool) -> list[str]:
    """The ``Model`` section of results.md: which checkpoint restored the residuals (its SHA-256), where it was
    trained, the model that training selected and why, and the residual settings it was trained with."""
    from ..checksums import file_sha256
    from ..model.checkpoint import load_checkpoint
    from ..model.inference import checkpoint_summary

    payload = load_checkpoint(checkpoint)
    summary = checkpoint_summary(payload)
    data, chosen = _training(payload, summary, payload.get("metrics") or {})
    origin = "trained elsewhere and reused by this drive (model.checkpoint)" if reused else "trained on this drive"
    return [f"- checkpoint: `{checkpoint}` ({origin})",
            f"- SHA-256: `{file_sha256(checkpoint)}`",
            f"- training data: {data}",
            f"- selected model: {chosen}",
            f"- residual settings it was trained with: {summary['residual'] or 'not recorded (older checkpoint)'}"]


def write_results(metrics_csv: str | os.PathLike, threshold: float, out: str | os.PathLike,
                  checkpoint: str | os.PathLike | None = None, reused: bool = False,
                  plan: Sequence[str] = (),
                  gains_csv: str | os.PathLike | None = None) -> str:
    """Write ``results.md`` for ``metrics_csv`` (and the per-image ``gains_csv``) with the model that restored
    the residuals (``checkpoint``) and the drive's account (``plan``: the lines printed when the run started);
    returns the text."""
    metrics = read_metrics(metrics_csv)
    gains = pd.read_csv(gains_csv, keep_default_na=False, dtype={"camera": str, "image": str}) if gains_csv else None
    text = results_markdown(metrics, threshold, gains=gains)
    extra = []
    if checkpoint is not None:
        extra += ["## Model", "", *model_lines(checkpoint, reused), ""]
    if plan:
        extra += ["## The drive", "", *(f"- {line}" for line in plan), ""]
    if metrics.empty:
        extra += ["No image was evaluated: the drive's account above says why.", ""]
    text = text + "\n" + "\n".join(extra) if extra else text
    write_text(out, text)
    logger.info(text)
    return text
