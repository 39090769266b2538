# Configuration, drive discovery, wildcard constraints and input functions shared by all rules.
import os
import sys

from snakemake.utils import validate

from spnrestore.config import ENV_KEYS, resolve_config, load_yaml
from spnrestore.discovery import Skipped, discover, images_table
from spnrestore.errors import SpnRestoreError
from spnrestore.methods import CALIBRATED_NAME, get_method
from spnrestore.model.pretrained import resolve_checkpoint
from spnrestore.model.train_config import resolve_config as resolve_training_config
from spnrestore.paths import drive_paths
from spnrestore.residual_files import keeps_residuals
from spnrestore.stages.roles import (
    EVALUATED_ROLES,
    UNSCORED_ROLES,
    NEW_DRIVE,
    assign_roles,
    cameras_without_fingerprint,
    holdout_cameras,
    plan_drive,
)


def _resolve_configuration():
    """Layer .env and the environment under --config, validate, resolve the drive folders."""
    try:
        resolved = resolve_config(
            base={k: v for k, v in config.items() if k not in ENV_KEYS},
            schema=load_yaml(os.path.join(workflow.basedir, "config", "schema.yaml")),
            # run.sh demo sets SPNRESTORE_DOTENV empty: the demo never reads a real drive's .env
            dotenv_path=os.environ.get("SPNRESTORE_DOTENV", ".env") or None,
            environ=os.environ,
            overrides=workflow.config_settings.overwrite_config,
        )
        validate(resolved, os.path.join(workflow.basedir, "config", "schema.yaml"))
        return resolved, drive_paths(resolved, workflow.basedir)
    except SpnRestoreError as exc:
        raise SystemExit(f"spnrestore: {exc}")


_resolved, PATHS = _resolve_configuration()
config.clear()
config.update(_resolved)
# Results inside the working folder are named relative to it, so that a target given as a path relative to
# the working folder (`snakemake results/spn/identification.csv`) names the same file as the rule's output.
PATHS = PATHS.relative_to_workdir()

# Every file of the drive and of the results comes from PATHS (spnrestore.paths.DrivePaths); the rules
# hand it to the stages as DRIVE.
DRIVE = PATHS.as_dict()
RESULTS = str(PATHS.results)
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
QUALITIES = list(config["quality_levels"])
# With --resources gpu=N the jobs that ask for a GPU take turns on it (the README's one-GPU command): a restore
# job then reads and scores around the model in 4 threads; otherwise (no GPU, or a cluster giving each job
# its own) the restore jobs run side by side with one thread each.
GPU_TURNS = "gpu" in workflow.global_resources
RESTORE_THREADS = 4 if GPU_TURNS else 1
# Whether the JPEGs' residuals are stored (rule residual) or computed where they are read; the originals'
# residuals are stored only for the original_residual training target, or with the JPEGs'.
KEEP_RESIDUALS = keeps_residuals(config["storage"])
KEEP_ORIGINAL_RESIDUALS = (
    KEEP_RESIDUALS or config["dataset"]["target"] == "original_residual"
)

if PATHS.demo:
    from spnrestore.demo import ensure_demo_drive

    ensure_demo_drive(
        PATHS.drive, config["demo"], log=lambda m: print(m, file=sys.stderr)
    )

try:
    IMAGES, SKIPPED = discover(
        PATHS.original,
        config["batches_per_camera"],
        config["spn"]["flat_field_folder"],
        config["spn"]["flat_field_pattern"],
    )
except OSError as exc:
    raise SystemExit(
        f"spnrestore: cannot list {PATHS.original}: {exc.strerror}. Check the drive and its permissions."
    )
except SpnRestoreError as exc:
    raise SystemExit(f"spnrestore: {exc}")

BATCHES = {}
for _image in IMAGES:
    BATCHES.setdefault((_image.camera, _image.batch), []).append(_image)
