# Configuration, drive discovery, wildcard constraints and input functions shared by all rules.
import os
import sys

from snakemake.utils import validate

from spnrestore.config import ENV_KEYS, drive_paths, resolve_config, load_yaml
from spnrestore.discovery import Skipped, discover, images_table
from spnrestore.roles import assign_roles, cameras_without_fingerprint, holdout_cameras
from spnrestore.errors import SpnRestoreError


def _resolve_configuration():
    """Layer .env and the environment under --config, validate, resolve the drive folders."""
    try:
        resolved = resolve_config(
            base={k: v for k, v in config.items() if k not in ENV_KEYS},
            schema=load_yaml(os.path.join(workflow.basedir, "config", "schema.yaml")),
            dotenv_path=".env",
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

RESULTS = str(PATHS.results)
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
QUALITIES = list(config["quality_levels"])

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
try:
    _table["role"] = assign_roles(
        _table,
        config["spn"]["fingerprint_images"],
        config["dataset"]["fractions"],
        HOLDOUT,
    )
except SpnRestoreError as exc:
    raise SystemExit(f"spnrestore: {exc}")
ROLES = {
    camera: dict(zip(group["image"], group["role"]))
    for camera, group in _table.groupby("camera")
}
SPN = str(PATHS.spn)


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


def all_batch_tables(stage):
    """Tracked per-batch tables of ``stage`` for every (camera, batch)."""
    return [
        f"{RESULTS}/batches/{stage}/{camera}/{batch}.csv"
        for camera, batch in sorted(BATCHES)
    ]


def fingerprint_records(wildcards):
    """Image name, path and format of one camera's fingerprint images."""
    return [
        {"image": i.image, "path": i.path, "format": i.format}
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


FINGERPRINTS = {camera: f"{SPN}/{camera}/fingerprint.npy" for camera in CAMERAS}


def spn_root(wildcards, input):
    """The SPN folder, inferred from the fingerprint inputs (``SPN/<camera>/fingerprint.npy``)."""
    return os.path.dirname(os.path.dirname(input.fingerprints[0]))


def evaluated_batch_tables(stage):
    """Input function: the ``stage`` tables of one camera's batches that hold test or holdout images."""

    def tables(wildcards):
        return [
            f"{RESULTS}/batches/{stage}/{camera}/{batch}.csv"
            for (camera, batch), images in sorted(BATCHES.items())
            if camera == wildcards.camera
            and any(ROLES[camera][i.image] in ("test", "holdout") for i in images)
        ]

    return tables


EVALUATED_CAMERAS = sorted(
    {c for c in CAMERAS if any(r in ("test", "holdout") for r in ROLES[c].values())}
)
SUBSETS = ["seen", "holdout"] if HOLDOUT else ["seen"]
TRAIN_SETTINGS = {
    "pce_threshold": config["spn"]["pce_threshold"],
    **config["train"]["settings"],
    **(config["demo_train"] if PATHS.demo else {}),
}
