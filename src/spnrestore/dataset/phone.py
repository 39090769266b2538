"""Phone processing for the synthetic generator (:mod:`spnrestore.dataset.synthetic`): the steps a phone's ISP
adds to a classic camera's development, each a pure function (numpy, OpenCV, Pillow; no torch).

In the order of an ISP: a raw burst merge (:func:`burst_merge`, frames with their own noise and sub-pixel
camera motion, aligned back to the reference frame and merged with a robust mean), lens shading correction
(:func:`shading_gain`); after demosaicing a strong spatial denoiser (:func:`denoise_pair`: non-local means or
a guided filter), local tone mapping (:func:`tone_gain`), distortion correction (:func:`distortion_maps`),
sharpening with halos (:func:`sharpen_halo`), digital zoom (:func:`crop_scale`), and the camera's JPEG with
its own quantisation tables (:func:`phone_qtables`, :func:`encode_with_tables`).

The generator develops two exposures of the same photons and noise (with PRNU ``K`` and without) and its
target is their difference, so every step must treat both alike. The steps whose effect depends on the image
(the merge's weights, the denoiser's weights, the tone map's gain) compute it once from the exposure with
``K`` (the photo the camera saw) and apply the same linear operator to both: the target is the PRNU term
passed through exactly the operator that the photo went through.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from ..jpeg import IJG_TABLES
from ..spn.wavelet_denoise import GRAY_WEIGHTS
from .phone_tables import PHONE_TABLES

STEPS = {"burst": "burst_probability", "denoise": "phone_denoise_probability", "tonemap": "tonemap_probability",
         "lens": "lens_probability", "sharpen_halo": "halo_probability", "phone_tables": "phone_tables_probability",
         "crop_scale": "crop_scale_probability"}
"""The phone steps, in the order they are drawn, and the field of ``SensorRanges`` with each one's probability
(given that the example is a phone, ``phone_probability``)."""

_INTERP = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


def _gray(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.asarray(GRAY_WEIGHTS, np.float32)


def draw_phone(rng: np.random.Generator, r) -> dict:
    """The phone steps of one example and their parameters, drawn from ``rng`` in a fixed order (every
    parameter is drawn whether or not its step is on, so a step's parameters do not depend on the others):
    a dict of the steps that are on (empty for a classic camera), plain Python values.
    ``r``: :class:`~spnrestore.dataset.synthetic.SensorRanges`."""
    phone = bool(rng.random() < r.phone_probability)
    on = {s: bool(rng.random() < getattr(r, field)) and phone for s, field in STEPS.items()}
    base = str(rng.choice(sorted(PHONE_TABLES)))
    params = {
        "burst": {"frames": int(rng.integers(r.burst_frames[0], r.burst_frames[1] + 1)),
                  "shift": float(r.burst_shift),
                  "robustness": float(rng.uniform(1.0, 4.0))},
        "denoise": {"method": str(rng.choice(["nlm", "guided"])),
                    "strength": float(rng.uniform(*r.phone_denoise_strength)), "radius": int(rng.integers(3, 7))},
        "tonemap": {"strength": float(rng.uniform(*r.tonemap_strength)), "sigma": float(rng.uniform(0.05, 0.2))},
        "lens": {"corner_gain": float(rng.uniform(*r.lens_shading_gain)), "falloff": float(rng.uniform(0, 1)),
                 "centre": [float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))],
                 "k1": float(rng.uniform(*r.distortion)), "k2": float(rng.uniform(-0.03, 0.03)),
                 "interpolation": str(rng.choice(["linear", "cubic"]))},
        "sharpen_halo": {"amount": float(rng.uniform(*r.halo_amount)), "sigma": float(rng.uniform(*r.halo_sigma))},
        "phone_tables": {"base": base, "quality": int(rng.integers(r.phone_quality[0], r.phone_quality[1] + 1)),
                         "jitter": float(rng.uniform(0.0, 0.12)), "subsampling": str(rng.choice(["420", "444"])),
                         "seed": int(rng.integers(2 ** 31))},
        "crop_scale": {"factor": float(rng.uniform(*r.crop_scale)),
                       "interpolation": str(rng.choice(["cubic", "lanczos"]))},
    }
    return {s: params[s] for s in STEPS if on[s]}


# ------------------------------------------------------------------------------------------------ raw domain
def shift_image(image: np.ndarray, dx: float, dy: float, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """``image`` with its content moved by (``dx``, ``dy``) px (sub-pixel: resampled), borders reflected."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), flags=interpolation,
                          borderMode=cv2.BORDER_REFLECT)


