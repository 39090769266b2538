"""The drive's layout: every file the workflow reads or writes, by what it holds.

One owner of the paths, built from the resolved configuration (:func:`drive_paths`): the workflow's
rules (``common.smk``), the stages, the figures and the command line ask a :class:`DrivePaths` for
a file instead of joining folders themselves.

::

    <original>/<camera>/<image>.<ext>                    originals (read-only to the workflow)
    <compressed>/<camera>/<Q>/<image>.jpg                 JPEG copies, one folder per quality
    <spn>/<camera>/original/<image>.npy (+ .png)          residual of the uncompressed development (when kept)
    <spn>/<camera>/<Q>/<image>.npy (+ .png)               residual of the JPEG at quality Q (when kept)
    <spn>/<camera>/methods/<method>/<Q>/<image>.npy       a method's residual of that JPEG (when kept)
    <spn>/<camera>/fingerprint.npy (+ .png)               the camera's fingerprint
    <spn>/<camera>/calibration_set.npz                    its known images' leave-one-out fingerprints (window)
    <spn>/<camera>/calibration.json                       the method chosen per quality, with its figures
    <results>/batches/<stage>/<camera>/<batch>.csv        tracked table of one batch job
    <results>/...                                         summaries, model, evaluation, logs
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Mapping

from .config import DEMO_DIR, ENV_KEYS
from .errors import ConfigError

ORIGINAL = "original"  # the residual source of the uncompressed development (beside the JPEG qualities)
METHODS = "methods"
FINGERPRINT_FILE = "fingerprint.npy"


@dataclass(frozen=True)
class DrivePaths:
    """The folders of one drive (absolute) and of its results (relative to the working folder when inside it,
    see :meth:`relative_to_workdir`), and every file path under them."""

    drive: Path
    original: Path
    compressed: Path
    spn: Path
    results: Path
    demo: bool = False

    @classmethod
    def of(cls, value: "DrivePaths | Mapping") -> "DrivePaths":
        """``value`` itself, or the DrivePaths of a mapping made by :meth:`as_dict` (a workflow param)."""
        if isinstance(value, DrivePaths):
            return value
        return cls(**{k: (bool(v) if k == "demo" else Path(v)) for k, v in value.items()})

    def relative_to_workdir(self, workdir: str | os.PathLike = ".") -> "DrivePaths":
        """These paths with the results folder relative to ``workdir`` when it lies inside it (Snakemake
        matches a relative target only to a relative output); folders outside it stay absolute."""
        workdir = Path(workdir).resolve()
        results = self.results.resolve()
        if results.is_relative_to(workdir):
            return replace(self, results=Path(os.path.relpath(results, workdir)))
        return self

    def as_dict(self) -> dict:
        """Plain strings (and the demo flag): what a Snakemake param can carry."""
        return {k: (v if isinstance(v, bool) else str(v)) for k, v in asdict(self).items()}

    # ------------------------------------------------------------------ drive folders
    def jpeg(self, camera: str, quality: int | str, image: str) -> Path:
        """``Compressed/<camera>/<Q>/<image>.jpg``."""
        return self.compressed / camera / str(quality) / f"{image}.jpg"

    def residual(self, camera: str, source: int | str, image: str) -> Path:
        """``SPN/<camera>/<source>/<image>.npy``; source is :data:`ORIGINAL` or a JPEG quality."""
        return self.spn / camera / str(source) / f"{image}.npy"

    def method_residual(self, camera: str, method: str, quality: int | str, image: str) -> Path:
        """``SPN/<camera>/methods/<method>/<Q>/<image>.npy``: the residual of a method (other than plain) of the
        JPEG at quality Q."""
        return self.spn / camera / METHODS / method / str(quality) / f"{image}.npy"

    def fingerprint(self, camera: str) -> Path:
        """``SPN/<camera>/fingerprint.npy``."""
        return self.spn / camera / FINGERPRINT_FILE

    def calibration_set(self, camera: str) -> Path:
        """``SPN/<camera>/calibration_set.npz``: the known images' leave-one-out fingerprints and pixels on the
        central window (written with the fingerprint)."""
        return self.spn / camera / "calibration_set.npz"

    def calibration(self, camera: str) -> Path:
        """``SPN/<camera>/calibration.json``: the method chosen per quality and the figures it was chosen on."""
        return self.spn / camera / "calibration.json"

    @staticmethod
    def preview(path: str | os.PathLike) -> Path:
        """The viewable PNG written beside a residual or fingerprint ``.npy``."""
        return Path(path).with_suffix(".png")

    # ------------------------------------------------------------------ results folder
    def batch_table(self, stage: str, camera: str, batch: str) -> Path:
        """Tracked table of one batch job of ``stage`` (develop, residual, score)."""
        return self.results / "batches" / stage / camera / f"{batch}.csv"

    def fingerprint_table(self, camera: str) -> Path:
        """Which images built ``camera``'s fingerprint, and why others did not."""
        return self.results / "fingerprints" / f"{camera}.csv"

    def restore_table(self, camera: str) -> Path:
        """Scores of the computed methods' residuals of one camera's evaluated JPEGs (rule restore)."""
        return self.results / "restore" / f"{camera}.csv"

    def result(self, name: str) -> Path:
        """A file or folder of the results folder by its relative name (``spn/scores.csv``, ``model``, ...)."""
        return self.results / name


