"""Per-camera calibration: which residual method to use for one camera at one JPEG quality, chosen on that
camera's own known images, never on evaluated ones; and the method ``calibrated`` that applies the choice.

Leave-one-out on the fingerprint's images, exact and with no second pass: while the fingerprint is
accumulated, the running sums of a central window are read before and after each calibration image is
added; their difference is that image's terms, and the fingerprint without it on the window is
:func:`~spnrestore.spn.fingerprint.fingerprint_from_sums` of the sums less its terms
(:class:`LeaveOneOut`). The window's pixels of each calibration image are kept too; :func:`calibrate` then
compresses them at each quality, computes every candidate method's residual and scores it against the
image's leave-one-out fingerprint (match) and against the other cameras' fingerprints on a window of the
same size (non-match).

Which images: the camera's natural fingerprint images when it has at least ``min_images`` of them; else
all its fingerprint images, flat fields included (they are not natural images: the account says so, since
a method's gain on a flat field need not hold on a scene). Fewer than ``min_images`` known images: plain,
and the account says so.

The rule per quality: a method other than plain is chosen only where its median gain over plain (match
PCE ratio, both floored at 1 as in the evaluation's ``gains.csv``) is at least ``min_gain``, it lowers at
most ``max_lowered`` of the images, its largest non-match PCE stays at or below the decision threshold,
and the spread of its non-match PCEs (root mean square) is at most ``1 + nonmatch_margin`` times plain's.
Among those, the highest median gain; otherwise plain.

The same leave-one-out scores say whether the fingerprint identifies its own images at all: the median
PCE of the uncompressed originals' plain residuals against their leave-one-out fingerprints must reach
``usable_pce`` (10 by default: a chance non-match exceeds 10 about once in 600 pairs, the tail of a
chi-square with one degree of freedom). An unusable fingerprint gets plain at every quality and is named
as such; no decision names it (:func:`usable`). The scene check (:mod:`spnrestore.spn.scene`) says whether
that own match is the sensor's: the originals' NCC with their leave-one-out fingerprints is measured on their
smoother and on their more textured half; where the smooth half keeps less than half of the textured half's
(``scene_check.ratio`` below :data:`~spnrestore.spn.scene.SCENE_RATIO`), the match is made of the scene the
images share, and the fingerprint is unusable too, with that reason.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from ..atomic import write_bytes, write_text
from ..errors import SpnRestoreError
from ..metrics import gain_and_lowered
from ..spn import extract_residual
from ..spn.scoring import score_residuals
from ..spn.fingerprint import FingerprintAccumulator, central_window, fingerprint_from_sums, fingerprint_term
from ..spn.scene import SCENE_RATIO, smooth_half, smooth_textured_ncc
from .registry import CALIBRATED, Method, MethodContext, compute_residual, get_method, register

logger = logging.getLogger(__name__)

CALIBRATED_METHOD = register(Method(
    "calibrated", "per fingerprint and quality, the method its camera's calibration chose on its own images",
    CALIBRATED, reference="this project (docs/methods.md)"))

#: The calibration's defaults (config section ``calibration``; the schema holds the same values).
DEFAULTS = {"window": 1024, "min_images": 6, "max_images": 24, "min_gain": 1.1, "max_lowered": 0.1,
            "nonmatch_margin": 0.25, "usable_pce": 10.0}
ORIGINAL_QUALITY = "original"
SCENE_CHECK = "scene"  # rows of the scene check (spn.scene): NCC on the smooth and textured halves
VERSION = 1


def settings(section: Mapping | None) -> dict:
    """The calibration settings: ``section`` over :data:`DEFAULTS`."""
    return {**DEFAULTS, **{k: v for k, v in (section or {}).items() if v is not None}}


def select_images(records: Iterable[Mapping], cfg: Mapping) -> tuple[list[str], str]:
    """Names of the calibration images among a camera's fingerprint images (mappings with ``image`` and
    ``flat``), at most ``max_images`` (by name), and how they were chosen (one line for the account)."""
    records = sorted(records, key=lambda r: r["image"])
    natural = [r["image"] for r in records if not r.get("flat")]
    flats = [r["image"] for r in records if r.get("flat")]
    if len(natural) >= cfg["min_images"]:
        chosen = natural[: cfg["max_images"]]
        how = f"{len(chosen)} natural images"
    else:
        chosen = (natural + flats)[: cfg["max_images"]]
        kinds = sum(1 for n in chosen if n in flats)
        how = (f"{len(chosen)} images, {kinds} of them flat fields (fewer than {cfg['min_images']} natural "
               "images: a gain measured on flat fields need not hold on scenes)" if kinds else
               f"{len(chosen)} natural images")
    return chosen, how


@dataclass
class CalibrationSet:
    """The known images of one camera's calibration: per image its leave-one-out fingerprint on the central
    ``window`` (float32 n x h x w) and the window's pixels (uint8 n x h x w x 3)."""

    camera: str
    images: list[str]
    flat: list[bool]
    window: tuple[int, int, int, int]
    loo: np.ndarray
    pixels: np.ndarray
    how: str = ""

    def save(self, path: str | os.PathLike) -> None:
        import io

        buffer = io.BytesIO()
        np.savez(buffer, camera=np.array(self.camera), images=np.array(self.images, dtype=str),
                 flat=np.array(self.flat, bool), window=np.array(self.window, np.int64), loo=self.loo,
                 pixels=self.pixels, how=np.array(self.how), version=np.array(VERSION))
        write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "CalibrationSet":
        try:
            with np.load(path, allow_pickle=False) as z:
                if int(z["version"]) != VERSION:
                    raise ValueError(f"version {int(z['version'])}, expected {VERSION}")
                return cls(str(z["camera"]), [str(s) for s in z["images"]], [bool(b) for b in z["flat"]],
                           tuple(int(v) for v in z["window"]), z["loo"], z["pixels"], str(z["how"]))
        except (OSError, ValueError, KeyError) as exc:
            raise SpnRestoreError(f"{path}: cannot read the calibration set ({exc}); delete it and re-run its "
                                  "fingerprint (--forcerun fingerprint)") from None


