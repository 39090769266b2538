"""``spnrestore`` command line for casework: build a fingerprint, identify images, restore residuals, lay out
data sets as camera folders.

Sub-commands (``spnrestore <command> --help`` for each):

* ``fingerprint --camera NAME IMAGES_OR_FOLDERS... -o K.npy`` — a camera
  fingerprint from images of one size (writes ``K.npy`` and a ``K.png``
  preview) and its calibration ``K.calibration.json`` (the residual method to use per JPEG quality, chosen
  by leave-one-out on those images' JPEG copies at ``--qualities``; ``--no-calibrate`` skips it);
* ``identify IMAGE... --fingerprints DIR`` — PCE and NCC of each image
  against every fingerprint of ``DIR`` (``<camera>.npy`` files, a drive's
  ``SPN`` folder or one camera's ``SPN/<camera>`` folder), with the decision
  (best camera, or ``unknown`` when its PCE is not above the threshold), by the
  workflow's scoring (:func:`spnrestore.spn.score_residual`, quarter turns for
  turned shots), per residual method (``--methods``; by default plain, the
  model shipped with spnrestore (``--checkpoint`` another, ``none`` for none) and ``calibrated`` where a
  fingerprint has a calibration). RAW files are developed with the workflow's ``develop``
  settings (``--config``);
* ``restore IMAGE... -o DIR`` — restored residuals ``DIR/<stem>.npy`` (+
  ``.png`` preview), by the shipped model or ``--checkpoint CKPT``;
* ``pretrain --settings YAML -o OUT [--real CAMERAS]`` — the shipped model's training on synthetic
  sensors, then on real cameras (:mod:`spnrestore.model.pretrain`: the training engine on either source);
* ``layout SRC --by exif|pattern [REGEX] -o DRIVE/Images/Original`` — the
  drive's camera folders built from a folder of images (a public data set) by
  links or copies, with a table of what went where (:mod:`spnrestore.layout`).

Restoration needs each JPEG's quality: it is estimated from the JPEG's
luminance quantisation table (:func:`estimate_jpeg_quality`) unless
``--quality`` is given. Errors a user can cause end the command with exit
code 2 and one line ``spnrestore: ...`` on stderr. torch is imported only when
a model is used.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from . import __version__
from .discovery import DEVELOPED_EXTENSIONS, RAW_EXTENSIONS
from .errors import BadImageError, SpnRestoreError
from .jpeg import estimate_jpeg_quality
from .log_setup import MESSAGE_FORMAT, messages_to, stream_handler
from .model.pretrained import KEYWORD as PRETRAINED, resolve_checkpoint
from .spn.residual import DEFAULT_SIGMA

IMAGE_SUFFIXES = (*DEVELOPED_EXTENSIONS, *RAW_EXTENSIONS)
EXIT_ERROR = 2
#: Where the workflow's settings are read from when none is named (RAW files are developed with them).
DEFAULT_CONFIG = Path("config") / "config.yaml"

# ----------------------------------------------------------------------------- inputs
def expand_images(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given, folders replaced by their image files (JPEG/PNG/TIFF/RAW, sorted by name, not recursive).

    A missing path or a folder without images raises :class:`SpnRestoreError`;
    a file listed twice is kept once.
    """
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise SpnRestoreError(f"{item}: the folder holds no image files ({' '.join(IMAGE_SUFFIXES)}).")
            found += files
        elif item.is_file():
            found.append(item)
        else:
            raise SpnRestoreError(f"{item}: no such file or folder; check the path.")
    return list(dict.fromkeys(found))


def develop_settings(config: str | os.PathLike | None) -> dict:
    """The ``develop`` section of the workflow's configuration: the schema's defaults under the ``develop`` keys
    of ``config`` (default: ``config/config.yaml`` of the working folder, where there is one). RAW files are
    developed with exactly the workflow's settings."""
    from .config import SCHEMA_PATH, load_yaml, with_defaults

    path = Path(config) if config else DEFAULT_CONFIG
    if config and not path.is_file():
        raise SpnRestoreError(f"{path}: no such configuration file; pass the workflow's config/config.yaml "
                              "(--config) or leave --config out for the default settings.")
    given = (load_yaml(path).get("develop") if path.is_file() else None) or {}
    if not isinstance(given, dict):
        raise SpnRestoreError(f"{path}: 'develop' is not a mapping of settings; fix it or leave it out.")
    return with_defaults(load_yaml(SCHEMA_PATH)["properties"]["develop"], given)


