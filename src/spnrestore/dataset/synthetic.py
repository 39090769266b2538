"""Synthetic sensors for training the restorer: every example is a new camera, and its target is exact.

One example is one small photo of a procedural scene (dead leaves: occluding shapes with power-law sizes,
shading, texture and defocus; no picture of any data set, so no evaluation image leaks in) taken by a camera
drawn afresh for that example, so no fingerprint can be memorised. What the camera draws at random is what
real cameras vary:

* PRNU ``K`` on the sensor's pixels: strength (std 0.3..2 %, log-uniform), spatial spectrum (white or
  low-passed), row and column components, and a periodic (2..8 px) component;
* shot noise and read noise by ISO, the CFA layout and the white balance, 12-bit quantisation;
* development: bilinear or edge-aware demosaicing, in-camera denoising (none, Gaussian blend or an
  edge-preserving bilateral filter, which keeps less PRNU in flat regions), sharpening, a tone curve,
  and sometimes a resampling (phones resize their frames);
* the camera's own JPEG (quality 80..98, 4:2:0 or 4:4:4) or none, then the workflow's JPEG at quality ``q``;
* phone processing (:mod:`spnrestore.dataset.phone`): an example is a phone with ``phone_probability``
  (0.6), and a phone has each of these steps with its own probability (0.5 each), in the order of an ISP:

  - *burst merge* (raw): 2..8 frames, each with its own shot and read noise and its own sub-pixel camera
    shift (up to 3 px; the PRNU stays on the sensor), aligned to the reference frame per Bayer plane and
    merged with a robust mean (pixels far from the reference weigh less): less noise, and a PRNU term
    attenuated and low-passed by the shifts;
  - *lens shading* (raw): the lens dims the corners by 1/g, the ISP multiplies by g (2..4x at the farthest
    corner), so the corners are noisier; with it, *distortion correction* (a radial ``cv2.remap`` after
    denoising and tone mapping);
  - *strong denoising*: non-local means or a guided filter, weights from the square-root gray image;
  - *local tone mapping*: a gain ``((blur(L) + e) / mean) ** -a``, ``a`` 0.2..0.6, of a wide blur;
  - *sharpening with halos* (unsharp mask, sigma 2..5 px, amount 1..3), *digital zoom* (the central
    1/1.1..1/2 scaled back, bicubic or Lanczos);
  - the camera's JPEG with *phone quantisation tables* (:mod:`spnrestore.dataset.phone_tables`: real
    cameras' tables, scaled to an IJG-equivalent quality 88..97 and perturbed per step; never IJG tables)
    instead of the IJG one.

  :data:`PIPELINE_KINDS` and :func:`ranges_for_kind` give validation streams of one kind each (``classic``,
  one per step, ``phone`` with all). The phone's draws come from a generator seeded after every classic
  draw, so with the phone probabilities at 0 the generator is the classic one bit for bit, and a kind
  changes the processing of the same camera, scene and noise, not the camera.

The target is exact: the sensor is exposed twice with the *same* photons and noise, with ``K`` and without,
and both are developed identically; the target is the difference of the two developed gray images, in gray
levels (0..255): the PRNU term as it appears in this photo after every in-camera step (the restorer's
output is correlated with it, and the fingerprint of a camera is the mean of such terms over its photos).
The phone steps whose effect depends on the image (the merge's weights, the denoiser's, the tone map's gain)
compute it from the exposure with ``K`` and apply it to both, so the target is the PRNU term passed through
the same operator as the photo.

Pure numpy, OpenCV and Pillow (no torch): the training stream (:mod:`spnrestore.model.pretrain`) computes the
JPEG's noise residual itself, in batches, with the workflow's algorithm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from ..jpeg import encode_jpeg
from ..spn.wavelet_denoise import GRAY_WEIGHTS
from . import phone

BAYER = {"RGGB": cv2.COLOR_BayerBG2RGB, "BGGR": cv2.COLOR_BayerRG2RGB,
         "GRBG": cv2.COLOR_BayerGB2RGB, "GBRG": cv2.COLOR_BayerGR2RGB}
"""OpenCV demosaicing code of each CFA layout (OpenCV names a pattern by its second row's second pixel)."""
BAYER_EA = {"RGGB": cv2.COLOR_BayerBG2RGB_EA, "BGGR": cv2.COLOR_BayerRG2RGB_EA,
            "GRBG": cv2.COLOR_BayerGB2RGB_EA, "GBRG": cv2.COLOR_BayerGR2RGB_EA}
CFA_COLOURS = {"RGGB": (0, 1, 1, 2), "BGGR": (2, 1, 1, 0), "GRBG": (1, 0, 2, 1), "GBRG": (1, 2, 0, 1)}
WHITE = 4095  # 12-bit raw samples


@dataclass(frozen=True)
class SensorRanges:
    """What the generator draws per example (ranges are inclusive; probabilities per example)."""

    prnu_strength: tuple[float, float] = (0.003, 0.02)
    prnu_blur: tuple[float, float] = (0.3, 1.0)
    prnu_blur_probability: float = 0.6
    prnu_lines: tuple[float, float] = (0.0, 0.25)
    prnu_periodic_probability: float = 0.3
    iso: tuple[int, ...] = (100, 200, 400, 800, 1600, 3200)
    full_well: tuple[float, float] = (8000.0, 40000.0)
    read_noise: tuple[float, float] = (1.5, 5.0)
    exposure_stops: tuple[float, float] = (-2.5, 1.0)
    denoise_probability: float = 0.6
    sharpen_probability: float = 0.6
    resample_probability: float = 0.2
    camera_jpeg_probability: float = 0.7
    camera_quality: tuple[int, int] = (80, 98)
    # phone processing (:mod:`spnrestore.dataset.phone`): an example is a phone with ``phone_probability``,
    # and a phone has each step with its own probability (0 everywhere: the classic generator, bit for bit)
    phone_probability: float = 0.6
    burst_probability: float = 0.5
    burst_frames: tuple[int, int] = (2, 8)
    burst_shift: float = 3.0  # camera motion between frames: up to this many px in x and in y
    phone_denoise_probability: float = 0.5
    phone_denoise_strength: tuple[float, float] = (0.6, 1.5)
    tonemap_probability: float = 0.5
    tonemap_strength: tuple[float, float] = (0.2, 0.6)
    lens_probability: float = 0.5
    lens_shading_gain: tuple[float, float] = (2.0, 4.0)
    distortion: tuple[float, float] = (-0.15, 0.1)
    halo_probability: float = 0.5
    halo_amount: tuple[float, float] = (1.0, 3.0)
    halo_sigma: tuple[float, float] = (2.0, 5.0)
    phone_tables_probability: float = 0.5
    phone_quality: tuple[int, int] = (88, 97)  # the phone tables scaled to about this IJG quality
    crop_scale_probability: float = 0.5
    crop_scale: tuple[float, float] = (1.1, 2.0)

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def has_phone(self) -> bool:
        """Whether any example can be a phone (else no phone draw is made: the classic stream, bit for bit)."""
        return self.phone_probability > 0 and any(getattr(self, f) > 0 for f in phone.STEPS.values())


PIPELINE_KINDS = ("classic", *phone.STEPS, "phone")
"""Validation kinds: ``classic`` (no phone step), one kind per phone step alone, ``phone`` (every step)."""


def ranges_for_kind(kind: str, base: SensorRanges = SensorRanges()) -> SensorRanges:
    """``base`` with the phone probabilities of pipeline ``kind`` (:data:`PIPELINE_KINDS`): 0 or 1 each."""
    if kind not in PIPELINE_KINDS:
        raise ValueError(f"unknown pipeline kind {kind!r}: one of {', '.join(PIPELINE_KINDS)}")
    on = set(phone.STEPS) if kind == "phone" else {kind} & set(phone.STEPS)
    return replace(base, phone_probability=float(kind != "classic"),
                   **{field: float(step in on) for step, field in phone.STEPS.items()})


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def random_prnu(rng: np.random.Generator, height: int, width: int, r: SensorRanges = SensorRanges()) -> np.ndarray:
    """A PRNU factor ``K`` float32 (H, W), mean 0, std drawn from ``r.prnu_strength``: white Gaussian, low-passed
    with probability ``prnu_blur_probability``, plus row/column lines and sometimes a periodic pattern."""
    k = rng.standard_normal((height, width), dtype=np.float32)
    if rng.random() < r.prnu_blur_probability:
        k = cv2.GaussianBlur(k, (0, 0), rng.uniform(*r.prnu_blur), borderType=cv2.BORDER_REFLECT)
        k /= k.std()
    lines = rng.uniform(*r.prnu_lines)
    k += lines * rng.standard_normal((height, 1), dtype=np.float32)
    k += lines * rng.uniform(0, 1) * rng.standard_normal((1, width), dtype=np.float32)
    if rng.random() < r.prnu_periodic_probability:
        period = int(rng.integers(2, 9))
        tile = rng.standard_normal((period, period), dtype=np.float32) * rng.uniform(0.1, 0.4)
        k += np.tile(tile, (height // period + 1, width // period + 1))[:height, :width]
    k -= k.mean()
    return k * np.float32(_log_uniform(rng, *r.prnu_strength) / max(float(k.std()), 1e-12))


def dead_leaves(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A procedural scene, linear RGB float32 (H, W, 3), mean luminance about 0.18 before exposure.

    Occluding discs and rectangles with radii of density ~ r^-3 (the scale invariance of natural images),
    each with its own colour and a shading gradient, over a smooth background; then a multiplicative
    fine texture of random grain and strength, and a defocus blur of random size (0 to 2 px).
    """
    scene = np.empty((height, width, 3), np.float32)
    scene[:] = np.exp(rng.normal(np.log(0.18), 0.8) + rng.normal(0, 0.2, 3)).astype(np.float32)
    side = max(height, width)
    rmin, rmax = rng.uniform(2, 5), side * rng.uniform(0.15, 0.6)
    count = int(_log_uniform(rng, 20, 1500))
    u = rng.random(count)
    radii = (rmin ** -2 - u * (rmin ** -2 - rmax ** -2)) ** -0.5
    for radius in radii[np.argsort(-radii)]:  # large ones first: small ones occlude them
        colour = np.exp(rng.normal(np.log(0.18), 1.0) + rng.normal(0, 0.25, 3))
        centre = (int(rng.integers(-radius, width + radius)), int(rng.integers(-radius, height + radius)))
        if rng.random() < 0.6:
            cv2.circle(scene, centre, int(radius), colour.tolist(), -1, lineType=cv2.LINE_AA)
        else:
            a, b = radius * rng.uniform(0.3, 1.5), radius * rng.uniform(0.3, 1.5)
            box = (centre, (2 * a, 2 * b), float(rng.uniform(0, 180)))
            cv2.fillPoly(scene, [cv2.boxPoints(box).astype(np.int32)], colour.tolist(), lineType=cv2.LINE_AA)
    ramp = np.linspace(rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5), width, dtype=np.float32)
    scene *= ramp[None, :, None] if rng.random() < 0.5 else np.resize(ramp, height)[:, None, None]
    if rng.random() < 0.7:
        grain = cv2.GaussianBlur(rng.standard_normal((height, width), dtype=np.float32), (0, 0), rng.uniform(0.5, 4))
        grain *= rng.uniform(0.05, 0.5) / max(float(grain.std()), 1e-12)
        scene *= np.exp(grain)[:, :, None]
    if (blur := rng.uniform(-0.5, 2.0)) > 0.2:
        scene = cv2.GaussianBlur(scene, (0, 0), blur)
    return scene


def _develop_linear(raw: np.ndarray, cfa: str, gains: np.ndarray, steps: dict) -> np.ndarray:
    """Demosaiced, white-balanced and (classic) denoised linear RGB float32 (H, W, 3), about 0..1."""
    code = (BAYER_EA if steps["edge_aware"] else BAYER)[cfa]
    rgb = cv2.demosaicing(raw, code).astype(np.float32) * np.float32(1.0 / WHITE)
    rgb *= gains.astype(np.float32)
    if steps["denoise"] == "gauss":
        rgb += steps["denoise_amount"] * (cv2.GaussianBlur(rgb, (0, 0), steps["denoise_sigma"]) - rgb)
    elif steps["denoise"] == "bilateral":
        rgb = cv2.bilateralFilter(np.clip(rgb, 0, 1), 5, steps["bilateral_range"], steps["denoise_sigma"] * 2)
    return rgb


def _develop_finish(rgb: np.ndarray, steps: dict, ph: dict | None = None) -> np.ndarray:
    """Sharpening (and the phone's halo sharpening), resampling (and the phone's digital zoom), tone curve:
    float32 (H, W, 3) in 0..255 (not rounded)."""
    ph = ph or {}
    if steps["sharpen"]:
        rgb += steps["sharpen"] * (rgb - cv2.GaussianBlur(rgb, (0, 0), steps["sharpen_sigma"]))
    if "sharpen_halo" in ph:
        rgb = phone.sharpen_halo(rgb, ph["sharpen_halo"]["amount"], ph["sharpen_halo"]["sigma"])
    if steps["resample"]:
        rgb = cv2.resize(rgb, steps["resample"], interpolation=cv2.INTER_AREA)
    if "crop_scale" in ph:
        rgb = phone.crop_scale(rgb, ph["crop_scale"]["factor"], ph["crop_scale"]["interpolation"])
    rgb = np.clip(rgb, 0, 1) ** np.float32(1.0 / steps["gamma"])
    return rgb * np.float32(255.0)


def _develop_pair(raws: list[np.ndarray], cfa: str, gains: np.ndarray, steps: dict, ph: dict) -> list[np.ndarray]:
    """Both exposures developed: the classic steps, and those of the phone's steps ``ph`` holds (none for a
    classic camera): its denoiser, local tone mapping and distortion correction after the classic denoising
    (their image-dependent weights from the photo, ``raws[0]``, applied to both), its halo sharpening and
    digital zoom in :func:`_develop_finish`."""
    rgbs = [_develop_linear(raw, cfa, gains, steps) for raw in raws]
    if "denoise" in ph:
        d = ph["denoise"]
        rgbs = phone.denoise_pair(rgbs, d["method"], d["strength"], d["radius"])
    if "tonemap" in ph:
        gain = phone.tone_gain(rgbs[0], ph["tonemap"]["strength"], ph["tonemap"]["sigma"])[:, :, None]
        rgbs = [rgb * gain for rgb in rgbs]
    if "lens" in ph:
        lens = ph["lens"]
        maps = phone.distortion_maps(*rgbs[0].shape[:2], lens["k1"], lens["k2"], lens["centre"])
        rgbs = [phone.remap(rgb, maps, lens["interpolation"]) for rgb in rgbs]
    return [_develop_finish(rgb, steps, ph) for rgb in rgbs]


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.asarray(GRAY_WEIGHTS, np.float32)


def _decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def synthetic_photo(rng: np.random.Generator, size: int, quality: int,
                    r: SensorRanges = SensorRanges()) -> tuple[np.ndarray, np.ndarray, dict]:
    """One photo of a new synthetic camera: (JPEG pixels uint8 (size, size, 3) at ``quality``, exact PRNU
    term float32 (size, size) in gray levels, what was drawn). ``size``: a multiple of 8 (the JPEG grid)."""
    if size % 8 or not 1 <= int(quality) <= 100:
        raise ValueError(f"synthetic photo of {size} px at quality {quality}: the side must be a multiple of 8 "
                         "and the quality within 1..100")
    steps = {"edge_aware": bool(rng.random() < 0.5),
             "denoise": str(rng.choice(["none", "gauss", "bilateral"], p=[1 - r.denoise_probability,
                                                                           r.denoise_probability / 2,
                                                                           r.denoise_probability / 2])),
             "denoise_amount": float(rng.uniform(0.2, 0.8)), "denoise_sigma": float(rng.uniform(0.5, 1.2)),
             "bilateral_range": float(rng.uniform(0.01, 0.06)),
             "sharpen": float(rng.uniform(0.2, 1.5)) if rng.random() < r.sharpen_probability else 0.0,
             "sharpen_sigma": float(rng.uniform(0.6, 1.5)), "gamma": float(rng.uniform(1.8, 2.6)),
             "resample": None}
    sensor = size
    if rng.random() < r.resample_probability:
        sensor = int(np.ceil(size / rng.uniform(0.6, 0.95) / 2) * 2)
        steps["resample"] = (size, size)
    cfa = str(rng.choice(list(CFA_COLOURS)))
    k = random_prnu(rng, sensor, sensor, r)
    scene = dead_leaves(rng, sensor, sensor)
    sensitivity = np.array([rng.uniform(0.4, 0.65), 1.0, rng.uniform(0.5, 0.85)], np.float32)
    colours = np.array(CFA_COLOURS[cfa]).reshape(2, 2)

    def mosaic(rgb: np.ndarray) -> np.ndarray:
        out = np.empty((sensor, sensor), np.float32)
        for (dy, dx), c in np.ndenumerate(colours):
            out[dy::2, dx::2] = rgb[dy::2, dx::2, c] * sensitivity[c]
        return out

    signal = mosaic(scene)
    luminance = float(_gray(scene[::4, ::4]).mean())
    exposure = np.float32(0.18 * 2.0 ** rng.uniform(*r.exposure_stops) / max(luminance, 1e-6))
    signal *= exposure
    iso = int(rng.choice(r.iso))
    gain = iso / 100.0 / rng.uniform(*r.full_well)  # white level per electron
    read = rng.uniform(*r.read_noise) * gain
    z = rng.standard_normal(signal.shape, dtype=np.float32)
    gains = 1.0 / sensitivity * rng.uniform(0.9, 1.1, 3)
    camera_quality = camera_sampling = None
    if rng.random() < r.camera_jpeg_probability:
        camera_quality = int(rng.integers(r.camera_quality[0], r.camera_quality[1] + 1))
        camera_sampling = str(rng.choice(["420", "444"]))
    # the phone's draws come from their own generator, seeded after every classic draw
    prng = np.random.default_rng(int(rng.integers(2 ** 63))) if r.has_phone else None
    ph = phone.draw_phone(prng, r) if prng is not None else {}
    lens = ph.get("lens")
    shading = phone.shading_gain(sensor, sensor, lens["corner_gain"], lens["falloff"], lens["centre"]) \
        if lens else None

    def expose(light: np.ndarray, normal: np.ndarray) -> list[np.ndarray]:
        """12-bit samples (float32) of ``light`` (the lens dims the corners), with K and without."""
        if shading is not None:
            light = light / shading
        exposed = light * (1 + k)
        noise = np.sqrt(np.maximum(exposed, 0) * gain + read * read) * normal
        return [np.clip(np.rint((s + noise) * WHITE), 0, WHITE).astype(np.float32) for s in (exposed, light)]

    raws = expose(signal, z)
    if "burst" in ph:
        burst = ph["burst"]
        shifts = [(0.0, 0.0)] + [tuple(float(v) for v in prng.uniform(-burst["shift"], burst["shift"], 2))
                                 for _ in range(burst["frames"] - 1)]
        frames = [raws] + [expose(mosaic(phone.shift_image(scene, dx, dy)) * exposure,
                                  prng.standard_normal(signal.shape, dtype=np.float32)) for dx, dy in shifts[1:]]
        variance = (np.maximum(raws[0], 0) * (gain * WHITE) + (read * WHITE) ** 2).astype(np.float32)
        raws = list(phone.burst_merge(frames, shifts, variance, burst["robustness"]))
        burst["shifts"] = [list(d) for d in shifts]
    if shading is not None:
        raws = [raw * shading for raw in raws]  # the ISP's lens shading correction
    raws = [np.clip(np.rint(raw), 0, WHITE).astype(np.uint16) for raw in raws]
    developed = _develop_pair(raws, cfa, gains, steps, ph)
    target = _gray(developed[0]) - _gray(developed[1])
    pixels = np.clip(np.rint(developed[0]), 0, 255).astype(np.uint8)
    if "phone_tables" in ph:
        t = ph["phone_tables"]
        luma, chroma = phone.phone_qtables(t["base"], t["quality"], t["jitter"], t["seed"])
        t["equivalent_quality"] = phone.equivalent_quality(np.asarray(luma))
        pixels = _decode(phone.encode_with_tables(pixels, luma, chroma, t["subsampling"]))
        camera_quality = None
    elif camera_quality is not None:
        pixels = _decode(encode_jpeg(pixels, camera_quality, camera_sampling))
    pixels = np.ascontiguousarray(_decode(encode_jpeg(pixels, int(quality), "420")))
    drawn = {**steps, "cfa": cfa, "iso": iso, "prnu_std": float(k.std()), "camera_quality": camera_quality,
             "phone": ph}
    return pixels, target.astype(np.float32), drawn


def example_seed(seed: int, stream: int, index: int) -> np.random.Generator:
    """The random generator of example ``index`` of ``stream`` (0 training, 1 validation, ...) under ``seed``."""
    return np.random.default_rng([int(seed), int(stream), int(index)])
