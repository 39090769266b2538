"""The run's plan, made once outside the Snakefile: the resolved configuration, the drive's originals and
their roles, the model the run restores with, the methods it scores, and the account printed at the start.

:func:`plan_run` computes it; :func:`load_plan` returns it from a cache in the working folder
(``.snakemake/spnrestore-plan/``) keyed by everything it depends on (the resolved configuration, the names
and kinds of the drive's entries, the reused model file, spnrestore's planning code), and computes and stores
it on a miss. ``common.smk`` only reads the plan's fields: a dry-run, or each job of a cluster run, parses the
Snakefile without walking the drive again, and planning never imports torch (a reused model's residual
settings are read from its checkpoint's metadata).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Mapping

from .. import __version__
from ..config import ENV_KEYS, load_yaml, merge_layers, validated
from ..errors import SpnRestoreError
from ..paths import DrivePaths, drive_paths

#: The cache's folder under the working folder, and how many plans it keeps.
CACHE_DIR = Path(".snakemake") / "spnrestore-plan"
CACHE_KEEP = 8
#: The modules whose code decides the plan: a change to any of them makes a new key.
_PLANNING_MODULES = ("discovery.py", "config.py", "paths.py", "stages/roles.py", "stages/plan.py",
                     "dataset/split.py", "methods/__init__.py", "methods/registry.py", "methods/models.py",
                     "model/train_config.py", "model/training_schema.yaml", "residual_files.py")


@dataclass(frozen=True)
class RunPlan:
    """Everything the rules need to know before any job runs (plain values and the discovery records)."""

    config: dict
    paths: DrivePaths
    images: list = field(default_factory=list)      # discovery.Image records, sorted by (camera, image)
    skipped: list = field(default_factory=list)     # discovery.Skipped records (the drive's and the planner's)
    roles: dict = field(default_factory=dict)       # camera -> {image: role}
    cameras: list = field(default_factory=list)     # cameras with a fingerprint
    holdout: list = field(default_factory=list)
    reused_model: str = ""             # model.checkpoint resolved to an absolute file, or ""
    model: str = ""                    # the model that restores: reused, trained here, or "" (none)
    trainable: bool = False
    lines: list = field(default_factory=list)       # the account of the drive (printed, and in results.md)
    notes: list = field(default_factory=list)       # {camera, path, reason} for skipped.csv
    messages: list = field(default_factory=list)    # printed before any job starts
    methods: list = field(default_factory=list)     # evaluation.methods as method names (or NAME=PATH specs)
    calibrate: bool = False
    drive_model_input: list = field(default_factory=list)
    keep_residuals: bool = False
    train_settings: dict = field(default_factory=dict)


def plan_to_json(plan: RunPlan) -> str:
    """The plan as JSON (the cache's format: plain data, nothing that runs code when read)."""
    data = {f.name: getattr(plan, f.name) for f in fields(RunPlan)}
    data["paths"] = plan.paths.as_dict()
    data["images"] = [asdict(i) for i in plan.images]
    data["skipped"] = [asdict(s) for s in plan.skipped]
    return json.dumps(data)  # key order kept: the rules' params are compared as written


def plan_from_json(text: str) -> RunPlan:
    """The plan written by :func:`plan_to_json`."""
    from ..discovery import Image, Skipped

    data = json.loads(text)
    data["paths"] = DrivePaths.of(data["paths"])
    data["images"] = [Image(**i) for i in data["images"]]
    data["skipped"] = [Skipped(**s) for s in data["skipped"]]
    return RunPlan(**data)


def resolve_workflow_config(base: Mapping, basedir: str | os.PathLike, overrides: Mapping | None,
                            environ: Mapping[str, str], dotenv_path: str | None,
                            workdir: str | os.PathLike = ".") -> dict:
    """``config/config.yaml`` < ``.env`` < the environment < ``--config``, validated by the schema. The
    result is cached beside the plans, keyed by the merged layers and the schema: the same layers give the
    same configuration without validating them again (jsonschema, about 0.1 s of every dry-run)."""
    schema = load_yaml(Path(basedir) / "config" / "schema.yaml")
    merged, sources = merge_layers({k: v for k, v in base.items() if k not in ENV_KEYS}, schema, dotenv_path,
                                   environ, overrides)
    text = json.dumps([__version__, merged, schema], sort_keys=True, default=str)
    path = Path(workdir) / CACHE_DIR / "config" / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.json"
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass  # damaged: validate again
    config = validated(merged, schema, sources)
    _store(path, json.dumps(config))
    return json.loads(json.dumps(config))  # the same values whether validated now or read from the cache


def _store(path: Path, text: str) -> None:
    """Write a cache entry atomically and keep the newest :data:`CACHE_KEEP` of its folder; an unwritable
    cache is only not used."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.stem}.{os.getpid()}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        for old in sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)[:-CACHE_KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def _listing(original: Path, flat_folder: str) -> list:
    """The names and kinds of the drive's camera folders and their entries (and flat-field folders): what
    discovery and the roles depend on, read without a stat per file."""
    def kinds(folder) -> list:
        return sorted((e.name, e.is_dir(), e.is_symlink()) for e in os.scandir(folder))

    out = []
    for entry in sorted(os.scandir(original), key=lambda e: e.name):
        item = [entry.name, entry.is_dir(), entry.is_symlink()]
        if entry.is_dir():
            try:
                files = kinds(entry.path)
            except OSError as exc:
                files = [f"unreadable: {exc.strerror}"]
            item.append(files)
            if flat_folder and any(n == flat_folder and d for n, d, _ in files if isinstance(n, str)):
                try:
                    item.append(kinds(os.path.join(entry.path, flat_folder)))
                except OSError as exc:
                    item.append(f"unreadable: {exc.strerror}")
        out.append(item)
    return out


def _file_stamp(path: str) -> list:
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def _reused_model(config: Mapping) -> str:
    """``model.checkpoint`` as an absolute file path ("pretrained": the shipped model), or "" (train here)."""
    from ..model.pretrained import resolve_checkpoint

    reused = resolve_checkpoint(config["model"]["checkpoint"])
    return os.path.abspath(os.path.expanduser(reused)) if reused else ""


def plan_key(config: Mapping, paths: DrivePaths) -> str:
    """The cache key of a plan: configuration, drive listing, reused model file, planning code."""
    package = Path(__file__).resolve().parents[1]
    code = [_file_stamp(str(package / m)) for m in _PLANNING_MODULES if (package / m).is_file()]
    reused = _reused_model(config)
    model = _file_stamp(reused) if reused and os.path.isfile(reused) else [reused]
    listing = _listing(paths.original, config["spn"]["flat_field_folder"])
    text = json.dumps([__version__, code, config, paths.as_dict(), model, listing], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def plan_run(config: dict, paths: DrivePaths) -> RunPlan:
    """Plan the run of ``config`` on the drive of ``paths`` (the demo drive exists by then). Raises
    :class:`SpnRestoreError` with the message for the user (the key, what is wrong, the fix)."""
    from ..discovery import Skipped, discover, images_table
    from ..methods import CALIBRATED_NAME, get_method
    from ..model.train_config import resolve_config as resolve_training_config
    from ..residual_files import keeps_residuals
    from .roles import assign_roles, cameras_without_fingerprint, holdout_cameras, plan_drive

    messages = []
    try:
        images, skipped = discover(paths.original, config["batches_per_camera"],
                                   config["spn"]["flat_field_folder"], config["spn"]["flat_field_pattern"])
    except OSError as exc:
        raise SpnRestoreError(f"cannot list {paths.original}: {exc.strerror}. Check the drive and its "
                              "permissions.") from None
    table = images_table(images)
    # Cameras with fewer than two originals can have no fingerprint: developed, never scored.
    no_fingerprint = cameras_without_fingerprint(table)
    for camera, count in no_fingerprint.items():
        reason = (f"camera has {count} image(s); a fingerprint needs at least 2 (20 or more for reliable "
                  "identification): its images are developed and compressed but not scored; add images of this "
                  "camera")
        messages.append(f"{camera}: {reason}")
        skipped.append(Skipped(camera, os.path.join(paths.original, camera), reason))
    cameras = sorted(set(table["camera"]) - set(no_fingerprint))
    holdout = [c for c in holdout_cameras(cameras, config["dataset"]["holdout_cameras"],
                                          config["dataset"]["holdout_count"]) if c not in no_fingerprint]
    # A model trained elsewhere (model.checkpoint; "pretrained": the shipped one): this drive trains nothing.
    reused = _reused_model(config)
    if reused:
        if not os.path.isfile(reused):
            raise SpnRestoreError(
                f"model.checkpoint = {config['model']['checkpoint']!r}: {reused} is not a file. Give the path of "
                "a restorer.pt written by a workflow run (results/model/restorer.pt), 'pretrained' for the model "
                "shipped with spnrestore, or leave model.checkpoint empty to train a model on this drive.")
        holdout = []
        from ..model.checkpoint_metadata import check_residual_settings, read_metadata
        from ..spn.residual import residual_settings

        try:  # refused before any job starts, as the restore rule would refuse it
            check_residual_settings(read_metadata(reused), residual_settings(config["spn"]["sigma"]), reused)
        except SpnRestoreError as exc:
            raise SpnRestoreError(f"model.checkpoint: {exc}") from None
    table["role"] = assign_roles(table, config["spn"]["fingerprint_images"], config["dataset"]["fractions"],
                                 holdout, reuse=bool(reused))
    roles = {camera: dict(zip(group["image"], group["role"])) for camera, group in table.groupby("camera")}
    drive = plan_drive(table, config["spn"]["fingerprint_images"], reused)
    messages += drive.lines
    notes = list({"camera": camera, "path": os.path.join(paths.original, camera), "reason": reason}
                  for camera, reason in drive.notes)
    model = reused or (str(paths.result("model/restorer.pt")) if drive.trainable else "")

    methods = []
    for spec in config["evaluation"]["methods"]:
        try:
            method = get_method(spec)
        except SpnRestoreError as exc:
            raise SpnRestoreError(f"evaluation.methods: {exc}") from None
        if method.checkpoint == "drive" and not model:
            messages.append("evaluation.methods: 'drive' left out: this drive trains no model and reuses none")
            continue
        if method.checkpoint == "drive" and config["model"]["checkpoint"].strip() == "pretrained":
            continue  # the drive's model is the shipped one, scored as shipped
        if method.needs_model and method.checkpoint not in ("shipped", "synthetic", "drive") \
                and not os.path.isfile(method.checkpoint):
            raise SpnRestoreError(f"evaluation.methods: {spec!r}: {method.checkpoint} is not a file; give the path "
                                  "of a restorer.pt (NAME=PATH) or leave it out")
        methods.append(method.name if method.checkpoint in ("shipped", "synthetic", "drive", None) else spec)
    try:
        train_settings = resolve_training_config({
            "pce_threshold": config["spn"]["pce_threshold"], **config["train"]["settings"],
            **(config["demo_train"] if paths.demo else {})})
    except SpnRestoreError as exc:
        raise SpnRestoreError(f"train.settings: {exc}") from None
    return RunPlan(
        config=config, paths=paths, images=list(images), skipped=list(skipped), roles=roles,
        cameras=list(cameras), holdout=list(holdout), reused_model=reused, model=model,
        trainable=drive.trainable, lines=list(drive.lines), notes=notes, messages=list(messages),
        methods=list(methods), calibrate=CALIBRATED_NAME in methods,
        drive_model_input=[model] if any(get_method(m).checkpoint == "drive" for m in methods) else [],
        keep_residuals=keeps_residuals(config["storage"]), train_settings=train_settings)


def load_plan(config: dict, paths: DrivePaths, workdir: str | os.PathLike = ".") -> RunPlan:
    """The plan of ``config`` on ``paths``'s drive: from the working folder's cache when its key matches,
    else :func:`plan_run`, stored (atomically; an unwritable cache is only not used)."""
    if paths.demo:
        from ..demo import ensure_demo_drive

        ensure_demo_drive(paths.drive, config["demo"])
    try:
        key = plan_key(config, paths)
    except OSError as exc:
        raise SpnRestoreError(f"cannot list {paths.original}: {exc.strerror}. Check the drive and its "
                              "permissions.") from None
    cache = Path(workdir) / CACHE_DIR
    path = cache / f"{key}.json"
    if path.is_file():
        try:
            return plan_from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError, KeyError):
            pass  # a damaged or older entry: plan again
    text = plan_to_json(plan_run(config, paths))
    _store(path, text)
    return plan_from_json(text)  # the same values whether planned now or read from the cache


def workflow_plan(base: Mapping, basedir: str | os.PathLike, overrides: Mapping | None,
                  environ: Mapping[str, str], dotenv_path: str | None) -> RunPlan:
    """What ``common.smk`` calls: the resolved configuration and the drive's paths, then the (cached) plan.
    What it logs (the demo drive's progress) goes where the caller's logging sends it (``common.smk``: to
    Snakemake's stderr, :func:`spnrestore.log_setup.messages_to`)."""
    config = resolve_workflow_config(base, basedir, overrides, environ, dotenv_path)
    # Results inside the working folder are named relative to it, so that a target given as a path relative to
    # the working folder (`snakemake results/spn/identification.csv`) names the same file as the rule's output.
    paths = drive_paths(config, basedir).relative_to_workdir()
    return load_plan(config, paths, ".")