def read_image(path: Path, config: str | os.PathLike | None = None) -> np.ndarray:
    """uint8 RGB H x W x 3 of an image file in its stored pixel layout (the EXIF orientation is not applied,
    16-bit TIFF/PNG scaled to 8 bits); a RAW file is developed with the workflow's settings (``config``, see
    :func:`develop_settings`). An undecodable file raises :class:`BadImageError`."""
    from .originals import load_developed
    from .raw import develop_raw

    if path.suffix.lower() in RAW_EXTENSIONS:
        return develop_raw(path, develop_settings(config)).rgb
    return load_developed(path).rgb


def load_fingerprint_dir(folder: str | os.PathLike, paths_out: dict | None = None) -> dict[str, np.ndarray]:
    """Fingerprints by camera from ``<camera>.npy`` files in ``folder`` or ``folder/<camera>/fingerprint.npy`` (a
    drive's SPN folder), or the one fingerprint of ``folder/fingerprint.npy`` (one camera's folder of a drive,
    named after the folder).

    Each is a float32 H x W array checked like a stored residual. Raises
    :class:`SpnRestoreError` when the folder is missing, holds none, or names
    one camera twice.
    """
    from .paths import FINGERPRINT_FILE
    from .residual_files import load_residual

    folder = Path(folder)
    if not folder.is_dir():
        raise SpnRestoreError(f"{folder}: fingerprint folder does not exist; pass --fingerprints DIR.")
    if (folder / FINGERPRINT_FILE).is_file():  # one camera's folder of a drive: SPN/<camera>/fingerprint.npy
        if paths_out is not None:
            paths_out[folder.resolve().name] = folder / FINGERPRINT_FILE
        return {folder.resolve().name: load_residual(folder / FINGERPRINT_FILE)}
    paths: dict[str, Path] = {}
    for path in sorted(folder.glob("*.npy")) + sorted(folder.glob(f"*/{FINGERPRINT_FILE}")):
        camera = path.stem if path.parent == folder else path.parent.name
        if camera in paths:
            raise SpnRestoreError(f"{folder}: two fingerprints for camera {camera!r} ({paths[camera]} and {path}); "
                                  "keep one.")
        paths[camera] = path
    if not paths:
        raise SpnRestoreError(f"{folder}: no fingerprints found (expected <camera>.npy files or "
                              "<camera>/fingerprint.npy folders); build them with 'spnrestore fingerprint'.")
    if paths_out is not None:
        paths_out.update(paths)
    return {camera: load_residual(path) for camera, path in paths.items()}


# ----------------------------------------------------------------------------- quality and restoration
def image_quality(path: Path, given: int | None, required: bool) -> tuple[int | None, str]:
    """(JPEG quality, how it was found) of ``path``: ``given`` (``--quality``) when set, else estimated from the
    file's tables (``estimated``; ``nearest`` with a warning when they are not IJG's; ``none`` for a non-JPEG,
    an error when ``required``)."""
    if given is not None:
        return given, "given"
    found = estimate_jpeg_quality(path)
    if found is None:
        if required:
            raise SpnRestoreError(f"{path}: not a JPEG, so its quality cannot be read from quantisation tables; "
                                  "pass --quality Q (the quality of the JPEG it came from).")
        return None, "none"
    if not found.exact:
        warn(f"{path}: quantisation tables are not the IJG standard ones; nearest quality {found.quality} "
             f"(mean table difference {found.error:.1f}); pass --quality Q to override")
        return found.quality, "nearest"
    return found.quality, "estimated"


PROGRESS_PIXELS = 4_000_000
"""From this size on, ``identify`` says on stderr which method it computes (a model takes seconds per MP)."""


def _restorer(checkpoint: str, device: str, sigma: float):
    """Load the model (imports torch); the checkpoint path is checked first, and a model trained on residuals
    of other settings than ``sigma`` is refused, naming both values."""
    if not Path(checkpoint).is_file():
        raise SpnRestoreError(f"{checkpoint}: checkpoint does not exist; check the path (--checkpoint).")
    from .model.inference import load_restorer
    from .spn import residual_settings

    return load_restorer(checkpoint, None if device == "auto" else device, residual=residual_settings(sigma))


def _restore(restorer, rgb: np.ndarray, residual: np.ndarray, quality: int) -> np.ndarray:
    from .model.inference import restore_residual

    return restore_residual(restorer, rgb, residual, quality)


def decision_threshold(given: float | None, restorer) -> float:
    """``--threshold`` when given, else the threshold the model was trained and selected with (its
    checkpoint's ``pce_threshold``), else the field's usual PCE 60 (:data:`spnrestore.spn.PCE_THRESHOLD`)."""
    from .spn import PCE_THRESHOLD

    if given is not None:
        return given
    trained = (restorer.metadata.get("train_config") or {}).get("pce_threshold") if restorer is not None else None
    return float(trained) if trained is not None else PCE_THRESHOLD


# ----------------------------------------------------------------------------- commands
def say(text: str = "") -> None:
    """One line of results on stdout (flushed, so long runs show progress)."""
    print(text, flush=True)


