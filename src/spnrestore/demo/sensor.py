"""Synthetic camera models: PRNU fingerprint, CFA layout, levels, noise and colour.

A :class:`Camera` turns a linear scene into the values its sensor would record::

    raw = black + span * (cam(scene) * (1 + K)) + noise,   clipped to [0, white]

where ``span = white - black``, ``cam`` samples the camera's colour response of the
CFA colour at each pixel, ``K`` is the camera's multiplicative PRNU fingerprint and
the noise is Gaussian with the variance of shot noise (signal in electrons) plus
read noise plus ADC noise. Scenes are linear sRGB (D65), float32, ``(H, W, 3)``;
a value of 1.0 in the camera's green channel reaches the white level.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CFA_PATTERNS = {"RGGB": (0, 1, 1, 2), "BGGR": (2, 1, 1, 0), "GRBG": (1, 0, 2, 1), "GBRG": (1, 2, 0, 1)}
"""Colour (0 red, 1 green, 2 blue) of the 2x2 CFA positions, row-major."""

XYZ_FROM_SRGB = np.array([[0.4124564, 0.3575761, 0.1804375],
                          [0.2126729, 0.7151522, 0.0721750],
                          [0.0193339, 0.1191920, 0.9503041]])
"""Linear sRGB (D65 white) to CIE XYZ."""

NAMES = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India",
         "Juliett", "Kilo", "Lima", "Mike", "November", "Oscar", "Papa", "Quebec", "Romeo",
         "Sierra", "Tango", "Uniform", "Victor", "Whiskey", "Xray", "Yankee", "Zulu")
FILE_PREFIXES = ("IMG_", "DSC_", "P10", "DSCF", "R00")
BASE_ISO = 100

STREAM_CAMERA, STREAM_FINGERPRINT, STREAM_IMAGE = 1, 2, 3
"""Random streams: ``np.random.default_rng([seed, camera_index, stream, image_index])``."""


@dataclass(frozen=True)
class Camera:
    """One synthetic camera model.

    ``black`` holds the black level of each 2x2 CFA position (row-major, DN);
    ``bits`` is the DNG storage (16-bit containers or 12-bit packed);
    ``full_well`` is in electrons at ISO 100, ``read_noise`` in electrons,
    ``adc_noise`` in DN; ``cam_from_srgb`` (3x3) maps linear sRGB to the camera's
    raw RGB; ``prnu_blur`` is the Gaussian sigma (pixels) low-passing its PRNU.
    """

    index: int
    name: str
    cfa: str
    bits: int
    white: int
    black: tuple[int, int, int, int]
    full_well: float
    read_noise: float
    adc_noise: float
    cam_from_srgb: np.ndarray
    prnu_blur: float
    prefix: str
    extension: str

    @property
    def as_shot_neutral(self) -> np.ndarray:
        """Raw RGB of a white surface, green = 1 (the DNG AsShotNeutral)."""
        neutral = self.cam_from_srgb.sum(axis=1)
        return neutral / neutral[1]

    @property
    def cam_from_xyz(self) -> np.ndarray:
        """XYZ to raw RGB (the DNG ColorMatrix1, illuminant D65)."""
        return self.cam_from_srgb @ np.linalg.inv(XYZ_FROM_SRGB)

    def file_name(self, image_index: int) -> str:
        """File name of the camera's ``image_index``-th shot (0-based)."""
        return f"{self.prefix}{image_index + 1:04d}{self.extension}"