def drive_paths(config: Mapping, project_dir: str | os.PathLike, workdir: str | os.PathLike = ".") -> DrivePaths:
    """Resolve the drive folders; a missing drive or Original folder is a ConfigError.

    With an empty ``external_drive`` the demo drive ``<project_dir>/.demo/drive`` is
    used (it need not exist yet: the workflow generates it).
    """
    project_dir = Path(project_dir).resolve()
    workdir = Path(workdir).resolve()
    demo = not str(config["external_drive"]).strip()
    drive = project_dir / DEMO_DIR / "drive" if demo else Path(config["external_drive"]).expanduser()
    if not demo:
        if not drive.is_absolute():
            drive = workdir / drive
        if not drive.is_dir():
            raise ConfigError(
                f"EXTERNAL_DRIVE = {str(config['external_drive'])!r}: the folder does not exist "
                "(is the drive mounted?). Mount the drive or correct EXTERNAL_DRIVE in .env, "
                "the environment or --config external_drive=PATH."
            )

    def sub(key: str) -> Path:
        path = Path(str(config[key])).expanduser()
        return path if path.is_absolute() else drive / path

    original = sub("original_images_dir")
    if not demo and not original.is_dir():
        raise ConfigError(
            f"ORIGINAL_IMAGES_DIR = {str(config['original_images_dir'])!r}: {original} is not a folder. "
            "It must hold one sub-folder per camera model with the RAW files; correct ORIGINAL_IMAGES_DIR."
        )
    results = str(config.get("results_dir") or "").strip()
    if results:
        results_path = Path(results).expanduser()
        results_path = results_path if results_path.is_absolute() else workdir / results_path
    else:
        results_path = project_dir / DEMO_DIR / "results" if demo else workdir / "results"
    outputs = {"compressed_images_dir": sub("compressed_images_dir"), "spn_images_dir": sub("spn_images_dir"),
               "results_dir": results_path}
    originals = original.resolve()
    for key, path in outputs.items():
        resolved = path.resolve()
        if resolved == originals or originals in resolved.parents or resolved in originals.parents:
            raise ConfigError(
                f"{key.upper() if key.upper() in ENV_KEYS else key} = {str(config.get(key) or '')!r}: {path} is inside, or holds, the Original folder "
                f"{original}; the workflow never writes among the originals. Choose a folder beside it "
                "(e.g. Images/Compressed)."
            )
    return DrivePaths(drive, original, outputs["compressed_images_dir"], outputs["spn_images_dir"], results_path, demo)