def warn(text: str) -> None:
    """A warning line on stderr."""
    print(f"spnrestore: warning: {text}", file=sys.stderr, flush=True)


def cmd_fingerprint(args: argparse.Namespace) -> int:
    """Estimate a camera fingerprint from images of one size and write it with its preview."""
    from .residual_files import save_residual
    from .spn import FingerprintAccumulator

    if not args.camera.strip() or any(c in args.camera for c in "/\\"):
        raise SpnRestoreError(f"--camera {args.camera!r}: a camera name must be non-empty and contain no slash.")
    out = Path(args.output)
    if out.suffix != ".npy":
        raise SpnRestoreError(f"-o {out}: the fingerprint file must end in .npy.")
    images = expand_images(args.images)
    if len(images) < 2:
        raise SpnRestoreError(f"{images[0]}: a fingerprint needs at least 2 images (20 or more for reliable "
                              "identification); add more images of this camera.")
    from .methods.calibration import LeaveOneOut, calibrate, save_calibration, select_images, settings

    cfg = settings(None)
    accumulator = FingerprintAccumulator(sigma=args.sigma)
    chosen, how = select_images([{"image": str(p), "flat": False} for p in images], cfg)
    loo = LeaveOneOut(accumulator, chosen if not args.no_calibrate else [], cfg["window"])
    for n, path in enumerate(images, 1):
        # an image of another size is a BadImageError
        loo.add(str(path), read_image(path, args.config))
        say(f"  added [{n}/{len(images)}] {path}")
    k = accumulator.finalize()
    save_residual(out, k)
    say(f"fingerprint of camera {args.camera!r}: {len(images)} images of {k.shape[0]}x{k.shape[1]} px (H x W), "
        f"sigma {args.sigma:g}")
    say(f"K: std {float(k.std()):.5f}, min {float(k.min()):+.4f}, max {float(k.max()):+.4f}")
    say(f"written: {out} (preview {out.with_suffix('.png')})")
    if not args.no_calibrate:
        from .methods import MethodContext, get_method

        methods = [get_method(m) for m in _method_list(args.methods, CALIBRATION_CANDIDATES)]
        say(f"calibration on {how}: leave-one-out at Q{', Q'.join(map(str, args.qualities))} with "
            f"{', '.join(m.name for m in methods)}")
        with messages_to(stream_handler(sys.stdout, f"  {MESSAGE_FORMAT}")):  # the calibration's progress
            cal = calibrate(loo.finish(args.camera, how), methods,
                            MethodContext(args.sigma, None, _device(args.device)), {args.camera: k}, args.qualities,
                            args.threshold or _threshold(), cfg, camera=args.camera)
        target = calibration_path(out)
        save_calibration(target, cal)
        for q, choice in cal["qualities"].items():
            say(f"  Q{q}: {choice['chosen']} ({choice['reason']})")
        say(f"{cal['note']}; no non-match was measured (one fingerprint): identify checks the others' at use")
        say(f"written: {target}")
    if out.stem != args.camera:
        say(f"note: 'spnrestore identify' names fingerprints by file name, so this one will be called {out.stem!r}")
    return 0


#: What ``fingerprint`` calibrates among by default, and what ``identify --methods all`` scores.
CALIBRATION_CANDIDATES = ("plain", "li2010", "phase", "shipped", "fused")


def _threshold() -> float:
    from .spn import PCE_THRESHOLD

    return PCE_THRESHOLD


def _device(device: str) -> str | None:
    return None if device == "auto" else device


def _method_list(value: str | None, default: Sequence[str]) -> list[str]:
    """Method names of a ``--methods`` value (comma-separated, or ``all``), checked against the registry."""
    from .methods import get_method

    names = list(default) if value is None or value == "all" else [v.strip() for v in value.split(",") if v.strip()]
    for name in names:
        get_method(name)  # an unknown name is an error naming the known ones
    return names


def calibration_path(fingerprint: str | os.PathLike) -> Path:
    """Where a fingerprint's calibration lies: ``K.calibration.json`` beside ``K.npy``, or ``calibration.json``
    beside a drive's ``SPN/<camera>/fingerprint.npy``."""
    from .paths import FINGERPRINT_FILE

    path = Path(fingerprint)
    return path.with_name("calibration.json") if path.name == FINGERPRINT_FILE else path.with_suffix(".calibration.json")