def make_camera(index: int, seed: int) -> Camera:
    """Camera model number ``index`` (0-based) of the drive drawn from ``seed``.

    Successive cameras cycle through the four Bayer layouts; every fifth one from the
    third on stores 12-bit packed samples, every fifth from the fourth on has a black
    level per CFA position; every third from the first has an unfiltered PRNU, the
    others a low-passed one; the extension alternates between ``.DNG`` and ``.dng``.
    Names run ``Synth_Alpha_A1``, ``Synth_Bravo_B2``, .. (plain ASCII, unique).
    """
    rng = np.random.default_rng([seed, index, STREAM_CAMERA, 0])
    word = NAMES[index % len(NAMES)]
    bits = 12 if index % 5 == 2 else 16
    white = (1 << (12 if bits == 12 else 14)) - 1
    base = int(rng.choice([128, 200, 256])) if bits == 12 else int(rng.choice([512, 600, 1024, 2048]))
    black = tuple(base + rng.integers(-6, 7, 4)) if index % 5 == 3 else (base,) * 4
    crosstalk = rng.uniform(0.03, 0.2, (3, 3)) * (1 - np.eye(3))
    mix = crosstalk + np.diag(1 - crosstalk.sum(axis=1))
    sensitivity = np.array([rng.uniform(0.42, 0.62), 1.0, rng.uniform(0.55, 0.85)])
    return Camera(
        index=index,
        name=f"Synth_{word}_{word[0]}{index + 1}",
        cfa=tuple(CFA_PATTERNS)[index % 4],
        bits=bits,
        white=white,
        black=tuple(int(b) for b in black),
        full_well=float(rng.uniform(12_000, 45_000)),
        read_noise=float(rng.uniform(1.5, 5.0)),
        adc_noise=float(rng.uniform(0.3, 0.8) * (white - base) / 4096),
        cam_from_srgb=sensitivity[:, None] * mix,
        prnu_blur=0.0 if index % 3 == 0 else float(rng.uniform(0.35, 0.7)),
        prefix=FILE_PREFIXES[index % len(FILE_PREFIXES)],
        extension=".DNG" if index % 2 == 0 else ".dng",
    )


def make_fingerprint(camera: Camera, height: int, width: int, strength: float, seed: int) -> np.ndarray:
    """PRNU factor K of ``camera``: float32 ``(height, width)``, mean 0, std ``strength``.

    I.i.d. Gaussian, low-passed with the camera's ``prnu_blur`` sigma when non-zero.
    """
    rng = np.random.default_rng([seed, camera.index, STREAM_FINGERPRINT, 0])
    k = rng.standard_normal((height, width))
    if camera.prnu_blur:
        k = cv2.GaussianBlur(k, (0, 0), camera.prnu_blur, borderType=cv2.BORDER_REFLECT)
    k -= k.mean()
    return (k * (strength / k.std())).astype(np.float32)


def cfa_tile(camera: Camera) -> np.ndarray:
    """Colour index (0 R, 1 G, 2 B) of the 2x2 CFA positions: int ``(2, 2)``."""
    return np.array(CFA_PATTERNS[camera.cfa]).reshape(2, 2)


def expose(camera: Camera, scene: np.ndarray, k: np.ndarray, iso: float, rng: np.random.Generator) -> np.ndarray:
    """Raw sensor values of ``scene`` shot at ``iso``: uint16 ``(H, W)`` in [0, white].

    ``scene`` is linear sRGB float32 ``(H, W, 3)``, already exposed (camera green 1.0
    reaches white); ``k`` is the PRNU factor ``(H, W)``; the noise comes from ``rng``.
    """
    h, w = k.shape
    weights = camera.cam_from_srgb.astype(np.float32)
    black = np.array(camera.black, np.float32).reshape(2, 2)
    signal = np.empty((h, w), np.float32)
    for (dy, dx), colour in np.ndenumerate(cfa_tile(camera)):
        signal[dy::2, dx::2] = scene[dy::2, dx::2] @ weights[colour]
    span = np.tile(camera.white - black, (h // 2, w // 2))
    signal *= 1 + k
    signal *= span
    gain = float(span.mean()) / camera.full_well * iso / BASE_ISO  # DN per electron
    variance = np.maximum(signal, 0) * gain + (camera.read_noise * gain) ** 2 + camera.adc_noise ** 2
    signal += np.sqrt(variance) * rng.standard_normal((h, w), dtype=np.float32)
    signal += np.tile(black, (h // 2, w // 2)) + 0.5
    return np.clip(signal, 0, camera.white + 0.5).astype(np.uint16)
