"""Rule ``report_tables``: the pages of Snakemake's report that are tables, as static HTML.

Snakemake's report (``snakemake --report report.html``) shows an HTML item inline (in a frame) and a CSV only as
a download; its landing page (``workflow/report/workflow.rst``) can read the configuration but no output. This
stage writes, from the workflow's tables:

* ``summary.html``: first the table of methods (per subset and quality, every residual method of
  :mod:`spnrestore.methods`: median match PCE, identified at PCE above the threshold, true matches at zero
  false matches, share of images lowered against plain, largest non-match PCE), the goals of
  :mod:`spnrestore.stages.results`, met or not, the calibration of each camera (the method chosen per quality,
  and the fingerprints found unusable), then what was run on which drive and the model. The landing page
  includes it, and it is the report's first category. Without an evaluation it says so and why.
* ``identification.html``, ``metrics.html``, ``skipped.html``, ``training.html``: the tables themselves.

Static HTML, no script: the catalog's usual table viewer (datavzrd) is a Rust program distributed through
Bioconda and crates.io, not on PyPI or Debian, so it is not a dependency here.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import pandas as pd

from ..atomic import write_text
from ..methods import PLAIN_NAME, method_order
from ..metrics import gain_summary
from .results import deciding_method, goal_checks, harm_checks, method_lines, model_lines, read_metrics

logger = logging.getLogger(__name__)

STYLE = """<style>
.spn { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px; color: #1f2937; }
.spn h2 { font-size: 18px; margin: 18px 0 6px; } .spn h3 { font-size: 15px; margin: 14px 0 4px; }
.spn table { border-collapse: collapse; margin: 6px 0 12px; }
.spn th, .spn td { border: 1px solid #d1d5db; padding: 3px 8px; text-align: right; white-space: nowrap; }
.spn th { background: #f3f4f6; } .spn td.text, .spn th.text { text-align: left; white-space: normal; }
.spn tr.best td { background: #fef9c3; } .spn td.met { color: #166534; font-weight: 600; }
.spn td.unmet { color: #991b1b; font-weight: 600; } .spn p.note { color: #4b5563; margin: 4px 0; }
.spn ul { margin: 4px 0 8px 20px; } .spn code { font-size: 12px; }
</style>"""
HEADLINE = {"median_pce_match": "median match PCE", "tpr_at_threshold": "identified (PCE > {t:g})",
            "tpr_at_fpr0": "true matches at zero false matches", "share_lowered": "lowered vs plain",
            "median_gain": "median gain vs plain", "max_pce_nonmatch": "largest non-match PCE",
            "n_images": "images"}


def _method_rank(methods) -> dict:
    return {m: i for i, m in enumerate(method_order(methods))}
SUBSET_TEXT = {"seen": "test images of cameras used in training",
               "holdout": "images of cameras never seen in training",
               "new_drive": "images of a drive evaluated with a model trained elsewhere"}
VERDICT = {True: ("met", "met"), False: ("not met", "unmet"), None: ("n/a", "")}


def _cell(value, digits: int = 3) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:,.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return html.escape(str(value))


def html_table(frame: pd.DataFrame, text_columns: Sequence[str] = (), row_class: pd.Series | None = None,
               formats: Mapping[str, Callable] | None = None) -> str:
    """``frame`` as a plain HTML table (escaped); ``formats``: a function per column giving the cell text."""
    formats = formats or {}
    head = "".join(f'<th class="{"text" if c in text_columns else ""}">{html.escape(str(c))}</th>'
                   for c in frame.columns)
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cls = f' class="{row_class.iloc[i]}"' if row_class is not None and row_class.iloc[i] else ""
        cells = "".join(
            f'<td class="{"text" if c in text_columns else ""}">'
            f'{html.escape(formats[c](v)) if c in formats else _cell(v)}</td>'
            for c, v in zip(frame.columns, row))
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _page(title: str, body: str, note: str = "") -> str:
    """A page of the report: a fragment (style and one div) that renders alone in Snakemake's frame and inside
    the landing page alike."""
    parts = [f'<meta charset="utf-8">{STYLE}<div class="spn">', f"<h2>{html.escape(title)}</h2>"]
    if note:
        parts.append(f'<p class="note">{note}</p>')
    parts += [body, "</div>"]
    return "\n".join(parts) + "\n"


def _percent(value) -> str:
    return "" if pd.isna(value) else f"{float(value):.0%}"


def _pce(value) -> str:
    return "" if pd.isna(value) else f"{float(value):,.1f}" if abs(float(value)) < 1e4 else f"{float(value):,.0f}"


def headline(metrics: pd.DataFrame, threshold: float, gains: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Per subset, the table of methods: quality (highest first) x method (the registry's order) with median
    match PCE, the rate identified at PCE > ``threshold``, the rate of true matches at zero false matches, the
    share of images the method lowers against plain and its median gain (from the per-image ``gains``), the
    largest non-match PCE and the number of images."""
    out = {}
    overall = metrics[metrics["camera"] == "all"]
    summary = gain_summary(gains) if gains is not None and len(gains) else pd.DataFrame(
        columns=["subset", "quality", "method", "share_lowered", "median_gain"])
    for subset, table in overall.groupby("subset", sort=False):
        rank = _method_rank(table["method"].unique())
        table = table.assign(order=table["method"].map(rank))
        harm = summary[summary["subset"] == subset][["quality", "method", "share_lowered", "median_gain"]]
        table = table.merge(harm.astype({"quality": table["quality"].dtype}), on=["quality", "method"], how="left")
        table = table.sort_values(["quality", "order"], ascending=[False, True])
        frame = table[["quality", "method", *HEADLINE]].rename(
            columns={k: v.format(t=threshold) for k, v in HEADLINE.items()})
        frame["quality"] = [f"Q{q}" for q in frame["quality"]]
        out[str(subset)] = frame.reset_index(drop=True)
    return out


def headline_html(metrics: pd.DataFrame, threshold: float, gains: pd.DataFrame | None = None) -> str:
    """The tables of methods (one per subset) and the goals table, as HTML."""
    identified = HEADLINE["tpr_at_threshold"].format(t=threshold)
    formats = {HEADLINE["median_pce_match"]: _pce, HEADLINE["max_pce_nonmatch"]: _pce, identified: _percent,
               HEADLINE["tpr_at_fpr0"]: _percent, HEADLINE["share_lowered"]: _percent,
               HEADLINE["median_gain"]: lambda v: "" if pd.isna(v) else f"{float(v):.2f}x",
               HEADLINE["n_images"]: lambda v: str(int(v))}
    focus = deciding_method(metrics["method"].unique())
    parts = []
    for subset, frame in headline(metrics, threshold, gains).items():
        parts += [f"<h3>{html.escape(subset)}: {html.escape(SUBSET_TEXT.get(subset, subset))}</h3>",
                  html_table(frame, text_columns=("quality", "method"), formats=formats,
                             row_class=(frame["method"] == focus).map({True: "best", False: ""}))]
    checks = goal_checks(metrics, threshold) + (harm_checks(gains) if gains is not None and len(gains) else [])
    rows = "".join(f'<tr><td class="text">{html.escape(goal)}</td><td class="text">{html.escape(measured)}</td>'
                   f'<td class="{VERDICT[met][1]}">{VERDICT[met][0]}</td></tr>' for goal, measured, met in checks)
    table = (f'<table><thead><tr><th class="text">goal</th><th class="text">measured</th><th>met</th></tr></thead>'
             f"<tbody>{rows}</tbody></table>")
    met_count = sum(1 for _, _, met in checks if met)
    parts += [f"<h3>Goals: {met_count} of {sum(1 for c in checks if c[2] is not None)} met</h3>", table]
    return "\n".join(parts)


def calibration_html(calibrations: Mapping[str, Mapping | None]) -> str:
    """Per camera: the method its calibration chose at each quality, on how many known images, whether its
    fingerprint identifies its own images (unusable ones named) and its scene check (spn.scene)."""
    rows = []
    for camera, cal in sorted(calibrations.items()):
        if not cal:
            rows.append({"camera": camera, "known images": 0, "fingerprint": "not calibrated", "chosen": PLAIN_NAME,
                         "note": "no calibration"})
            continue
        usable = {True: "usable", False: "UNUSABLE", None: "not known"}[cal.get("usable")]
        median = cal.get("original_median_pce")
        scene = (cal.get("scene_check") or {}).get("ratio")
        chosen = ", ".join(f"Q{q}: {v['chosen']}" for q, v in sorted(cal["qualities"].items(), key=lambda i: -int(i[0])))
        rows.append({"camera": camera, "known images": cal.get("images", 0),
                     "fingerprint": usable + (f" (own images: median PCE {median:.1f})" if median is not None else "")
                     + (f"; scene check: NCC smooth / textured half {scene:.2f}" if scene is not None else ""),
                     "chosen": chosen, "note": cal.get("note", "")})
    frame = pd.DataFrame(rows, columns=["camera", "known images", "fingerprint", "chosen", "note"])
    return html_table(frame, text_columns=("camera", "fingerprint", "chosen", "note"),
                      row_class=frame["fingerprint"].str.startswith("UNUSABLE").map({True: "best", False: ""}))

def drive_lines(manifest: pd.DataFrame, qualities: Sequence, threshold: float, drive: str) -> list[str]:
    """What was run on which drive, in a few lines of text."""
    used = manifest[manifest["status"] == "ok"] if "status" in manifest.columns else manifest
    cameras = sorted(used["camera"].unique())
    return [f"drive: {drive}",
            f"{len(cameras)} camera(s), {len(used)} image(s) used: " + ", ".join(
                f"{c} ({int((used['camera'] == c).sum())})" for c in cameras),
            "JPEG qualities: " + ", ".join(f"Q{q}" for q in qualities) + f"; decision threshold PCE {threshold:g}"]


def _list(lines: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines) + "</ul>"


def summary_html(manifest: pd.DataFrame, qualities: Sequence, threshold: float, drive: str,
                 metrics: pd.DataFrame | None, model: Sequence[str] = (), plan: Sequence[str] = (),
                 no_model_reason: str = "", gains: pd.DataFrame | None = None,
                 calibrations: Mapping[str, Mapping | None] | None = None) -> str:
    """The summary page: the table of methods and the goals (or why there is no evaluation), the cameras'
    calibrations, the drive and the model."""
    body = []
    if metrics is None or metrics.empty:
        reason = no_model_reason or "no image was evaluated"
        body += ["<h3>Methods</h3>", f'<p class="note">No evaluation: {html.escape(reason)}. '
                 "Identification with the plain residuals is under Identification.</p>"]
    else:
        body += ["<h3>Methods side by side</h3>",
                 '<p class="note">All cameras together, every residual method scored on the same images. '
                 "Rates are fractions of the subset's images; <em>lowered vs plain</em>: the share of images whose "
                 "match PCE the method lowers. The highlighted method is the one the goals judge.</p>",
                 _list([m.removeprefix("- ").replace("`", "") for m in method_lines(metrics["method"].unique())]),
                 headline_html(metrics, threshold, gains)]
    if calibrations:
        body += ["<h3>Calibration per camera</h3>",
                 '<p class="note">Chosen on each camera\'s own fingerprint images (leave-one-out, their JPEG copies '
                 "at each quality), never on evaluated images; <code>SPN/&lt;camera&gt;/calibration.json</code> holds "
                 "the figures. An unusable fingerprint (its own images do not match it) gets plain and no decision "
                 "names it.</p>", calibration_html(calibrations)]
    body += ["<h3>What was run</h3>", _list(drive_lines(manifest, qualities, threshold, drive))]
    if model:
        body += ["<h3>The drive's model (method drive)</h3>",
                 _list([m.removeprefix("- ").replace("`", "") for m in model
                        if m.startswith(("- checkpoint", "- selected"))])
                 + '<p class="note">Its SHA-256, training data and residual settings: <code>results.md</code>.</p>']
    if plan:
        body += ["<h3>The drive, per camera</h3>", _list(plan)]
    return _page("spnrestore: result of this run", "\n".join(body))


def _threshold_columns(threshold: float) -> dict[str, str]:
    """The rate columns of the metrics (``tpr_at_threshold``, ``fpr_at_threshold`` in the CSV, with the
    ``threshold`` column) as the report shows them: named after the run's threshold."""
    return {f"{kind}_at_threshold": f"{kind}_at_pce{threshold:g}" for kind in ("tpr", "fpr")}


def identification_html(identification: pd.DataFrame, threshold: float) -> str:
    """Identification with the plain residuals, per camera and source (original or JPEG quality)."""
    frame = identification.rename(columns=_threshold_columns(threshold))
    note = ("Standard PRNU identification of every scored image (fingerprint images excluded) per camera and "
            f"source. tpr/fpr at PCE {threshold:g}: rates of true/false matches above the threshold; tpr_at_fpr0: "
            "true matches at zero false matches.")
    return _page("Identification per camera and quality", html_table(frame, text_columns=("camera",)), note)


def metrics_html(metrics: pd.DataFrame, threshold: float) -> str:
    """The evaluation's metrics, one table per subset (all cameras first, then each camera)."""
    parts = []
    for subset, table in metrics.groupby("subset", sort=False):
        table = table.assign(order=table["method"].map(_method_rank(table["method"].unique())),
                             all=table["camera"] != "all")
        table = table.sort_values(["all", "camera", "quality", "order"], ascending=[True, True, False, True])
        frame = table.drop(columns=["subset", "order", "all"]).rename(columns=_threshold_columns(threshold))
        parts += [f"<h3>{html.escape(str(subset))}: {html.escape(SUBSET_TEXT.get(str(subset), str(subset)))}</h3>",
                  html_table(frame, text_columns=("camera", "method"),
                             row_class=(frame["method"] == deciding_method(frame["method"].unique()))
                             .map({True: "best", False: ""}))]
    return _page("Metrics per subset, camera, quality and method", "\n".join(parts) or "<p>No metrics.</p>",
                 "Rows of camera <code>all</code> pool every camera of the subset.")


def skipped_html(skipped: pd.DataFrame) -> str:
    """Every file not used, with the reason."""
    body = (html_table(skipped, text_columns=tuple(skipped.columns)) if not skipped.empty
            else "<p>No file was skipped: every file of the drive was used.</p>")
    return _page(f"Skipped files ({len(skipped)})", body)


def training_html(train_log: pd.DataFrame, val_log: pd.DataFrame | None) -> str:
    """The training summary: steps and final losses, and every validation (the selected one highlighted)."""
    losses = [c for c in ("total", "corr", "lf", "hf", "adv", "d") if c in train_log.columns]
    last = train_log.tail(1)
    parts = [f"<p>{len(train_log)} logged steps, last step {int(train_log['step'].max()) if len(train_log) else 0}"
             + (f", {float(train_log['time_s'].iloc[-1]):,.0f} s" if "time_s" in train_log.columns and len(train_log)
                else "") + ".</p>",
             "<h3>Losses at the first and last step</h3>",
             html_table(pd.concat([train_log.head(1), last])[["step", *losses]]),
             '<p class="note">corr: 1 - NCC with the target; lf: L1 of the low-frequency (Gaussian-blurred) '
             "signals; hf: L1 of high-frequency details; adv, d: adversarial losses of the generator and the "
             "discriminator.</p>"]
    if val_log is not None and not val_log.empty:
        keep = [c for c in val_log.columns if c == "step" or c.startswith(("ncc_", "pce_", "gain", "nonmatch_"))
                or c in ("eligible", "is_best")]
        best = val_log["is_best"].astype(str).str.lower().eq("true") if "is_best" in val_log.columns else None
        if best is not None and best.any():
            selected = best.copy()
            selected[:] = False
            selected.iloc[best.to_numpy().nonzero()[0][-1]] = True
        else:
            selected = None
        parts += ["<h3>Validations</h3>",
                  '<p class="note">The highlighted row is the selected model (the last one marked best).</p>',
                  html_table(val_log[keep], row_class=None if selected is None
                             else selected.map({True: "best", False: ""}))]
    return _page("Training summary", "\n".join(parts))


def _csv(path: str | os.PathLike, **kwargs) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, **kwargs)


def write_report_tables(
    out: Mapping[str, str | os.PathLike],
    identification_csv: str | os.PathLike,
    manifest_csv: str | os.PathLike,
    skipped_csv: str | os.PathLike,
    threshold: float,
    qualities: Sequence,
    drive: str,
    metrics_csv: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    reused: bool = False,
    plan: Sequence[str] = (),
    train_log: str | os.PathLike | None = None,
    val_log: str | os.PathLike | None = None,
    gains_csv: str | os.PathLike | None = None,
    calibrations: Mapping[str, str | os.PathLike] | None = None,
) -> list[Path]:
    """Write the report's HTML pages named in ``out`` (keys ``summary``, ``identification``, ``skipped`` and,
    with their inputs, ``metrics`` and ``training``); returns their paths."""
    manifest = _csv(manifest_csv, dtype={"camera": str})
    metrics = read_metrics(metrics_csv) if metrics_csv else None
    model = model_lines(checkpoint, reused) if checkpoint else ()
    no_model = "" if metrics_csv else "no camera has images to evaluate: the drive's account below says why"
    gains = _csv(gains_csv, dtype={"camera": str, "image": str}) if gains_csv else None
    from .evaluation import read_calibrations

    cals = read_calibrations(calibrations or {})
    pages = {"summary": lambda: summary_html(manifest, qualities, threshold, drive, metrics, model, plan, no_model,
                                             gains, cals),
             "identification": lambda: identification_html(
                 _csv(identification_csv, dtype={"camera": str, "quality": str}), threshold),
             "skipped": lambda: skipped_html(_csv(skipped_csv, dtype=str))}
    if metrics is not None:
        pages["metrics"] = lambda: metrics_html(metrics, threshold)
    if train_log:
        val = _csv(val_log) if val_log and Path(val_log).is_file() else None
        pages["training"] = lambda: training_html(_csv(train_log), val)
    written = []
    for key, path in out.items():
        if key not in pages:
            raise ValueError(f"report_tables: no page {key!r} for {path} (its input table is not given)")
        write_text(path, pages[key]())
        written.append(Path(path))
        logger.info(f"written {path}")
    return written