def cmd_identify(args: argparse.Namespace) -> int:
    """Score every image, by every method asked, against every fingerprint of its size and print the decisions."""
    import pandas as pd

    from .atomic import save_csv
    from .methods import CALIBRATED_NAME, PLAIN_NAME, MethodContext, compute_residual, get_method
    from .methods.calibration import chosen_method, load_calibration, usable as usable_fingerprint
    from .spn import check_same_size, decide, extract_residual, score_residual

    images = expand_images(args.images)
    paths: dict = {}
    fingerprints = load_fingerprint_dir(args.fingerprints, paths)
    calibrations = {c: load_calibration(calibration_path(p)) for c, p in paths.items()}
    checkpoint = resolve_checkpoint(args.checkpoint)
    model = None
    if checkpoint and Path(checkpoint).resolve() != Path(resolve_checkpoint(PRETRAINED)).resolve():
        if not Path(checkpoint).is_file():
            raise SpnRestoreError(f"{checkpoint}: checkpoint does not exist; check the path (--checkpoint).")
        model = f"{Path(checkpoint).stem}={checkpoint}"
    elif checkpoint:
        model = "shipped"
    calibrated = any(c is not None for c in calibrations.values())
    default = [PLAIN_NAME, *([model] if model else []), *([CALIBRATED_NAME] if calibrated else [])]
    every = [*CALIBRATION_CANDIDATES[:3], *([model] if model else []), *(["fused"] if model == "shipped" else []),
             CALIBRATED_NAME]
    names = _method_list(args.methods, every if args.methods == "all" else default)
    methods = {m.name: m for m in map(get_method, names)}
    for camera, cal in calibrations.items():
        if cal is not None and not usable_fingerprint(cal):
            why = str(cal.get("note") or "its own images do not match it").removeprefix("fingerprint unusable: ")
            warn(f"fingerprint {camera!r} is unusable ({why}): it is scored, but no decision names it")
    # --checkpoint also stands for the model a workflow's calibration calls 'drive' (the drive's restorer.pt)
    context = MethodContext(args.sigma, checkpoint if model and model != "shipped" else None, _device(args.device))
    threshold = args.threshold if args.threshold is not None else decision_threshold(None, _first_restorer(methods, context))
    qualities = {path: image_quality(path, args.quality, required=False) for path in images}
    width = max(len(p.name) for p in images)
    mwidth = max(8, *(len(m) for m in methods))
    cam_width = max(11, *(len(c) for c in fingerprints), len("unknown"))
    line = f"{{:<{width}}}  {{:<{mwidth}}}  {{:>4}}  {{:<{cam_width}}}  {{:>10}}  {{:>8}}  {{}}"
    header = line.format("image", "method", "Q", "fingerprint", "PCE", "NCC", "decision")
    rows: list[dict] = []
    for n, path in enumerate(images, 1):
        if len(images) > 1:
            print(f"spnrestore: [{n}/{len(images)}] {path.name}", file=sys.stderr, flush=True)
        rgb = read_image(path, args.config)
        shape = rgb.shape[:2]
        # a fingerprint of the transposed size scores an image turned by the camera without a tag (both turns)
        usable = {c: k for c, k in fingerprints.items() if k.shape in (shape, shape[::-1])}
        if not usable:  # explain the mismatch with the fingerprint of the nearest size
            camera = min(fingerprints, key=lambda c: min(abs(np.subtract(fingerprints[c].shape, s)).sum()
                                                         for s in (shape, shape[::-1])))
            check_same_size(shape, fingerprints[camera].shape, "image", f"{camera} fingerprint", name=path)
        for camera in sorted(set(fingerprints) - set(usable)):
            k = fingerprints[camera]
            warn(f"{path}: not compared with {camera!r} (fingerprint {k.shape[0]}x{k.shape[1]} px, image "
                 f"{shape[0]}x{shape[1]} px)")
        quality, how = qualities[path]
        residual = extract_residual(rgb, sigma=args.sigma, name=str(path))
        # the methods to compute: those asked, and those the calibrations choose at this quality
        needed = [m for m in methods.values() if m.computed]
        if CALIBRATED_NAME in methods:
            needed += [get_method(chosen_method(calibrations.get(c), quality if quality is not None else 100))
                       for c in usable]
        scores: dict[str, list[dict]] = {}
        for method in {m.name: m for m in needed}.values():
            if method.name == PLAIN_NAME:
                found = residual
            elif quality is None:
                warn(f"{path}: not a JPEG, so method {method.name} is not computed (it needs the JPEG quality; "
                     "pass --quality Q for an image that was a JPEG)")
                continue
            else:
                if residual.size >= PROGRESS_PIXELS:  # seconds per method at this size: say what is running
                    print(f"spnrestore: {path.name}: computing {method.name} ({residual.size / 1e6:.1f} MP)",
                          file=sys.stderr, flush=True)
                try:
                    found = compute_residual(method, rgb, residual, quality, context)
                except SpnRestoreError as exc:
                    if method.name in methods:  # asked for: the error stands
                        raise
                    warn(f"a calibration chose method {method.name}, which cannot be computed here ({exc}); pass "
                         "--checkpoint with the drive's model (results/model/restorer.pt): plain is used instead")
                    continue
            scores[method.name] = score_residual(found, rgb, usable, name=str(path))
        if CALIBRATED_NAME in methods:
            picked = []
            for camera in usable:
                chosen = chosen_method(calibrations.get(camera), quality if quality is not None else 100)
                chosen = chosen if chosen in scores else PLAIN_NAME
                picked += [r for r in scores[chosen] if r["fingerprint"] == camera]
            scores[CALIBRATED_NAME] = picked
        for method in methods:
            if method not in scores:
                continue
            group = [{"image": str(path), "method": method, "quality": quality, "quality_from": how, **score}
                     for score in scores[method]]
            group.sort(key=lambda r: -r["pce"])
            named = [r for r in group if usable_fingerprint(calibrations.get(r["fingerprint"]))]
            decision = decide(named, threshold, keys=("image", "method"))["decision"].iloc[0] if named else "unknown"
            q = "-" if quality is None else (f"~{quality}" if how == "nearest" else str(quality))
            for r in group:
                r["decision"] = decision
                if header:  # printed with the first row, so an early error is the only output
                    say(header)
                    header = ""
                say(line.format(path.name, method, q, r["fingerprint"], f"{r['pce']:.1f}", f"{r['ncc']:.5f}",
                                decision))
            rows += group
    if args.csv:
        save_csv(args.csv, pd.DataFrame(rows, columns=["image", "method", "quality", "quality_from", "fingerprint",
                                                       "pce", "ncc", "decision"]))
        say(f"written: {args.csv}")
    return 0


