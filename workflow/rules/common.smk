# The run's plan (spnrestore.stages.plan: configuration, drive, roles, model, methods; cached in the working
# folder, keyed by the configuration and the drive's listing), then the input functions of the rules.
import os
import sys

from spnrestore.errors import SpnRestoreError
from spnrestore.log_setup import messages_to, stream_handler
from spnrestore.stages.plan import workflow_plan
from spnrestore.stages.roles import EVALUATED_ROLES, UNSCORED_ROLES, NEW_DRIVE

try:
    # what the package logs while planning (the demo drive's progress) goes to Snakemake's stderr
    with messages_to(stream_handler(sys.stderr)):
        RUN = workflow_plan(
            config,
            workflow.basedir,
            overrides=workflow.config_settings.overwrite_config,
            environ=os.environ,
            # run.sh demo sets SPNRESTORE_DOTENV empty: the demo never reads a real drive's .env
            dotenv_path=os.environ.get("SPNRESTORE_DOTENV", ".env") or None,
        )
except SpnRestoreError as exc:
    raise SystemExit(f"spnrestore: {exc}")
config.clear()
config.update(RUN.config)
for _line in RUN.messages:
    print(f"spnrestore: {_line}", file=sys.stderr)

# Every file of the drive and of the results comes from PATHS (spnrestore.paths.DrivePaths); the rules
# hand it to the stages as DRIVE.
PATHS = RUN.paths
DRIVE = PATHS.as_dict()
RESULTS = str(PATHS.results)
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"
QUALITIES = list(config["quality_levels"])
# With --resources gpu=N the jobs that ask for a GPU take turns on it (the README's one-GPU command): a restore
# job then reads and scores around the model in 4 threads; otherwise (no GPU, or a cluster giving each job
# its own) the restore jobs run side by side, each with its camera's share of the cores (restore_threads).
GPU_TURNS = "gpu" in workflow.global_resources
RESTORE_THREADS = 4
# Whether the JPEGs' residuals are stored (rule residual) or computed where they are read; the originals'
# residuals are stored only for the original_residual training target, or with the JPEGs'.
KEEP_RESIDUALS = RUN.keep_residuals
KEEP_ORIGINAL_RESIDUALS = (
    KEEP_RESIDUALS or config["dataset"]["target"] == "original_residual"
)
IMAGES, SKIPPED, ROLES = RUN.images, RUN.skipped, RUN.roles
BATCHES = {}
for _image in IMAGES:
    BATCHES.setdefault((_image.camera, _image.batch), []).append(_image)
# Cameras with a fingerprint (the identifiable ones): they are scored, trained on and evaluated.
CAMERAS, HOLDOUT = RUN.cameras, RUN.holdout
# A model trained elsewhere (model.checkpoint; "pretrained": the model shipped with spnrestore), or "".
REUSED_MODEL = RUN.reused_model
# The account of the drive (lines) and whether it trains; its notes go to skipped.csv.
PLAN = RUN
PLAN_NOTES = RUN.notes
# The model that restores this drive's residuals: reused, trained here, or none (nothing can train).
MODEL = RUN.model
# The residual methods the evaluation scores (spnrestore.methods), whether it scores the calibrated choice,
# and the drive's model as the restore and calibrate jobs' input where the method drive needs it.
METHODS = RUN.methods
CALIBRATE = RUN.calibrate
DRIVE_MODEL_INPUT = RUN.drive_model_input


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
# evaluated images per camera (restore_threads)
EVALUATED_COUNTS = {
    c: sum(r in EVALUATED_ROLES for r in ROLES[c].values()) for c in EVALUATED_CAMERAS
}


def restore_threads(wildcards):
    """Threads of one camera's restore job: 4 where the jobs take turns on a GPU; else the camera's share of
    the evaluated images times the cores (at least 1, at most 4: the JPEGs in flight take memory), so that the
    jobs running side by side end together (a holdout camera has all its images evaluated, a seen camera a
    fifth of them). On a cluster the cores are the submitting machine's."""
    if GPU_TURNS:
        return RESTORE_THREADS
    cores = (
        workflow.cores
        if workflow.cores and workflow.cores < 4096
        else os.cpu_count() or 1
    )
    share = EVALUATED_COUNTS.get(wildcards.camera, 0) / max(
        sum(EVALUATED_COUNTS.values()), 1
    )
    return max(1, min(RESTORE_THREADS, int(cores * share)))


SUBSETS = [NEW_DRIVE] if REUSED_MODEL else ["seen", "holdout"] if HOLDOUT else ["seen"]
TRAIN_SETTINGS = RUN.train_settings
