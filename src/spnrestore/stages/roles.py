"""The role of every original: fingerprint, train, val, test, holdout or no_fingerprint.

Per camera, its flat-field images (column ``flat``) and then the images with the
smallest stable hash, up to ``n_fingerprint`` in all, build the camera's
fingerprint: they are never scored or used as training examples (every
flat-field image has this role, even beyond ``n_fingerprint``). The others are
split train/val/test by another stable hash (:mod:`spnrestore.dataset.split`).
Whole cameras can be held out of training (role ``holdout``) to measure
generalisation to unseen sensors. A camera with fewer than
:data:`MIN_FINGERPRINT_IMAGES` originals can have no fingerprint: its images get
role ``no_fingerprint`` (developed and compressed, never scored, never trained
on). Roles only depend on camera and file names and on which files are flat
fields; adding an image can only move the one it displaces from the
fingerprint set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:  # the workflow's planning imports this module for its role names: pandas only when used
    import pandas as pd

MIN_FINGERPRINT_IMAGES = 2
#: Fewest training images (over the drive) with which the train rule runs; fewer: the drive trains nothing.
MIN_TRAIN_IMAGES = 2
NO_FINGERPRINT = "no_fingerprint"
#: Role of every scored image when the drive reuses a model trained elsewhere (``model.checkpoint``).
NEW_DRIVE = "new_drive"
UNSCORED_ROLES = ("fingerprint", NO_FINGERPRINT)
EVALUATED_ROLES = ("test", "holdout", NEW_DRIVE)
ROLE_ORDER = ("fingerprint", "train", "val", "test", "holdout", NEW_DRIVE, NO_FINGERPRINT)


def subset_of(role: str) -> str:
    """The evaluation subset of an evaluated role: ``holdout`` (cameras held out of training), ``new_drive``
    (a drive evaluated with a model trained elsewhere), else ``seen`` (test images of training cameras)."""
    return role if role in ("holdout", NEW_DRIVE) else "seen"


def holdout_cameras(cameras: Iterable[str], names: Iterable[str], count: int) -> list[str]:
    """Cameras held out of training: ``names`` if given, else the ``count`` cameras with the
    smallest stable hash (none when fewer than three cameras would remain for training)."""
    cameras = sorted(set(cameras))
    names = list(names)
    if names:
        return names
    if len(cameras) - count < 2:
        return []
    from ..dataset.split import unit_hash

    return sorted(cameras, key=lambda c: unit_hash(c, "", "holdout"))[:count]


def cameras_without_fingerprint(images: pd.DataFrame) -> dict[str, int]:
    """Cameras of ``images`` (column camera) with fewer than MIN_FINGERPRINT_IMAGES originals, with their count."""
    counts = images.groupby("camera").size()
    return {str(c): int(n) for c, n in counts.items() if n < MIN_FINGERPRINT_IMAGES}


def assign_roles(
    images: pd.DataFrame,
    n_fingerprint: int,
    fractions: Mapping[str, float],
    holdout: Iterable[str] = (),
    reuse: bool = False,
) -> pd.Series:
    """Role of each row of ``images`` (columns camera, image, optional bool flat), aligned with its index.

    ``reuse``: the drive is evaluated with a model trained elsewhere, so every image that does not build a
    fingerprint has role :data:`NEW_DRIVE` (none is trained on, all are evaluated)."""
    import pandas as pd

    from ..dataset.split import split_images, unit_hash

    flat = images["flat"].astype(bool) if "flat" in images else pd.Series(False, index=images.index)
    key = pd.Series([unit_hash(c, i, "fingerprint") for c, i in zip(images["camera"], images["image"])],
                    index=images.index)
    rank = key[~flat].groupby(images["camera"][~flat]).rank(method="first").reindex(images.index)
    room = n_fingerprint - flat.groupby(images["camera"]).transform("sum")
    roles = split_images(images, fractions, () if reuse else holdout)
    if reuse:
        roles[:] = NEW_DRIVE
    roles[flat | (rank <= room)] = "fingerprint"
    roles[images["camera"].isin(cameras_without_fingerprint(images))] = NO_FINGERPRINT
    return roles.rename("role")


@dataclass
class DrivePlan:
    """What a drive's roles allow: one line per camera for the start of the run, notes for ``skipped.csv``
    (camera, reason), and whether the drive trains (``trainable``) and evaluates anything (``evaluated``)."""

    lines: list[str]
    notes: list[tuple[str, str]]
    train_images: int
    trainable: bool
    evaluated: int


def plan_drive(images: pd.DataFrame, n_fingerprint: int, checkpoint: str = "",
               min_train: int = MIN_TRAIN_IMAGES) -> DrivePlan:
    """The account of a drive from its images' roles (columns camera, image, role): per camera how many
    originals go to each role and what follows, with the fix; then whether the drive can train.

    ``checkpoint``: the model reused by this drive (``model.checkpoint``), empty when the drive trains its own.
    """
    counts = images.groupby(["camera", "role"]).size().unstack(fill_value=0)
    lines, notes = [], []
    for camera, row in counts.iterrows():
        parts = ", ".join(f"{int(row[r])} {r}" for r in ROLE_ORDER if r in row and row[r])
        line = f"{camera}: {int(row.sum())} originals: {parts}"
        if row.get(NO_FINGERPRINT, 0):
            line += " (no fingerprint: nothing is scored)"
        elif not sum(row.get(r, 0) for r in ("train", "val", *EVALUATED_ROLES)):
            reason = (f"nothing left to score: all {int(row.get('fingerprint', 0))} usable images build the "
                      f"fingerprint (spn.fingerprint_images = {n_fingerprint}, flat fields always do); add natural "
                      "images of this camera or lower spn.fingerprint_images")
            line += f"; {reason}"
            notes.append((str(camera), reason))
        lines.append(line)
    train = int(counts["train"].sum()) if "train" in counts else 0
    evaluated = int(sum(counts[r].sum() for r in EVALUATED_ROLES if r in counts))
    if checkpoint:
        lines.append(f"model.checkpoint = {checkpoint}: this drive trains nothing; every image that does not build "
                     f"a fingerprint ({evaluated}) is evaluated with that model (subset {NEW_DRIVE})")
        return DrivePlan(lines, notes, 0, False, evaluated)
    trainable = train >= min_train
    if not trainable:
        reason = (f"too few images to train: {train}, need {min_train}; identification still runs. Add images, "
                  "lower spn.fingerprint_images, or evaluate a model trained elsewhere (model.checkpoint: PATH)")
        lines.append(reason)
        notes.append(("", reason))
    elif not evaluated:
        lines.append("nothing to evaluate: no camera has test or holdout images (add images or change "
                     "dataset.fractions); the model is trained, the evaluation tables are empty")
    return DrivePlan(lines, notes, train, trainable, evaluated)