def _first_restorer(methods, context):
    """The model of the first model method asked (its training threshold is the default decision threshold)."""
    for method in methods.values():
        if method.needs_model:
            return context.restorer(method.checkpoint)
    return None


def cmd_pretrain(args: argparse.Namespace) -> int:
    """Pretrain the restorer on synthetic sensors, or fine-tune it on real cameras (``--real``), with the training
    engine; OUT/restorer.pt is the selected model, the work files (last.pt, logs) lie beside it."""
    from .config import load_yaml
    from .errors import ConfigError
    from .model.pretrain import pretrain
    from .model.train_config import parse_assignment, with_overrides

    path = Path(args.settings)
    try:
        mapping = load_yaml(path)  # bad YAML or not a mapping: a ConfigError naming the file
    except OSError as exc:
        raise SpnRestoreError(f"{path}: cannot read the pretraining settings ({exc.strerror}); give a YAML file "
                              "(config/pretrain.yaml is the shipped model's).") from None
    options = (("steps", args.steps), ("time_budget_s", args.time_budget), ("num_workers", args.workers),
               ("device", args.device), ("init", args.init), ("real.folder", args.real))
    assignments = [parse_assignment(text) for text in args.set] + [(k, v) for k, v in options if v is not None]
    try:
        with messages_to(stream_handler(sys.stdout)):  # the training's lines on stdout
            pretrain(args.output, with_overrides(mapping, assignments))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Write the restored residual of every image to ``DIR/<stem>.npy`` (+ preview)."""
    from .residual_files import save_residual
    from .spn import extract_residual

    images = expand_images(args.images)
    stems: dict[str, Path] = {}
    for path in images:
        if path.stem in stems:
            raise SpnRestoreError(f"{path}: same file name as {stems[path.stem]}; both would be written to "
                                  f"{Path(args.output) / (path.stem + '.npy')}; restore them into separate folders.")
        stems[path.stem] = path
    checkpoint = resolve_checkpoint(args.checkpoint)
    if checkpoint is None:
        raise SpnRestoreError(f"--checkpoint {args.checkpoint!r}: restore needs a model; give a checkpoint file or "
                              f"'{PRETRAINED}' (the model shipped with spnrestore, the default).")
    qualities = {path: image_quality(path, args.quality, required=True) for path in images}
    restorer = _restorer(checkpoint, args.device, args.sigma)
    for path in images:
        quality, how = qualities[path]
        rgb = read_image(path, args.config)
        residual = extract_residual(rgb, sigma=args.sigma, name=str(path))
        restored = _restore(restorer, rgb, residual, quality)
        out = Path(args.output) / f"{path.stem}.npy"
        save_residual(out, restored)
        say(f"{path}: quality {quality} ({how}); residual std {float(residual.std()):.3f} -> restored "
            f"{float(restored.std()):.3f}; written {out}")
    return 0


def _layout_rule(by: list[str]):
    """The camera rule of ``--by``: None for ``exif``, else the compiled pattern (the Dresden one by default)."""
    from .layout import DRESDEN_PATTERN, compile_pattern

    if by == ["exif"]:
        return None
    if by[0] == "pattern" and len(by) <= 2:
        return compile_pattern(by[1] if len(by) == 2 else DRESDEN_PATTERN)
    raise SpnRestoreError(f"--by {' '.join(by)}: write '--by exif', '--by pattern REGEX' or '--by pattern' (the "
                          "Dresden names Make_Model_Device_Number.JPG).")


def _layout_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(source folder, output folder, table path), checked: the three must not nest in a way that mixes them."""
    source, output = Path(args.source), Path(args.output)
    if not source.is_dir():
        raise SpnRestoreError(f"{source}: source folder does not exist or is not a folder; check the path.")
    table = Path(args.table) if args.table else output.parent / "layout.csv"
    src, out = source.resolve(), output.resolve()
    if out.is_relative_to(src):
        raise SpnRestoreError(f"-o {output}: the output folder is inside the source folder {source}; lay out into "
                              "a folder outside it (e.g. DRIVE/Images/Original).")
    if src.is_relative_to(out):
        raise SpnRestoreError(f"{source}: the source folder is inside the output folder {output}, where it would "
                              "count as a camera folder; move the source out of it.")
    if table.resolve().is_relative_to(out) or table.resolve().is_relative_to(src):
        raise SpnRestoreError(f"--table {table}: the table must not lie inside the output or the source folder "
                              "(the workflow or a re-run would list it as a stray file); write it e.g. to "
                              f"{output.parent / 'layout.csv'}.")
    return source, output, table