def align_mosaic(raw: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """A Bayer mosaic float32 (H, W) whose scene moved by (``dx``, ``dy``) px, moved back: each of the four
    colour planes (half resolution) is shifted by (-dx/2, -dy/2), so colours never mix."""
    out = np.empty_like(raw)
    for py in (0, 1):
        for px in (0, 1):
            out[py::2, px::2] = shift_image(np.ascontiguousarray(raw[py::2, px::2]), -dx / 2, -dy / 2)
    return out


def burst_merge(frames: list[tuple[np.ndarray, np.ndarray]], shifts: list[tuple[float, float]],
                variance: np.ndarray, robustness: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Merge a burst of raw frames, each a pair (with ``K``, without) float32 (H, W) mosaics of one exposure,
    frame ``i``'s scene moved by ``shifts[i]`` px (frame 0, the reference, by (0, 0)).

    Each frame is aligned to the reference (:func:`align_mosaic`) and merged with a robust mean: weight 1 for
    the reference and, per pixel, ``1 / (1 + max(d / (2 variance) - 1, 0) * robustness)`` for the others, where
    ``d`` is the local (5x5) mean squared difference between the aligned frame and the reference (with
    ``K``) and ``variance`` the noise variance of one frame per pixel: pixels that do not match the reference
    (misaligned edges, interpolation errors) count less, noise alone keeps a weight near 1. The weights come
    from the frames with ``K`` and merge both exposures, so the merge is one linear operator for both.
    """
    ref = frames[0][0]
    total = [frames[0][0].astype(np.float32).copy(), frames[0][1].astype(np.float32).copy()]
    weight = np.ones_like(ref, dtype=np.float32)
    scale = np.float32(1.0 / 2.0) / np.maximum(variance, 1e-6).astype(np.float32)
    for (with_k, without), (dx, dy) in zip(frames[1:], shifts[1:]):
        aligned = align_mosaic(with_k, dx, dy)
        d = cv2.boxFilter((aligned - ref) ** 2, -1, (5, 5), borderType=cv2.BORDER_REFLECT)
        w = 1.0 / (1.0 + np.maximum(d * scale - 1.0, 0.0) * np.float32(robustness))
        total[0] += w * aligned
        total[1] += w * align_mosaic(without, dx, dy)
        weight += w
    return total[0] / weight, total[1] / weight


def shading_gain(height: int, width: int, corner_gain: float, falloff: float = 0.5,
                 centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Lens shading correction gain float32 (H, W): 1 at the optical centre (offset ``centre`` in fractions
    of the half sides), ``corner_gain`` at the farthest corner, radial ``1 + (g - 1) ((1 - f) rho^2 + f rho^4)``
    (``rho``: distance over the farthest corner's). The lens dims the scene by ``1 / gain``, the ISP multiplies
    the raw samples by ``gain`` (so the noise grows towards the corners)."""
    cy, cx = (height - 1) / 2 * (1 + centre[1]), (width - 1) / 2 * (1 + centre[0])
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rho2 = (y - cy) ** 2 + (x - cx) ** 2
    rho2 /= max(cy, height - 1 - cy) ** 2 + max(cx, width - 1 - cx) ** 2
    return (1 + (corner_gain - 1) * ((1 - falloff) * rho2 + falloff * rho2 * rho2)).astype(np.float32)


# ----------------------------------------------------------------------------------------- developed (linear)
def _noise_sigma(gray: np.ndarray) -> float:
    """Noise std of ``gray`` from the median absolute diagonal detail (robust to edges)."""
    h, w = gray.shape[0] // 2 * 2, gray.shape[1] // 2 * 2
    g = gray[:h, :w]
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2
    return max(float(np.median(np.abs(hh))) / 0.6745, 1e-6)


def _guide(rgb: np.ndarray) -> np.ndarray:
    """The denoisers' guide: the square root of the gray image (shot noise then has about the same std
    everywhere, so one strength fits dark and bright regions)."""
    return np.sqrt(np.maximum(_gray(rgb), 0)).astype(np.float32)


def nlm_pair(images: list[np.ndarray], guide: np.ndarray, h: float, search: int = 2,
             patch: int = 2) -> list[np.ndarray]:
    """Non-local means of each of ``images`` float32 (H, W, C) with the weights of ``guide`` float32 (H, W):
    over a (2 search + 1)^2 window, weight ``exp(-max(d - 2 s^2, 0) / h^2)`` with ``d`` the mean squared
    difference of the guide's (2 patch + 1)^2 patches and ``s`` the guide's noise std."""
    height, width = guide.shape
    s2 = 2 * _noise_sigma(guide) ** 2
    planes = [np.moveaxis(x.reshape(height, width, -1), 2, 0) for x in images]
    stacked = np.concatenate(planes, axis=0)  # (C, H, W): one pass for every channel of every image
    ipad = np.pad(stacked, ((0, 0), (search, search), (search, search)), mode="symmetric")
    gpad = cv2.copyMakeBorder(guide, search, search, search, search, cv2.BORDER_REFLECT)
    acc = np.zeros_like(stacked)
    term = np.empty_like(stacked)
    wsum = np.zeros_like(guide)
    k = (2 * patch + 1, 2 * patch + 1)
    inv_h2 = np.float32(-1.0 / (h * h))
    for dy in range(2 * search + 1):
        for dx in range(2 * search + 1):
            d = cv2.boxFilter((guide - gpad[dy:dy + height, dx:dx + width]) ** 2, -1, k, borderType=cv2.BORDER_REFLECT)
            w = cv2.exp(np.maximum(d - s2, 0) * inv_h2)
            wsum += w
            np.multiply(w, ipad[:, dy:dy + height, dx:dx + width], out=term)
            acc += term
    acc /= wsum
    out, start = [], 0
    for x, p in zip(images, planes):
        out.append(np.ascontiguousarray(np.moveaxis(acc[start:start + len(p)], 0, 2)).reshape(x.shape))
        start += len(p)
    return out


def guided_pair(images: list[np.ndarray], guide: np.ndarray, radius: int, eps: float) -> list[np.ndarray]:
    """Guided filter (He et al.) of each channel of each of ``images`` with ``guide`` (box filters of side
    2 radius + 1, regularisation ``eps``): linear in the images for a given guide."""
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    var_i = box(guide * guide) - mean_i * mean_i
    gi = guide[:, :, None]
    out = []
    for p in images:
        mean_p = box(p)
        a = (box(gi * p) - mean_i[:, :, None] * mean_p) / (var_i[:, :, None] + np.float32(eps))
        b = mean_p - a * mean_i[:, :, None]
        out.append(box(a) * gi + box(b))
    return out


def denoise_pair(images: list[np.ndarray], method: str, strength: float, radius: int = 3) -> list[np.ndarray]:
    """Phone-strength spatial denoising of developed linear RGB images (the first is the photo, whose square
    root gray guides the filter): non-local means (``nlm``, 5x5 window, 5x5 patches, ``h = strength`` times the
    guide's noise std) or a guided filter (``guided``, ``radius``, ``eps = (2 strength s)^2``)."""
    guide = _guide(images[0])
    if method == "nlm":
        return nlm_pair(images, guide, strength * _noise_sigma(guide))
    if method == "guided":
        return guided_pair(images, guide, radius, (2 * strength * _noise_sigma(guide)) ** 2)
    raise ValueError(f"unknown denoiser {method!r}")


def tone_gain(rgb: np.ndarray, strength: float, sigma: float) -> np.ndarray:
    """Local tone mapping gain float32 (H, W) of a linear RGB image: ``((B + e) / (m + e)) ** -strength`` where
    ``B`` is the gray image blurred by a Gaussian of ``sigma`` times the side (computed at 1/8 resolution),
    ``m`` its mean and ``e`` 1 % of ``m``; dark regions are brightened, bright ones dimmed (clipped 1/8..8)."""
    gray = _gray(rgb)
    height, width = gray.shape
    small = cv2.resize(gray, (max(width // 8, 4), max(height // 8, 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), max(sigma * max(small.shape), 0.5), borderType=cv2.BORDER_REFLECT)
    blurred = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    m = max(float(gray.mean()), 1e-6)
    gain = ((np.maximum(blurred, 0) + 0.01 * m) / (1.01 * m)) ** np.float32(-strength)
    return np.clip(gain, 0.125, 8.0).astype(np.float32)


def distortion_maps(height: int, width: int, k1: float, k2: float = 0.0,
                    centre: tuple[float, float] = (0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Maps (x, y) float32 (H, W) for ``cv2.remap`` of a radial distortion correction: the output pixel at
    normalised radius ``r`` (1 at the half diagonal) samples the sensor at ``r (1 + k1 r^2 + k2 r^4) / z``, ``z``
    the largest such factor over the corners if above 1 (so the frame stays filled, as a camera crops)."""
    cy, cx = (height - 1) / 2 * (1 + centre[1]), (width - 1) / 2 * (1 + centre[0])
    half = np.hypot((height - 1) / 2, (width - 1) / 2)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((y - cy) ** 2 + (x - cx) ** 2) / half ** 2
    factor = 1 + k1 * r2 + k2 * r2 * r2
    corners = [((a - cy) ** 2 + (b - cx) ** 2) / half ** 2 for a in (0, height - 1) for b in (0, width - 1)]
    zoom = max(1.0, *(1 + k1 * c + k2 * c * c for c in corners))
    factor = (factor / np.float32(zoom)).astype(np.float32)
    return (cx + (x - cx) * factor).astype(np.float32), (cy + (y - cy) * factor).astype(np.float32)


def remap(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray], interpolation: str = "linear") -> np.ndarray:
    return cv2.remap(image, maps[0], maps[1], _INTERP[interpolation], borderMode=cv2.BORDER_REFLECT)


def sharpen_halo(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Unsharp mask with a wide radius and a strong amount: overshoot (halos) on both sides of edges."""
    return image + np.float32(amount) * (image - cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT))


def crop_scale(image: np.ndarray, factor: float, interpolation: str = "cubic") -> np.ndarray:
    """Digital zoom: the central 1/``factor`` of ``image`` scaled back to its size."""
    height, width = image.shape[:2]
    ch, cw = max(int(round(height / factor)), 2), max(int(round(width / factor)), 2)
    y0, x0 = (height - ch) // 2, (width - cw) // 2
    return cv2.resize(image[y0:y0 + ch, x0:x0 + cw], (width, height), interpolation=_INTERP[interpolation])


# ------------------------------------------------------------------------------------------------ camera JPEG
def equivalent_quality(luma: np.ndarray) -> int:
    """The IJG quality whose luminance table is nearest (mean absolute step) to ``luma`` (64, natural order)."""
    return int(np.argmin(np.abs(IJG_TABLES - np.asarray(luma)).mean(axis=1))) + 1


def phone_qtables(base: str, quality: int, jitter: float, seed: int) -> tuple[list[int], list[int]]:
    """Luminance and chrominance tables (64 steps each, natural order) of a camera: the tables of ``base``
    (:data:`~spnrestore.dataset.phone_tables.PHONE_TABLES`) scaled as libjpeg scales from the base's
    equivalent quality to ``quality``, each step times ``exp(N(0, jitter))`` (drawn from ``seed``), rounded to
    1..255; never an IJG luminance table (one step is moved by 1 if it would be)."""
    rng = np.random.default_rng(seed)
    own = equivalent_quality(np.asarray(PHONE_TABLES[base][0]))
    scale = max(200 - 2 * int(quality), 1) / max(200 - 2 * own, 1)
    out = []
    for table in PHONE_TABLES[base]:
        t = np.asarray(table, np.float64) * scale * np.exp(rng.normal(0, jitter, 64))
        out.append(np.clip(np.rint(t), 1, 255).astype(np.int64))
    if (IJG_TABLES == out[0]).all(axis=1).any():
        out[0][63] += 1 if out[0][63] < 255 else -1
    return [int(v) for v in out[0]], [int(v) for v in out[1]]


def encode_with_tables(rgb: np.ndarray, luma: list[int], chroma: list[int], subsampling: str = "420") -> bytes:
    """Baseline JPEG of uint8 RGB with the given quantisation tables (Pillow, natural order)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="JPEG", qtables=[luma, chroma],
                                                    subsampling={"444": 0, "420": 2}[subsampling])
    return buf.getvalue()
