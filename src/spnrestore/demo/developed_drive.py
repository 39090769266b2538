"""A drive of developed originals (camera JPEG, PNG, 16-bit TIFF) shot by the synthetic cameras, with no RAW file.

``make_developed_drive(root)`` shoots each synthetic camera's raw frames (as
:mod:`spnrestore.demo.drive` does), develops them with LibRaw like the
workflow, and stores the results the way cameras and converters do::

    root/Images/Original/<Camera_Model>/<image>.JPG|.png|.TIF   the shots (see ORIGINAL_KINDS)
    root/Images/Original/<Camera_Model>/flat/FLAT_NNNN.JPG      flat-field shots (bright, even, ISO 100)
    root/truth/<Camera_Model>/K.npy                             PRNU factor, float32 (H, W), sensor layout

Camera JPEGs carry EXIF Make, Model and Orientation. A ``tagged`` portrait keeps
the sensor's pixel layout with Orientation 6 (what most cameras write); a
``turned`` portrait has its pixels turned for display (90 degrees clockwise)
and no tag, so its size is the transpose of the camera's.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from spnrestore.atomic import save_npy, write_bytes
from spnrestore.demo.dng import ORIENTATION_NORMAL, ORIENTATION_ROTATE_90_CW, write_dng
from spnrestore.demo.drive import FIRST_SHOT, shoot
from spnrestore.demo.sensor import BASE_ISO, expose, make_camera, make_fingerprint
from spnrestore.raw import develop_raw
from spnrestore.errors import SpnRestoreError
from spnrestore.jpeg import write_png
from spnrestore.spn import from_sensor_orientation

#: The workflow's default ``develop`` settings (config/config.yaml).
DEVELOP = {"demosaic": "AHD", "use_camera_wb": True, "no_auto_bright": True, "user_flip": 0, "output_bps": 8,
           "output_color": "sRGB", "gamma": (2.222, 4.5)}
#: (file kind, portrait handling) of shot ``i`` of every camera: ``ORIGINAL_KINDS[i % 10]``.
ORIGINAL_KINDS = (("jpeg", "landscape"), ("jpeg", "landscape"), ("jpeg", "landscape"), ("png", "landscape"),
                  ("jpeg", "tagged"), ("jpeg", "landscape"), ("jpeg", "landscape"), ("tiff16", "landscape"),
                  ("jpeg", "landscape"), ("jpeg", "turned"))
STREAM_FLAT = 4
EXIF_MAKE, EXIF_MODEL, EXIF_ORIENTATION = 0x010F, 0x0110, 0x0112


def camera_jpeg(rgb: np.ndarray, quality: int, make: str, model: str, orientation: int | None) -> bytes:
    """A camera-style JPEG (IJG tables at ``quality``, 4:2:0) of uint8 RGB with EXIF Make, Model and
    Orientation (no Orientation tag when ``orientation`` is None)."""
    exif = Image.Exif()
    exif[EXIF_MAKE], exif[EXIF_MODEL] = make, model
    if orientation is not None:
        exif[EXIF_ORIENTATION] = orientation
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def _flat_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A bright even field (linear sRGB float32 (H, W, 3)) with a little vignetting and tint."""
    y, x = np.mgrid[-1:1:height * 1j, -1:1:width * 1j].astype(np.float32)
    level = rng.uniform(0.35, 0.5) * (1 - 0.15 * (x ** 2 + y ** 2) / 2)
    return level[..., None] * rng.uniform(0.9, 1.0, 3).astype(np.float32)


def make_developed_drive(root, cameras: int = 3, images_per_camera: int = 30, height: int = 256,
                         width: int = 384, flats: int = 4, quality: int = 95, prnu_strength: float = 0.01,
                         seed: int = 0) -> Path:
    """Write a drive of developed originals at ``root`` (a new or empty folder); returns ``root``.

    ``cameras`` synthetic cameras (those of the DNG demo drive with the same
    ``seed``) with ``images_per_camera`` shots each of ``height`` x ``width``
    (even) sensor pixels, stored by :data:`ORIGINAL_KINDS` (camera JPEGs at
    ``quality``, 8-bit PNG, 16-bit TIFF), and ``flats`` flat-field JPEGs in
    each camera's ``flat/`` folder.
    """
    root = Path(root).absolute()
    if root.exists() and any(root.iterdir()):
        raise SpnRestoreError(f"{root}: not empty; the developed demo drive is only written to a new folder")
    original = root / "Images" / "Original"
    with tempfile.TemporaryDirectory() as scratch:
        dng = Path(scratch) / "shot.dng"
        for index in range(cameras):
            camera = make_camera(index, seed)
            k = make_fingerprint(camera, height, width, prnu_strength, seed)
            save_npy(root / "truth" / camera.name / "K.npy", k)
            folder = original / camera.name
            for i in range(images_per_camera):
                raw, _ = shoot(camera, k, i, seed)
                write_dng(dng, raw, camera, ORIENTATION_NORMAL, FIRST_SHOT.strftime("%Y:%m:%d %H:%M:%S"))
                rgb = develop_raw(dng, DEVELOP).rgb
                stem = Path(camera.file_name(i)).stem
                kind, portrait = ORIGINAL_KINDS[i % len(ORIGINAL_KINDS)]
                if kind == "png":
                    write_png(folder / f"{stem}.png", rgb)
                elif kind == "tiff16":
                    _, data = cv2.imencode(".tiff", rgb[..., ::-1].astype(np.uint16) * 257)
                    write_bytes(folder / f"{stem}.TIF", data.tobytes())
                elif portrait == "turned":
                    turned = np.ascontiguousarray(from_sensor_orientation(rgb, ORIENTATION_ROTATE_90_CW))
                    write_bytes(folder / f"{stem}.JPG", camera_jpeg(turned, quality, "Spnrestore", camera.name, None))
                else:
                    tag = ORIENTATION_ROTATE_90_CW if portrait == "tagged" else ORIENTATION_NORMAL
                    write_bytes(folder / f"{stem}.JPG", camera_jpeg(rgb, quality, "Spnrestore", camera.name, tag))
            for j in range(flats):
                rng = np.random.default_rng([seed, camera.index, STREAM_FLAT, j])
                raw = expose(camera, _flat_scene(rng, height, width), k, BASE_ISO, rng)
                write_dng(dng, raw, camera, ORIENTATION_NORMAL, FIRST_SHOT.strftime("%Y:%m:%d %H:%M:%S"))
                write_bytes(folder / "flat" / f"FLAT_{j + 1:04d}.JPG",
                            camera_jpeg(develop_raw(dng, DEVELOP).rgb, quality, "Spnrestore", camera.name,
                                        ORIENTATION_NORMAL))
    return root