def cmd_layout(args: argparse.Namespace) -> int:
    """Lay out a folder of images as camera folders of links (or copies), with a table of what went where."""
    import re

    from . import layout

    pattern = _layout_rule(args.by)
    source, output, table = _layout_paths(args)
    try:
        flat = re.compile(args.flat) if args.flat is not None else None
    except re.error as exc:
        raise SpnRestoreError(f"--flat {args.flat!r}: not a valid regular expression ({exc}).") from None
    if layout.safe_name(args.flat_folder) != args.flat_folder or not args.flat_folder:
        raise SpnRestoreError(f"--flat-folder {args.flat_folder!r}: not a plain folder name; use e.g. 'flat'.")
    mode = "symlink" if args.symlink else "copy" if args.copy else "hardlink"
    assign = layout.exif_assigner if pattern is None else layout.pattern_assigner(pattern)
    plan = layout.plan_layout(layout.scan_sources(source, args.recursive), assign, flat, args.flat_folder)
    placed = layout.apply_layout(plan, output, mode, dry_run=args.dry_run)
    if args.dry_run:
        for p in placed:
            say(f"{p.source} -> {output / p.target} ({p.action})" if p.target else f"{p.source}: skipped, {p.reason}")
        say()
    counts = layout.camera_counts(placed, args.flat_folder)
    new = "would link" if args.dry_run else {"hardlink": "linked", "symlink": "symlinked", "copy": "copied"}[mode]
    width = max([len("camera"), *(len(c) for c in counts)])
    line = f"{{:<{width}}}  {{:>6}}  {{:>5}}  {{:>10}}  {{:>6}}  {{:>8}}"
    say(line.format("camera", "images", "flat", new, "exists", "conflict"))
    for camera, (images, flats, actions) in counts.items():
        say(line.format(camera, images, flats, actions[new], actions["exists"], actions["conflict"]))
    skipped = Counter(p.reason for p in placed if not p.target)
    n_skipped = sum(skipped.values())
    say(f"{len(counts)} camera folders, {n_skipped} file{'' if n_skipped == 1 else 's'} skipped"
        + (":" if skipped else ""))
    for reason, n in skipped.most_common():
        say(f"  {n:>6}  {reason}")
    if not args.dry_run:
        layout.write_table(placed, table)
        say(f"written: {table}")
        if mode == "symlink":
            warn("the workflow skips symlinks that point outside the Original folder; prefer hard links or --copy "
                 "for a drive the workflow reads")
    conflicts = sum(p.action == "conflict" for p in placed)
    if conflicts:
        raise SpnRestoreError(f"{output}: {conflicts} targets already hold a different file and were left as they "
                              f"are (action 'conflict' in {'the plan' if args.dry_run else table}); remove them or lay "
                              "out into an empty folder.")
    if not counts:
        raise SpnRestoreError(f"{source}: no image was placed (see the reasons above); check --by and --recursive.")
    return 0


# ----------------------------------------------------------------------------- parser
def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{value} is outside 1..100")
    return value