_table = images_table(IMAGES)
# Cameras with fewer than two originals can have no fingerprint: developed, never scored.
_NO_FINGERPRINT = cameras_without_fingerprint(_table)
for _camera, _count in _NO_FINGERPRINT.items():
    _reason = (
        f"camera has {_count} image(s); a fingerprint needs at least 2 (20 or more for "
        "reliable identification): its images are developed and compressed but not scored; add images "
        "of this camera"
    )
    print(f"spnrestore: {_camera}: {_reason}", file=sys.stderr)
    SKIPPED.append(Skipped(_camera, os.path.join(PATHS.original, _camera), _reason))
# Cameras with a fingerprint (the identifiable ones): they are scored, trained on and evaluated.
CAMERAS = sorted(set(_table["camera"]) - set(_NO_FINGERPRINT))
HOLDOUT = [
    camera
    for camera in holdout_cameras(
        CAMERAS,
        config["dataset"]["holdout_cameras"],
        config["dataset"]["holdout_count"],
    )
    if camera not in _NO_FINGERPRINT
]
# A model trained elsewhere (model.checkpoint): this drive trains nothing and evaluates every scored image.
# "pretrained": the model shipped with spnrestore
REUSED_MODEL = resolve_checkpoint(config["model"]["checkpoint"])
if REUSED_MODEL:
    REUSED_MODEL = os.path.abspath(os.path.expanduser(REUSED_MODEL))
    if not os.path.isfile(REUSED_MODEL):
        raise SystemExit(
            f"spnrestore: model.checkpoint = {config['model']['checkpoint']!r}: {REUSED_MODEL} is not a file. "
            "Give the path of a restorer.pt written by a workflow run (results/model/restorer.pt), 'pretrained' "
            "for the model shipped with spnrestore, or leave model.checkpoint empty to train a model on this drive."
        )
    HOLDOUT = []
    from spnrestore.model.checkpoint import check_residual_settings, load_checkpoint
    from spnrestore.spn import residual_settings

    try:  # refused before any job starts, as the restore rule would refuse it
        check_residual_settings(
            load_checkpoint(REUSED_MODEL),
            residual_settings(config["spn"]["sigma"]),
            REUSED_MODEL,
        )
    except SpnRestoreError as exc:
        raise SystemExit(f"spnrestore: model.checkpoint: {exc}")
try:
    _table["role"] = assign_roles(
        _table,
        config["spn"]["fingerprint_images"],
        config["dataset"]["fractions"],
        HOLDOUT,
        reuse=bool(REUSED_MODEL),
    )
except SpnRestoreError as exc:
    raise SystemExit(f"spnrestore: {exc}")
ROLES = {
    camera: dict(zip(group["image"], group["role"]))
    for camera, group in _table.groupby("camera")
}
# The account of the drive, one line per camera, and whether it trains (printed before any job starts).
PLAN = plan_drive(_table, config["spn"]["fingerprint_images"], REUSED_MODEL)
for _line in PLAN.lines:
    print(f"spnrestore: {_line}", file=sys.stderr)
PLAN_NOTES = [
    {"camera": camera, "path": os.path.join(PATHS.original, camera), "reason": reason}
    for camera, reason in PLAN.notes
]
# The model that restores this drive's residuals: reused, trained here, or none (nothing can train).
MODEL = (
    REUSED_MODEL
    if REUSED_MODEL
    else str(PATHS.result("model/restorer.pt")) if PLAN.trainable else ""
)


def _evaluated_methods():
    """evaluation.methods as method names: ``drive`` only where the drive has a model (left out where it is
    the shipped model itself); a checkpoint given by path must exist."""
    names = []
    for spec in config["evaluation"]["methods"]:
        try:
            method = get_method(spec)
        except SpnRestoreError as exc:
            raise SystemExit(f"spnrestore: evaluation.methods: {exc}")
        if method.checkpoint == "drive" and not MODEL:
            print(
                "spnrestore: evaluation.methods: 'drive' left out: this drive trains no model and reuses none",
                file=sys.stderr,
            )
            continue
        if (
            method.checkpoint == "drive"
            and config["model"]["checkpoint"].strip() == "pretrained"
        ):
            continue  # the drive's model is the shipped one, scored as shipped
        if method.needs_model and method.checkpoint not in ("shipped", "drive"):
            if not os.path.isfile(method.checkpoint):
                raise SystemExit(
                    f"spnrestore: evaluation.methods: {spec!r}: {method.checkpoint} is not a file; give the "
                    "path of a restorer.pt (NAME=PATH) or leave it out"
                )
        names.append(
            method.name if method.checkpoint in ("shipped", "drive", None) else spec
        )
    return names


