"""Scene content for the demo drive: bundled sample photos and procedural scenes.

Scenes are linear sRGB (D65) float32 ``(H, W, 3)``. :func:`make_shot` returns one
exposed so that the metered mid-grey lands at a plausible fraction of the white
level (1.0), plus the ISO it was shot at. Photos come from the images scikit-image
ships inside its wheel (read from the package, never downloaded).
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass

import cv2
import numpy as np

from spnrestore.errors import SpnRestoreError

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "camera.png", "coins.png", "clock_motion.png", "moon.png")
TEXTURES = ("brick.png", "grass.png", "gravel.png")
KIND_CYCLE = ("photo", "blobs", "photo", "texture", "sky", "photo", "dark", "photo")
"""Scene kind of image ``i`` of every camera: ``KIND_CYCLE[i % 8]``."""

MID_GREY = 0.18
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)
SRGB_TO_LINEAR = np.where(np.arange(256) / 255 <= 0.04045, np.arange(256) / 255 / 12.92,
                          ((np.arange(256) / 255 + 0.055) / 1.055) ** 2.4).astype(np.float32)


@dataclass(frozen=True)
class Shot:
    """An exposed scene (linear sRGB float32 ``(H, W, 3)``) and how it was taken."""

    scene: np.ndarray
    kind: str
    iso: int
    exposure: float
    highlights: int


@functools.lru_cache(maxsize=None)
def load_sample(name: str) -> np.ndarray:
    """Bundled scikit-image picture ``name`` as linear RGB float32 ``(h, w, 3)`` in [0, 1]."""
    resource = importlib.resources.files("skimage.data").joinpath(name)
    try:
        data = np.frombuffer(resource.read_bytes(), np.uint8)
    except OSError as err:
        raise SpnRestoreError(f"{resource}: sample picture of scikit-image missing ({err}); "
                              "reinstall scikit-image (pip install --force-reinstall scikit-image)") from err
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return SRGB_TO_LINEAR[image[:, :, ::-1]]


def _crop(rng: np.random.Generator, image: np.ndarray, height: int, width: int, zoom: float) -> np.ndarray:
    """A random window of ``image`` with the frame's aspect, ``1/zoom`` of the largest, resized."""
    h, w = image.shape[:2]
    ch = max(2, int(min(h, w * height / width) / zoom))
    cw = max(2, int(ch * width / height))
    y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    window = image[y:y + ch, x:x + cw]
    if rng.random() < 0.5:
        window = window[:, ::-1]
    return np.maximum(cv2.resize(window, (width, height), interpolation=cv2.INTER_CUBIC), 0)


def _smooth_field(rng: np.random.Generator, height: int, width: int, cells: int, channels: int) -> np.ndarray:
    """Random values on a coarse ``cells``-row grid, bicubically upsampled: ``(H, W, channels)``."""
    grid = rng.random((cells, max(2, cells * width // height), channels), dtype=np.float32)
    field = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(field, 0, 1).reshape(height, width, channels)


def _tint(rng: np.random.Generator, spread: float) -> np.ndarray:
    return np.exp(rng.normal(0, spread, 3)).astype(np.float32)


def _photo(rng, height, width):
    image = load_sample(PHOTOS[rng.integers(len(PHOTOS))])
    return _crop(rng, image, height, width, rng.uniform(1.0, 1.8)) * _tint(rng, 0.08)


def _texture(rng, height, width):
    image = load_sample(TEXTURES[rng.integers(len(TEXTURES))])
    light = 0.4 + 0.6 * _smooth_field(rng, height, width, 3, 1)
    return _crop(rng, image, height, width, rng.uniform(1.0, 2.5)) * light * _tint(rng, 0.1)


def _blobs(rng, height, width):
    colour = _smooth_field(rng, height, width, int(rng.integers(3, 8)), 3) ** 2
    grey = colour.mean(axis=2, keepdims=True)
    coarse = grey + rng.uniform(0.2, 0.7) * (colour - grey)
    fine = _smooth_field(rng, height, width, int(rng.integers(12, 40)), 3)
    ramp = np.linspace(rng.uniform(0.3, 1), rng.uniform(0.3, 1), width if rng.random() < 0.5 else height,
                       dtype=np.float32)
    ramp = ramp[None, :, None] if ramp.size == width else ramp[:, None, None]
    return (0.02 + coarse * (0.7 + 0.3 * fine)) * ramp


def _sky(rng, height, width):
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    zenith = np.array([0.10, 0.22, 0.60], np.float32) * _tint(rng, 0.1)
    horizon = np.array([0.55, 0.65, 0.80], np.float32) * _tint(rng, 0.05)
    sky = zenith + (horizon - zenith) * rows ** rng.uniform(0.7, 1.5)
    sky = sky + 0.3 * _smooth_field(rng, height, width, 2, 1) ** 3
    ground = int(height * rng.uniform(0.1, 0.3)) if rng.random() < 0.5 else 0
    if ground:
        earth = np.array([0.35, 0.4, 0.2], np.float32)
        sky[height - ground:] = _blobs(rng, ground, width).mean(axis=2, keepdims=True) * earth
    return sky


def _dark(rng, height, width):
    return _photo(rng, height, width) if rng.random() < 0.5 else _blobs(rng, height, width)


# Each renderer: (rng, height, width) -> unexposed linear sRGB scene, float32 (H, W, 3).
RENDERERS = {"photo": _photo, "blobs": _blobs, "texture": _texture, "sky": _sky, "dark": _dark}


def _add_highlights(rng: np.random.Generator, scene: np.ndarray) -> int:
    """Paint 1 to 4 small light sources, bright enough to clip, into ``scene``; their count."""
    height, width = scene.shape[:2]
    lights = np.zeros((height, width), np.float32)
    count = int(rng.integers(1, 5))
    for _ in range(count):
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        radius = int(rng.integers(2, max(3, min(height, width) // 25)))
        cv2.circle(lights, centre, radius, float(rng.uniform(1.5, 6)), -1, lineType=cv2.LINE_AA)
    np.maximum(scene, lights[:, :, None] * np.array([1.0, 0.95, 0.8], np.float32), out=scene)
    return count


def make_shot(image_index: int, rng: np.random.Generator, height: int, width: int) -> Shot:
    """Scene ``image_index`` of a camera (kind from :data:`KIND_CYCLE`), drawn from ``rng`` and exposed."""
    kind = KIND_CYCLE[image_index % len(KIND_CYCLE)]
    scene = RENDERERS[kind](rng, height, width).astype(np.float32, copy=False)
    dark = kind == "dark"
    grey = MID_GREY * 2.0 ** (rng.uniform(-4, -3) if dark else rng.uniform(-0.7, 0.4))
    exposure = grey / max(float((scene[::8, ::8] @ LUMA).mean()), 1e-4)
    scene *= exposure
    highlights = _add_highlights(rng, scene) if rng.random() < (0.6 if dark else 0.25) else 0
    iso = int(rng.choice([800, 1600, 3200]) if dark else 100 if kind == "sky"
              else rng.choice([100, 200, 400, 800], p=[0.4, 0.3, 0.2, 0.1]))
    return Shot(scene=scene, kind=kind, iso=iso, exposure=exposure, highlights=highlights)