def _qualities(text: str) -> list[int]:
    values = [_quality(v.strip()) for v in text.split(",") if v.strip()]
    if not values or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct qualities 1..100, e.g. 90,60,30")
    return values


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value:g} must be > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``spnrestore`` argument parser with its sub-commands."""
    parser = argparse.ArgumentParser(
        prog="spnrestore",
        description="Source-camera identification by sensor pattern noise (PRNU), with restoration of the "
                    "residual of heavily compressed JPEGs by a trained model.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                description="'spnrestore COMMAND --help' describes each")
    sigma = dict(type=_positive, default=DEFAULT_SIGMA,
                 help=f"noise std of the wavelet denoiser in grey levels (default {DEFAULT_SIGMA:g}; use the value the "
                      "fingerprints were built with)")
    device = dict(default="auto", help="torch device for the model: auto (CUDA if present), cpu, cuda, cuda:N")
    config = dict(metavar="CONFIG", help="the workflow's config.yaml, whose 'develop' settings develop RAW files "
                                         "(DNG, NEF, ...) as the workflow does (default: config/config.yaml here)")

    p = sub.add_parser("fingerprint", help="estimate a camera fingerprint from its images",
                       description="Estimate the PRNU fingerprint K of one camera from images of one size "
                                   "(JPEG/PNG/TIFF; folders are expanded to their image files, sorted). Flat, "
                                   "bright, unsaturated images (sky, walls) give the best fingerprints; use 20 or "
                                   "more. Writes K (float32 H x W .npy) and a .png preview beside it.")
    p.add_argument("images", nargs="+", metavar="IMAGES_OR_FOLDERS")
    p.add_argument("--camera", required=True, metavar="NAME", help="name of the camera (shown in the summary)")
    p.add_argument("-o", "--output", required=True, metavar="K.npy",
                   help="fingerprint file to write; name it <camera>.npy in a folder for 'identify'")
    p.add_argument("--sigma", **sigma)
    p.add_argument("--config", **config)
    p.add_argument("--qualities", type=_qualities, default=[90, 60, 30], metavar="Q,Q,...",
                   help="JPEG qualities the calibration compresses the images' copies at (default 90,60,30)")
    p.add_argument("--methods", metavar="M,M,...",
                   help="methods the calibration chooses among (default plain,li2010,phase,shipped,fused; NAME=PATH for a "
                        "checkpoint)")
    p.add_argument("--no-calibrate", action="store_true",
                   help="write the fingerprint only, without K.calibration.json beside it")
    p.add_argument("--threshold", type=_positive, help="decision threshold of the calibration (default 60)")
    p.add_argument("--device", **device)
    p.set_defaults(run=cmd_fingerprint)

    p = sub.add_parser("identify", help="score images against camera fingerprints",
                       description="Compute the PCE and NCC of each image's residual against every fingerprint of "
                                   "its size and decide its camera: the highest-PCE camera when that PCE is above "
                                   "the threshold, else 'unknown', per residual method. By default plain, the model "
                                   "(--checkpoint) and, where a fingerprint has a calibration (K.calibration.json), "
                                   "'calibrated': the method its calibration chose at the nearest quality. A "
                                   "fingerprint its calibration found unusable is never named by a decision.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--fingerprints", required=True, metavar="DIR",
                   help="folder of <camera>.npy fingerprints, or a drive's SPN folder (<camera>/fingerprint.npy)")
    p.add_argument("--checkpoint", metavar="CKPT", default=PRETRAINED,
                   help=f"restoration model whose restored residuals are scored too: a checkpoint file, "
                        f"'{PRETRAINED}' (the model shipped with spnrestore, default) or 'none' (plain residuals only)")
    p.add_argument("--quality", type=_quality, metavar="Q",
                   help="JPEG quality of every image (default: estimated from each JPEG's quantisation tables)")
    p.add_argument("--threshold", type=_positive,
                   help="PCE above which the best camera is accepted (default: the threshold the --checkpoint "
                        "was trained with, else 60)")
    p.add_argument("--methods", metavar="M,M,...|all",
                   help="residual methods to score, comma-separated (plain, li2010, phase, shipped, fused, calibrated, "
                        "NAME=PATH) or 'all'")
    p.add_argument("--csv", metavar="OUT", help="also write the table as CSV")
    p.add_argument("--sigma", **sigma)
    p.add_argument("--device", **device)
    p.add_argument("--config", **config)
    p.set_defaults(run=cmd_identify)

    p = sub.add_parser("restore", help="write restored residuals of JPEGs",
                       description="Restore the sensor-noise residual of each image with a trained model and write "
                                   "it as DIR/<stem>.npy (float32 H x W, grey levels) with a .png preview.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--checkpoint", metavar="CKPT", default=PRETRAINED,
                   help=f"restoration model: a checkpoint file or '{PRETRAINED}' (the model shipped with spnrestore, "
                        "default)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the restored residuals")
    p.add_argument("--quality", type=_quality, metavar="Q",
                   help="JPEG quality of every image (default: estimated from each JPEG's quantisation tables)")
    p.add_argument("--sigma", **sigma)
    p.add_argument("--device", **device)
    p.add_argument("--config", **config)
    p.set_defaults(run=cmd_restore)

    p = sub.add_parser("pretrain", help="train the restorer on synthetic sensors or real cameras (the shipped "
                                        "model's commands)",
                       description="Train the restorer on a stream of synthetic cameras (a new sensor per example, "
                                   "exact PRNU targets; spnrestore.dataset.synthetic), or fine-tune it on a folder "
                                   "of real cameras (--real: targets from fingerprints of each camera's other images; "
                                   "spnrestore.dataset.real), with the training engine of the workflow and its "
                                   "settings (training_schema.yaml: the engine's keys, a 'synthetic' and a 'real' "
                                   "section). Writes OUT/restorer.pt, the model selected on validation, and the work "
                                   "files (last.pt, train_log.csv, val_log.csv: a killed run resumes). The shipped "
                                   "model is made by 'spnrestore pretrain --settings config/pretrain.yaml', then "
                                   "'--settings config/pretrain-real.yaml --real CAMERAS' (docs/model.md).")
    p.add_argument("--settings", default="config/pretrain.yaml", metavar="YAML",
                   help="training settings (default config/pretrain.yaml)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="folder for the model and the work files")
    p.add_argument("--steps", type=int, help="optimiser steps (overrides the settings)")
    p.add_argument("--time-budget", type=_positive, metavar="S", help="stop training after S seconds (time_budget_s)")
    p.add_argument("--workers", type=int, help="processes making examples (num_workers)")
    p.add_argument("--init", metavar="CHECKPOINT",
                   help="start from this model ('pretrained': the shipped one, 'pretrained-synthetic': its "
                        "synthetic base; its model settings must match)")
    p.add_argument("--real", metavar="CAMERAS",
                   help="fine-tune on real cameras: a folder with one sub-folder of JPEG images per camera, flat "
                        "fields in its 'flat' sub-folder (real.folder)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, VALUE in YAML, dotted KEY for a nested one (e.g. --set lr=2e-4 "
                        "--set model.width=8 --set synthetic.ranges.iso=[100,200]); repeatable")
    p.add_argument("--device", **dict(device, default=None))
    p.set_defaults(run=cmd_pretrain)

    p = sub.add_parser("layout", help="lay out a folder of images as camera folders (Dresden, VISION, EXIF)",
                       description="Build the drive's camera folders OUTPUT/<camera>/<image> from a folder of images "
                                   "(JPEG, PNG, TIFF, DNG or RAW) by hard links (default), symbolic links or copies. "
                                   "Source files are never moved or changed; since a hard link is the same file as "
                                   "its source, do not edit the laid-out tree (deleting it is safe). Re-running is "
                                   "safe: links already in place are kept, a different file at a target is "
                                   "reported and never overwritten. Every file is listed in the table (source, "
                                   "camera, target, action, reason), skipped ones with the reason.")
    p.add_argument("source", metavar="SRC", help="folder holding the images (not changed)")
    p.add_argument("--by", nargs="+", required=True, metavar="RULE",
                   help="'exif': camera = EXIF Make Model, plus _serial when the body serial number is known; "
                        "'pattern REGEX': regular expression searched in each path relative to SRC, whose named "
                        "group 'camera', or groups 'make', 'model', 'device' joined by '_', name the folder; "
                        "'pattern' alone: the Dresden names Make_Model_Device_Number.JPG "
                        "(camera folder Make_Model_Device)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="folder of the camera folders, normally DRIVE/Images/Original (created if absent)")
    p.add_argument("--flat", metavar="REGEX",
                   help="files whose path relative to SRC matches REGEX are flat-field images: they go to "
                        "OUTPUT/<camera>/<flat folder>/ ('.' for a folder of flat-field images only)")
    p.add_argument("--flat-folder", default="flat", metavar="NAME",
                   help="name of the flat-field sub-folder (default 'flat', the workflow's default)")
    p.add_argument("--recursive", action="store_true", help="also lay out the files in sub-folders of SRC")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--symlink", action="store_true",
                     help="symbolic links (absolute) instead of hard links, e.g. across file systems")
    how.add_argument("--copy", action="store_true",
                     help="copies instead of hard links: across file systems or onto exFAT/FAT drives")
    p.add_argument("--table", metavar="CSV",
                   help="where to write the table (default: layout.csv beside OUTPUT; never inside it)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and write nothing")
    p.set_defaults(run=cmd_layout)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 usage or data error, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: return argparse's status instead of exiting
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return args.run(args)
    except SpnRestoreError as exc:
        message = str(exc)
    except OSError as exc:
        message = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
    except KeyboardInterrupt:
        print("spnrestore: interrupted", file=sys.stderr)
        return 130
    print("spnrestore: " + " ".join(message.split()), file=sys.stderr)
    return EXIT_ERROR