# The residual methods the evaluation scores (spnrestore.methods), whether it scores the calibrated choice,
# and the drive's model as the restore and calibrate jobs' input where the method drive needs it.
METHODS = _evaluated_methods()
CALIBRATE = CALIBRATED_NAME in METHODS
DRIVE_MODEL_INPUT = (
    [MODEL] if any(get_method(m).checkpoint == "drive" for m in METHODS) else []
)


wildcard_constraints:
    camera="[^/]+",
    batch="b[0-9]{4}",


def batch_images(wildcards):
    """Records (camera, image, path, format, batch, flat, role) of one batch, for the params of batch rules."""
    return [
        {**vars(i), "role": ROLES[i.camera][i.image]}
        for i in BATCHES[(wildcards.camera, wildcards.batch)]
    ]


def batch_originals(wildcards):
    """The original files of one batch (inputs of its develop job)."""
    return [i.path for i in BATCHES[(wildcards.camera, wildcards.batch)]]


def batch_fingerprints(wildcards):
    """The fingerprints a develop job scores its originals against: all of them, when the batch holds an
    image that is scored (none for a batch of fingerprint images only: it need not wait for them).
    """
    images = BATCHES[(wildcards.camera, wildcards.batch)]
    scored = any(ROLES[i.camera][i.image] not in UNSCORED_ROLES for i in images)
    return FINGERPRINTS if scored else []


def batch_table(stage):
    """The tracked table of one batch job of ``stage``, with wildcards."""
    return str(PATHS.batch_table(stage, "{camera}", "{batch}"))


def all_batch_tables(stage):
    """Tracked per-batch tables of ``stage`` for every (camera, batch)."""
    return [
        str(PATHS.batch_table(stage, camera, batch))
        for camera, batch in sorted(BATCHES)
    ]


def fingerprint_records(wildcards):
    """Image name, path and format of one camera's fingerprint images."""
    return [
        {"image": i.image, "path": i.path, "format": i.format, "flat": i.flat}
        for i in IMAGES
        if i.camera == wildcards.camera and ROLES[i.camera][i.image] == "fingerprint"
    ]


def fingerprint_originals(wildcards):
    """Original files of one camera's fingerprint images (developed or loaded again by the fingerprint rule)."""
    return [record["path"] for record in fingerprint_records(wildcards)]


def batch_roles(wildcards):
    """Role of each image of one batch."""
    return {
        i.image: ROLES[i.camera][i.image]
        for i in BATCHES[(wildcards.camera, wildcards.batch)]
    }


FINGERPRINTS = [str(PATHS.fingerprint(camera)) for camera in CAMERAS]


def evaluated_batch_tables(stage):
    """Input function: the ``stage`` tables of one camera's batches that hold test or holdout images."""

    def tables(wildcards):
        return [
            str(PATHS.batch_table(stage, camera, batch))
            for (camera, batch), images in sorted(BATCHES.items())
            if camera == wildcards.camera
            and any(ROLES[camera][i.image] in EVALUATED_ROLES for i in images)
        ]

    return tables


EVALUATED_CAMERAS = sorted(
    {c for c in CAMERAS if any(r in EVALUATED_ROLES for r in ROLES[c].values())}
)
SUBSETS = [NEW_DRIVE] if REUSED_MODEL else ["seen", "holdout"] if HOLDOUT else ["seen"]
try:
    TRAIN_SETTINGS = resolve_training_config(
        {
            "pce_threshold": config["spn"]["pce_threshold"],
            **config["train"]["settings"],
            **(config["demo_train"] if PATHS.demo else {}),
        }
    )
except SpnRestoreError as exc:
    raise SystemExit(f"spnrestore: train.settings: {exc}")
