"""Layout, marker and atomic installation of the demo drive.

A drive at ``root`` holds::

    root/Images/Original/<Camera_Model>/<image>.DNG|.dng   raw shots (what discovery sees)
    root/truth/<Camera_Model>/K.npy                       PRNU factor, float32 (H, W)
    root/truth/<Camera_Model>/camera.json                 CFA, levels, colour, noise, per-image log
    root/demo.json                                        marker: format version and parameters

It is built in a hidden sibling folder and renamed onto ``root`` when complete, so
a drive with ``demo.json`` is whole; a missing marker or other parameters mean it
is rebuilt. An existing ``root`` is only ever replaced when it holds nothing but
those three entries.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Mapping

import numpy as np

from spnrestore.atomic import save_npy, write_text
from spnrestore.demo.dng import ORIENTATION_NORMAL, ORIENTATION_ROTATE_90_CW, RATIONAL_DENOMINATOR, write_dng
from spnrestore.demo.scenes import Shot, make_shot
from spnrestore.demo.sensor import STREAM_IMAGE, Camera, expose, make_camera, make_fingerprint
from spnrestore.errors import ConfigError, SpnRestoreError

logger = logging.getLogger(__name__)

FORMAT = "spnrestore demo drive"
FORMAT_VERSION = 2  # 2: dark scenes at -4..-3 EV, ISO 800-3200
MARKER = "demo.json"
DRIVE_ENTRIES = {"Images", "truth", MARKER}
STALE_BUILD_S = 3600
FIRST_SHOT = datetime.datetime(2024, 3, 1, 9, 0, 0)


def demo_parameters(cameras=5, images_per_camera=48, height=512, width=768, prnu_strength=0.01,
                    seed=0, portrait_every=0) -> dict:
    """The validated drive parameters as a plain dict (what ``demo.json`` records).

    Raises ConfigError naming the ``demo.<key>`` setting that is out of range.
    """
    def integer(key, value, low):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"demo.{key} = {value!r}: must be an integer >= {low}; correct the demo settings")
        return int(value)

    params = {
        "cameras": integer("cameras", cameras, 1),
        "images_per_camera": integer("images_per_camera", images_per_camera, 1),
        "height": integer("height", height, 32),
        "width": integer("width", width, 32),
        "prnu_strength": prnu_strength,
        "seed": integer("seed", seed, 0),
        "portrait_every": integer("portrait_every", portrait_every, 0),
    }
    for key in ("height", "width"):
        if params[key] % 2:
            raise ConfigError(f"demo.{key} = {params[key]}: must be even (the Bayer pattern repeats every "
                              "2 pixels); use an even size")
    if isinstance(prnu_strength, bool) or not isinstance(prnu_strength, (int, float)) or not 0 < prnu_strength <= 0.2:
        raise ConfigError(f"demo.prnu_strength = {prnu_strength!r}: must be a number in (0, 0.2], the std of "
                          "the PRNU factor K (real sensors: about 0.005 to 0.02)")
    params["prnu_strength"] = float(prnu_strength)
    return params


def read_marker(root) -> dict | None:
    """The parsed ``demo.json`` of ``root``, or None when missing or unreadable."""
    with contextlib.suppress(OSError, ValueError):
        marker = json.loads((Path(root) / MARKER).read_text(encoding="utf-8"))
        if isinstance(marker, dict):
            return marker
    return None


def is_current(root, params: dict) -> bool:
    """Whether ``root`` holds a complete drive of this format version made with ``params``."""
    marker = read_marker(root)
    return bool(marker) and marker.get("format") == FORMAT and marker.get("version") == FORMAT_VERSION \
        and marker.get("parameters") == params


def _quantised(values) -> list:
    """``values`` as the DNG rationals store them (denominator 10000)."""
    return (np.round(np.asarray(values) * RATIONAL_DENOMINATOR) / RATIONAL_DENOMINATOR).tolist()


def _camera_record(camera: Camera, params: dict) -> dict:
    return {
        "name": camera.name,
        "cfa": camera.cfa,
        "bits_per_sample": camera.bits,
        "black_level": np.reshape(camera.black, (2, 2)).tolist(),
        "white_level": camera.white,
        "colour_matrix_1": _quantised(camera.cam_from_xyz),
        "calibration_illuminant_1": "D65",
        "as_shot_neutral": _quantised(camera.as_shot_neutral),
        "cam_from_srgb": camera.cam_from_srgb.tolist(),
        "full_well_electrons": camera.full_well,
        "read_noise_electrons": camera.read_noise,
        "adc_noise_dn": camera.adc_noise,
        "prnu_strength": params["prnu_strength"],
        "prnu_blur_sigma": camera.prnu_blur,
        "images": [],
    }


def shoot(camera: Camera, k: np.ndarray, image_index: int, seed: int) -> tuple[np.ndarray, Shot]:
    """Raw frame (uint16 ``(H, W)`` as stored in the DNG) and scene of one image of ``camera``.

    ``k`` is the camera's PRNU factor; the frame size is its shape.
    """
    rng = np.random.default_rng([seed, camera.index, STREAM_IMAGE, image_index])
    shot = make_shot(image_index, rng, *k.shape)
    return expose(camera, shot.scene, k, shot.iso, rng), shot


def _write_camera(build: Path, camera: Camera, params: dict) -> None:
    seed, every = params["seed"], params["portrait_every"]
    k = make_fingerprint(camera, params["height"], params["width"], params["prnu_strength"], seed)
    truth = build / "truth" / camera.name
    save_npy(truth / "K.npy", k)
    record = _camera_record(camera, params)
    for i in range(params["images_per_camera"]):
        raw, shot = shoot(camera, k, i, seed)
        orientation = ORIENTATION_ROTATE_90_CW if every and (i + 1) % every == 0 else ORIENTATION_NORMAL
        taken = (FIRST_SHOT + datetime.timedelta(days=camera.index, minutes=7 * i)).strftime("%Y:%m:%d %H:%M:%S")
        name = camera.file_name(i)
        write_dng(build / "Images" / "Original" / camera.name / name, raw, camera, orientation, taken)
        record["images"].append({"file": name, "kind": shot.kind, "iso": shot.iso, "exposure": shot.exposure,
                                 "highlights": shot.highlights, "orientation": orientation, "datetime": taken})
    write_text(truth / "camera.json", json.dumps(record, indent=1))


def _check_replaceable(root: Path) -> None:
    if root.is_symlink() or (root.exists() and not root.is_dir()):
        raise SpnRestoreError(f"{root}: exists and is not a folder; the demo drive needs this path for a folder: "
                              "choose another demo drive path or remove it")
    if root.is_dir():
        others = sorted(entry.name for entry in root.iterdir() if entry.name not in DRIVE_ENTRIES)
        if others:
            raise SpnRestoreError(
                f"{root}: exists and holds entries that are not part of a demo drive ({', '.join(others[:5])}); "
                "the demo drive is only written to a new folder or over an older demo drive: "
                "choose another demo drive path or empty this folder")


def _remove_stale_builds(root: Path) -> None:
    """Delete build and discard folders of ``root`` left by killed runs (older than an hour)."""
    prefixes = (f".{root.name}.partial-", f".{root.name}.old-")
    for stale in root.parent.iterdir():
        if stale.name.startswith(prefixes):
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > STALE_BUILD_S:
                    shutil.rmtree(stale)


def _install(build: Path, root: Path, params: dict) -> None:
    """Rename the finished ``build`` onto ``root``, replacing an older drive there."""
    if is_current(root, params):  # another process finished the same drive meanwhile
        return
    old = root.parent / f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if root.exists():
        _check_replaceable(root)
        os.rename(root, old)
    try:
        os.rename(build, root)
    except OSError:
        if not is_current(root, params):
            raise
    shutil.rmtree(old, ignore_errors=True)


def make_demo_drive(root, cameras=5, images_per_camera=48, height=512, width=768, prnu_strength=0.01,
                    seed=0, portrait_every=0) -> Path:
    """Generate the synthetic demo drive at ``root`` unless a current one is already there.

    ``cameras`` models with ``images_per_camera`` raw DNG shots each of
    ``height`` x ``width`` sensor pixels (even); every camera has its own PRNU factor
    K (std ``prnu_strength``), CFA layout, levels, noise and colour. Everything is
    drawn from ``seed``: the same parameters give byte-identical files. With
    ``portrait_every`` = N > 0, every N-th shot is tagged Orientation 6 (portrait;
    pixels stay in sensor orientation). Progress is logged (``spnrestore.demo.drive``, level
    INFO), nothing is printed. Returns ``root``.
    """
    params = demo_parameters(cameras, images_per_camera, height, width, prnu_strength, seed, portrait_every)
    root = Path(root).absolute()
    if is_current(root, params):
        return root
    _check_replaceable(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(root)
    logger.info(f"demo drive: writing {params['cameras']} cameras x {params['images_per_camera']} images "
                f"of {params['height']}x{params['width']} to {root}")
    start = time.perf_counter()
    build = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        names = []
        for index in range(params["cameras"]):
            camera = make_camera(index, params["seed"])
            _write_camera(build, camera, params)
            names.append(camera.name)
            logger.info(f"demo drive: {camera.name} done ({index + 1}/{params['cameras']})")
        marker = {"format": FORMAT, "version": FORMAT_VERSION, "parameters": params, "cameras": names,
                  "images": len(names) * params["images_per_camera"]}
        write_text(build / MARKER, json.dumps(marker, indent=1))
        _install(build, root, params)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    logger.info(f"demo drive: done in {time.perf_counter() - start:.1f} s")
    return root


def ensure_demo_drive(root, settings: Mapping) -> Path:
    """:func:`make_demo_drive` at ``root`` with the ``demo`` config section ``settings``.

    Unknown keys raise ConfigError naming them; missing keys take the defaults.
    """
    known = set(inspect.signature(demo_parameters).parameters)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"demo.{unknown[0]}: unknown demo setting; known settings: {', '.join(sorted(known))}")
    return make_demo_drive(root, **settings)