class LeaveOneOut:
    """Collects the leave-one-out terms of the calibration images while a fingerprint is accumulated.

    >>> loo = LeaveOneOut(accumulator, chosen, window_side=1024)
    >>> for name, rgb, flat in images:
    ...     loo.add(name, rgb, flat)          # adds rgb to the accumulator
    >>> K, calibration_set = accumulator.finalize(), loo.finish(camera)
    """

    def __init__(self, accumulator: FingerprintAccumulator, chosen: Iterable[str], window_side: int):
        self.accumulator, self.chosen, self.side = accumulator, set(chosen), int(window_side)
        self.window = None
        self._terms, self._pixels, self._names, self._flat = [], [], [], []

    def add(self, name: str, rgb: np.ndarray, flat: bool = False) -> None:
        acc = self.accumulator
        if name not in self.chosen:
            acc.add(rgb, name=name)
            return
        window = self.window or central_window(rgb.shape, self.side)
        before = acc.window_sums(window) if acc.count else None
        acc.add(rgb, name=name)
        self.window = window
        after = acc.window_sums(window)
        y0, y1, x0, x1 = window
        self._terms.append(tuple(a - b for a, b in zip(after, before)) if before is not None else after)
        self._pixels.append(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
        self._names.append(name)
        self._flat.append(bool(flat))

    def finish(self, camera: str, how: str = "") -> CalibrationSet:
        """The calibration set (with no image where none was chosen or could be read)."""
        if not self._names:
            return CalibrationSet(camera, [], [], (0, 0, 0, 0), np.zeros((0, 0, 0), np.float32),
                                  np.zeros((0, 0, 0, 3), np.uint8), how)
        num, den = (a.astype(np.float64) for a in self.accumulator.window_sums(self.window))
        loo = np.stack([fingerprint_from_sums(num - t_num, den - t_den, f"fingerprint of {camera} without {name}")
                        for (t_num, t_den), name in zip(self._terms, self._names)]) if self.accumulator.count > 1 \
            else np.zeros((0,) + num.shape[1:], np.float32)
        return CalibrationSet(camera, self._names, self._flat, self.window, loo, np.stack(self._pixels), how)


def other_windows(fingerprints: Mapping[str, np.ndarray], camera: str, shape) -> dict[str, np.ndarray]:
    """The central window of ``shape`` of every other camera's fingerprint large enough for it."""
    out = {}
    for other, k in fingerprints.items():
        if other == camera:
            continue
        y0, y1, x0, x1 = central_window(k.shape, max(shape))
        if (y1 - y0, x1 - x0) == tuple(shape):
            out[other] = np.ascontiguousarray(k[y0:y1, x0:x1], dtype=np.float32)
    return out


def leave_one_out_scores(cset: CalibrationSet, methods: Iterable[Method], context: MethodContext,
                         others: Mapping[str, np.ndarray], qualities: Iterable[int],
                         subsampling: str = "420") -> list[dict]:
    """Rows (image, quality, method, fingerprint, pce, match) of every calibration image: its original's
    plain residual (quality ``original``) and, at each quality, every method's residual of its JPEG copy,
    scored against its leave-one-out fingerprint and the ``others``' windows."""
    from ..jpeg import decode_rgb, encode_jpeg

    rows = []
    methods = [m for m in methods if m.computed]
    for i, name in enumerate(cset.images):
        prints = {cset.camera: cset.loo[i], **others}
        pixels = cset.pixels[i]
        sources = [(ORIGINAL_QUALITY, pixels)] + [(int(q), decode_rgb(encode_jpeg(pixels, int(q), subsampling)))
                                                  for q in qualities]
        for quality, rgb in sources:
            plain = extract_residual(rgb, sigma=context.sigma, name=f"{cset.camera}/{name}")
            residuals = {}
            for method in methods if quality != ORIGINAL_QUALITY else [get_method("plain")]:
                try:
                    residuals[method.name] = compute_residual(method, rgb, plain, quality, context) \
                        if quality != ORIGINAL_QUALITY else plain
                except SpnRestoreError as exc:
                    logger.warning(f"calibration {cset.camera}: method {method.name} left out: {exc}")
                    methods = [m for m in methods if m is not method]
            # each fingerprint's term transformed once for every method
            for method, found in score_residuals(residuals, rgb, prints, name, with_ncc=False).items():
                rows += [{"image": name, "quality": str(quality), "method": method, "fingerprint": f["fingerprint"],
                          "pce": float(f["pce"]), "match": f["fingerprint"] == cset.camera} for f in found]
            if quality == ORIGINAL_QUALITY:  # the scene check: where the own match lives
                smooth, textured = smooth_textured_ncc(plain, fingerprint_term(cset.loo[i], rgb),
                                                       smooth_half(rgb, plain))
                rows.append({"image": name, "quality": SCENE_CHECK, "method": "plain", "fingerprint": cset.camera,
                             "pce": np.nan, "match": False, "ncc_smooth": smooth, "ncc_textured": textured})
        logger.info(f"calibration {cset.camera}: scored {name} ({i + 1}/{len(cset.images)})")
    return rows


def _stats(frame, plain_match, threshold) -> dict:
    match = frame[frame["match"]].set_index("image")["pce"]
    miss = frame.loc[~frame["match"], "pce"].to_numpy(float)
    gain, lowered = gain_and_lowered(match, plain_match.reindex(match.index))
    return {"n_images": int(len(match)), "median_pce": _num(match.median()),
            "median_gain": _num(gain.median()), "share_lowered": _num(lowered.mean()),
            "worst_gain": _num(gain.min()), "identified": _num((match > threshold).mean()),
            "n_nonmatch": int(miss.size), "max_nonmatch": _num(miss.max()) if miss.size else None,
            "rms_nonmatch": _num(np.sqrt(np.mean(miss ** 2))) if miss.size else None,
            "pce": {k: _num(v) for k, v in match.items()}}


def _scene_check(rows) -> dict:
    """Median NCC of the originals with their leave-one-out fingerprints on the smooth and the textured half
    (:mod:`spnrestore.spn.scene`), their ratio, and whether the match is scene-driven (ratio below
    :data:`~spnrestore.spn.scene.SCENE_RATIO` while the textured half matches)."""
    smooth, textured = (_num(rows[c].median()) if len(rows) else None for c in ("ncc_smooth", "ncc_textured"))
    ratio = _num(smooth / textured) if smooth is not None and textured is not None and textured > 0 else None
    return {"ncc_smooth": smooth, "ncc_textured": textured, "ratio": ratio,
            "scene_driven": bool(ratio is not None and ratio < SCENE_RATIO)}


def _num(v) -> float | None:
    v = float(v)
    return None if math.isnan(v) else round(v, 6)


def choose(rows: list[dict], camera: str, qualities: Iterable[int], cfg: Mapping, threshold: float,
           n_images: int, how: str = "") -> dict:
    """The calibration of one camera from its leave-one-out rows: per quality every method's figures, the
    method chosen and why; whether the fingerprint is usable (see the module's docstring)."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["image", "quality", "method", "fingerprint", "pce", "match", "ncc_smooth",
                                        "ncc_textured"])
    frame["match"] = frame["match"].astype(bool)
    out = {"camera": camera, "version": VERSION, "images": n_images, "how": how, "threshold": threshold,
           "rule": {k: cfg[k] for k in ("min_gain", "max_lowered", "nonmatch_margin", "usable_pce", "min_images")},
           "qualities": {}}
    originals = frame[(frame["quality"] == ORIGINAL_QUALITY) & frame["match"]]["pce"]
    out["original_median_pce"] = _num(originals.median()) if len(originals) else None
    enough = n_images >= cfg["min_images"]
    # None: not known (too few known images to say)
    out["usable"] = None if not enough else bool(out["original_median_pce"] is not None
                                                 and out["original_median_pce"] >= cfg["usable_pce"])
    out["scene_check"] = _scene_check(frame[frame["quality"] == SCENE_CHECK])
    scene_driven = bool(out["usable"] and out["scene_check"]["scene_driven"])
    if scene_driven:
        out["usable"] = False
    if not enough:
        out["note"] = (f"too few known images to calibrate ({n_images}, need {cfg['min_images']}): plain at every "
                       "quality; whether the fingerprint identifies its own images is not known")
    elif scene_driven:
        sc = out["scene_check"]
        out["note"] = (f"fingerprint unusable: its match with its own images is scene-driven (NCC {sc['ncc_smooth']:.4f} "
                       f"on their smooth half against {sc['ncc_textured']:.4f} on their textured half, ratio "
                       f"{sc['ratio']:.2f} < {SCENE_RATIO:g}: the fingerprint holds the scene its images share); "
                       "plain at every quality, and no decision names this camera. Build it from flat fields or "
                       "varied scenes")
    elif not out["usable"]:
        out["note"] = (f"fingerprint unusable: its own images score a median PCE of {out['original_median_pce']:.1f} "
                       f"against it (leave-one-out, uncompressed), below {cfg['usable_pce']:g}; plain at every "
                       "quality, and no decision names this camera")
    else:
        out["note"] = f"calibrated on {how}" if how else "calibrated"
    for q in qualities:
        at = frame[frame["quality"] == str(int(q))]
        plain_match = at[(at["method"] == "plain") & at["match"]].set_index("image")["pce"]
        figures = {m: _stats(g, plain_match, threshold) for m, g in at.groupby("method", sort=False)}
        chosen, reason = "plain", "no method meets the rule"
        if not enough or not out["usable"]:
            reason = out["note"]
        elif "plain" in figures:
            base = figures["plain"]
            best = None
            for m, f in figures.items():
                if m == "plain":
                    continue
                fails = []
                if f["median_gain"] is None or f["median_gain"] < cfg["min_gain"]:
                    fails.append(f"median gain {f['median_gain']} < {cfg['min_gain']}")
                if f["share_lowered"] is None or f["share_lowered"] > cfg["max_lowered"]:
                    fails.append(f"lowers {f['share_lowered']:.0%} > {cfg['max_lowered']:.0%}")
                if f["max_nonmatch"] is not None and f["max_nonmatch"] > threshold:
                    fails.append(f"a non-match at PCE {f['max_nonmatch']:.1f} > {threshold:g}")
                if (f["rms_nonmatch"] is not None and base["rms_nonmatch"] is not None
                        and f["rms_nonmatch"] > (1 + cfg["nonmatch_margin"]) * base["rms_nonmatch"]):
                    fails.append(f"widens the non-match PCE (rms {f['rms_nonmatch']:.2f} > "
                                 f"{1 + cfg['nonmatch_margin']:g} x {base['rms_nonmatch']:.2f})")
                f["eligible"], f["fails"] = not fails, fails
                if not fails and (best is None or f["median_gain"] > figures[best]["median_gain"]):
                    best = m
            if best is not None:
                chosen = best
                reason = (f"median gain {figures[best]['median_gain']:.2f}x, lowers "
                          f"{figures[best]['share_lowered']:.0%} of {figures[best]['n_images']} images")
            if base["n_nonmatch"] == 0:
                reason += "; no non-match measured (no other camera's fingerprint of this window's size)"
        out["qualities"][str(int(q))] = {"chosen": chosen, "reason": reason, "methods": figures}
    return out


def calibrate(cset: CalibrationSet | None, candidates: Iterable[Method], context: MethodContext,
              fingerprints: Mapping[str, np.ndarray], qualities: Iterable[int], threshold: float,
              cfg: Mapping | None = None, subsampling: str = "420", camera: str = "") -> dict:
    """The calibration of ``cset``'s camera (see the module's docstring); ``fingerprints``: every camera's
    fingerprint (the others give the non-matches)."""
    cfg, qualities = settings(cfg), [int(q) for q in qualities]
    if cset is None or len(cset.images) < 2:
        n = 0 if cset is None else len(cset.images)
        return choose([], camera or (cset.camera if cset else ""), qualities, cfg, threshold, n,
                      cset.how if cset else "")
    candidates = [get_method("plain")] + [m for m in candidates if m.computed and m.name != "plain"]
    others = other_windows(fingerprints, cset.camera, cset.loo.shape[1:])
    rows = leave_one_out_scores(cset, candidates, context, others, qualities, subsampling)
    out = choose(rows, cset.camera, qualities, cfg, threshold, len(cset.images), cset.how)
    out["window"] = list(cset.window)
    out["nonmatch_cameras"] = sorted(others)
    return out


def save_calibration(path: str | os.PathLike, calibration: Mapping) -> None:
    write_text(path, json.dumps(calibration, indent=1, sort_keys=False, allow_nan=False) + "\n")


def load_calibration(path: str | os.PathLike) -> dict | None:
    """The calibration stored at ``path``; None where there is none; a damaged file is an error naming it."""
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            out = json.load(f)
        out["qualities"] = {str(q): v for q, v in out["qualities"].items()}
        return out
    except (OSError, ValueError, KeyError) as exc:
        raise SpnRestoreError(f"{path}: cannot read the calibration ({exc}); delete it and re-run") from None


def chosen_method(calibration: Mapping | None, quality: int | str) -> str:
    """The method a calibration chose at the calibrated quality nearest ``quality`` (the higher on a tie);
    ``plain`` without a calibration."""
    if not calibration or not calibration.get("qualities"):
        return "plain"
    try:
        q = int(quality)
    except ValueError:
        return "plain"
    nearest = min(calibration["qualities"], key=lambda k: (abs(int(k) - q), -int(k)))
    return calibration["qualities"][nearest]["chosen"]


def usable(calibration: Mapping | None) -> bool:
    """Whether decisions may name this fingerprint: all but those a calibration found unusable (no
    calibration, or too few known images to say, leave it usable)."""
    return calibration is None or calibration.get("usable") is not False
