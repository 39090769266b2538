# Configuration, drive discovery, wildcard constraints and input functions shared by all rules.
import os
import sys

from snakemake.utils import validate

from spnrestore.config import ENV_KEYS, drive_paths, resolve_config, load_yaml
from spnrestore.discovery import discover
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
        PATHS.drive.parent, config["demo"], log=lambda m: print(m, file=sys.stderr)
    )

try:
    IMAGES, SKIPPED = discover(PATHS.original, config["batches_per_camera"])
except OSError as exc:
    raise SystemExit(
        f"spnrestore: cannot list {PATHS.original}: {exc.strerror}. Check the drive and its permissions."
    )

BATCHES = {}
for _image in IMAGES:
    BATCHES.setdefault((_image.camera, _image.batch), []).append(_image)
CAMERAS = sorted({image.camera for image in IMAGES})


wildcard_constraints:
    camera="[^/]+",
    batch="b[0-9]{4}",
    quality="[0-9]+",


def batch_images(wildcards):
    """Records (camera, image, path, format, batch) of one batch, for the params of batch rules."""
    return [vars(i) for i in BATCHES[(wildcards.camera, wildcards.batch)]]


def batch_raw_files(wildcards):
    """The RAW files of one batch (inputs of its develop job)."""
    return [i.path for i in BATCHES[(wildcards.camera, wildcards.batch)]]


def all_batch_tables(stage):
    """Tracked per-batch tables of ``stage`` for every (camera, batch)."""
    return [
        f"{RESULTS}/batches/{stage}/{camera}/{batch}.csv"
        for camera, batch in sorted(BATCHES)
    ]
