"""Camera fingerprint (PRNU) estimation, streaming.

Maximum-likelihood estimate of the multiplicative sensor pattern ``K`` from N
images of one camera (Chen, Fridrich, Goljan, Lukas 2008), exactly as
prnu-python's ``extract_multiple_aligned``, per colour channel::

    K_c = sum_i(W_ic * I_ic / 255) / (sum_i (IntenScale(I_ic) * Saturation(I_ic))**2 + 1)

with ``W_ic`` the wavelet residual of channel c (:func:`spnrestore.spn.noise_rgb`)
and ``I_ic`` the image intensities 0..255. Note the asymmetry, kept from
prnu-python: the numerator weights ``W`` by the plain intensity ``I/255``, the
denominator uses the attenuated and saturation-masked intensity. Then ``K`` is
converted to gray, zero-meaned (:func:`zero_mean_total`) and Wiener-filtered in
the DFT domain with sigma = ``std(K, ddof=1)``.

:class:`FingerprintAccumulator` keeps only the two running sums (float32,
``2 * 4 * C`` bytes per pixel: 0.58 GB for a 24 MP RGB camera; float64 before
issue 16, NCC of the fingerprints 1 - 1e-12), so memory does not grow with the
number of images. Its ``add`` is the fast path of issue 16:
the residuals come out of the inverse transform with each row as its even then
its odd columns (no final column interleave) and the sums are kept in that
layout (``finalize`` restores the pixel order); the sums are updated in row
strips that stay in cache (``IntenScale**2`` from a table), and the saturation
mask is found from the few pixels at a channel's maximum (a dense mask when
they are many).
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from spnrestore.errors import BadImageError, SpnRestoreError

from ._checks import as_float_map, as_image, check_not_constant, check_same_size, label
from .residual import DEFAULT_SIGMA, _finish, rgb2gray
from .wavelet_denoise import GRAY_WEIGHTS, denoise_image, merge_columns, split_columns

__all__ = [
    "FingerprintAccumulator",
    "central_window",
    "fingerprint_from_sums",
    "estimate_fingerprint",
    "fingerprint_term",
    "inten_scale",
    "saturation",
]

#: IntenScale constants of the toolbox: threshold and width of the attenuation near saturation.
INTEN_T = 252
INTEN_V = 6
#: Saturation: a channel counts as saturated when its maximum is above this.
SAT_LEVEL = 250


def _inten_scale_values(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)
    out = np.exp(-((v - INTEN_T) ** 2) / INTEN_V)
    low = v < INTEN_T
    out[low] = v[low] / INTEN_T
    return out


#: (IntenScale(v))**2 for v = 0..255, float32.
_INTEN2_LUT = (_inten_scale_values(np.arange(256)) ** 2).astype(np.float32)


def inten_scale(img) -> np.ndarray:
    """Toolbox ``IntenScale``: ``v / 252`` below 252, ``exp(-(v - 252)**2 / 6)`` from 252 up.

    ``img``: intensities on the 0..255 scale (uint8 or float), any shape.
    Returns float64 of the same shape, in 0..1.
    """
    return _inten_scale_values(img)


def _flat_neighbours(eq: np.ndarray) -> np.ndarray:
    """For a boolean map: True where at least one 4-neighbour (circular wrap) is True."""
    nb = np.zeros_like(eq)
    nb[:, 1:] |= eq[:, :-1]
    nb[:, :-1] |= eq[:, 1:]
    nb[:, 0] |= eq[:, -1]
    nb[:, -1] |= eq[:, 0]
    nb[1:] |= eq[:-1]
    nb[:-1] |= eq[1:]
    nb[0] |= eq[-1]
    nb[-1] |= eq[0]
    return nb


def _sat_keep_plane(plane: np.ndarray):
    """Keep-mask (uint8 0/1) of one channel, or None when nothing is masked.

    A pixel is masked when the channel maximum is above 250, the pixel equals
    it, and at least one 4-neighbour (circular) equals it too (a flat saturated
    area).
    """
    mx = float(plane.max())
    if mx <= SAT_LEVEL:
        return None
    eq = plane == mx
    masked = eq & _flat_neighbours(eq)
    if not masked.any():
        return None
    return (~masked).view(np.uint8)


def saturation(img, compat: str = "standard") -> np.ndarray:
    """Saturation keep-map (1 = use the pixel, 0 = saturated), float32 with the shape of ``img``.

    ``compat="standard"``: in each channel whose maximum is above 250, mask the
    pixels equal to that maximum that have a 4-neighbour (circular) with the
    same value (flat saturated areas); other channels are all ones.

    ``compat="prnu-python"``: prnu-python's ``saturation`` bit for bit. It
    differs only when the image maximum is >= 250: then a channel whose own
    maximum is <= 250 gets the map "has an equal 4-neighbour" (1 at flat
    pixels, 0 elsewhere), and an image maximum of exactly 250 uses that map
    for all channels. (The MATLAB toolbox has the opposite quirk; neither is
    documented.)
    """
    a = np.asarray(img)
    squeeze = a.ndim == 2
    if squeeze:
        a = a[:, :, None]
    out = np.ones(a.shape, np.float32)
    if compat == "standard":
        for c in range(a.shape[2]):
            keep = _sat_keep_plane(np.ascontiguousarray(a[:, :, c]))
            if keep is not None:
                out[:, :, c] = keep
    elif compat == "prnu-python":
        if a.max() >= SAT_LEVEL:
            for c in range(a.shape[2]):
                p = a[:, :, c]
                flat = (
                    (p == np.roll(p, 1, 1)) | (p == np.roll(p, 1, 0)) | (p == np.roll(p, -1, 1)) | (p == np.roll(p, -1, 0))
                )
                mx = p.max()
                out[:, :, c] = ~((p == mx) & flat) if mx > SAT_LEVEL else flat
    else:
        raise ValueError(f"saturation: compat must be 'standard' or 'prnu-python', not {compat!r}")
    return out[:, :, 0] if squeeze else out


def _inten2(p: np.ndarray, pf: np.ndarray, out: np.ndarray) -> np.ndarray:
    """IntenScale(p)**2 as float32: (p/252)**2 below 252, the table value (exp rule) from 252 up."""
    i2 = cv2.multiply(pf, pf, dst=out, scale=1.0 / (INTEN_T * INTEN_T))
    if float(p.max()) >= INTEN_T:
        hi = p >= INTEN_T
        if p.dtype == np.uint8:
            i2[hi] = _INTEN2_LUT[p[hi]]
        else:
            i2[hi] = (_inten_scale_values(p[hi]) ** 2).astype(np.float32)
    return i2


#: dtype of the running sums (float32 halves their memory and their traffic on every add; their
#: rounding, about 1e-7 relative per image, is far below the fingerprint's own noise).
_SUM_DTYPE = np.float32
#: Elements per row strip of the running-sum updates (their temporaries stay in cache).
_ACC_STRIP = 1 << 16
#: Above this fraction of a channel's pixels at its maximum, the saturation mask is made densely.
_SPARSE_MAX = 1 / 16
#: uint8 -> float32 conversion table (cv2.LUT converts faster than astype).
_IDENTITY_LUT = np.arange(256, dtype=np.float32)


def _small_buf(ws: dict, key, shape, dtype) -> np.ndarray:
    a = ws.get(key)
    if a is None or a.shape != tuple(shape) or a.dtype != dtype:
        a = ws[key] = np.empty(shape, dtype)
    return a


def _channel_max(img: np.ndarray) -> list:
    """Per channel of an H x W x C image: its maximum if above SAT_LEVEL (it may have saturated pixels), else None."""
    h, w, nch = img.shape
    mx = np.ascontiguousarray(img).reshape(h, w * nch).max(axis=0).reshape(w, nch).max(axis=0)
    return [float(m) if m > SAT_LEVEL else None for m in mx]


def _split_channel(rows: np.ndarray, c: int, dst: np.ndarray) -> np.ndarray:
    """Channel ``c`` of ``rows`` (n x W x C) into ``dst`` (n x W) as each row's even columns, then its odd columns."""
    n, w, nch = rows.shape
    qe = (w + 1) // 2
    if w % 2 == 0 and rows.flags.c_contiguous:
        r2 = rows.reshape(n, w // 2, 2 * nch)  # a row as W/2 pixels of 2C values: even-column channels first
        cv2.extractChannel(r2, c, dst=dst[:, :qe])
        cv2.extractChannel(r2, nch + c, dst=dst[:, qe:])
    else:
        dst[:, :qe] = rows[:, 0::2, c]
        dst[:, qe:] = rows[:, 1::2, c]
    return dst


def _orig_cols(xs: np.ndarray, w: int) -> np.ndarray:
    """Pixel columns of split-layout columns (even columns first, then odd)."""
    qe = (w + 1) // 2
    xs = xs.astype(np.int64)
    return np.where(xs < qe, 2 * xs, 2 * (xs - qe) + 1)


def _flat_max_pixels(ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
    """For pixels equal to their channel's maximum (all of them given): True where a 4-neighbour
    (circular wrap, as :func:`saturation`) is one of them too."""
    lin = ys.astype(np.int64) * w + xs
    keys = np.sort(lin)
    out = np.zeros(lin.shape, bool)
    for ny, nx in ((ys, (xs + 1) % w), (ys, (xs - 1) % w), ((ys + 1) % h, xs), ((ys - 1) % h, xs)):
        nb = ny.astype(np.int64) * w + nx
        pos = np.minimum(np.searchsorted(keys, nb), keys.size - 1)
        out |= keys[pos] == nb
    return out


class FingerprintAccumulator:
    """Streaming maximum-likelihood PRNU fingerprint of one camera.

    >>> acc = FingerprintAccumulator()
    >>> for img in images:          # uint8 H x W x 3, same size and orientation
    ...     acc.add(img, name=path)
    >>> K = acc.finalize()          # float32 H x W

    Memory: two float32 running sums of H x W x C (8 bytes per pixel and
    channel) plus the temporaries of one residual; it does not grow with the
    number of images.

    Parameters
    ----------
    sigma : float
        Wavelet Wiener noise std (grey levels), default 5.
    saturation_compat : {"standard", "prnu-python"}
        Which saturation map to use (see :func:`saturation`).
    """

    def __init__(self, sigma: float = DEFAULT_SIGMA, saturation_compat: str = "standard"):
        if saturation_compat not in ("standard", "prnu-python"):
            raise ValueError(f"saturation_compat must be 'standard' or 'prnu-python', not {saturation_compat!r}")
        self.sigma = float(sigma)
        self.saturation_compat = saturation_compat
        self._num = None  # list of float32 planes: sum W_c * I_c (I on 0..255), split column layout
        self._den = None  # list of float32 planes: sum (IntenScale * Saturation)^2, split column layout
        self._shape = None
        self._count = 0
        self._first = None
        self._ws = {}  # reused scratch buffers of the residual computation

    @property
    def count(self) -> int:
        """Number of images added so far."""
        return self._count

    @property
    def shape(self):
        """(H, W, C) of the images, or None before the first :meth:`add`."""
        return self._shape

    def add(self, rgb, name=None) -> None:
        """Add one image (uint8 H x W x 3 RGB or H x W gray; floats on the 0..255 scale).

        Raises :class:`BadImageError` for a bad image (see
        :func:`extract_residual`) or one whose size/channels differ from the
        first image's.
        """
        a = as_image(rgb, name)
        who = label(name)
        shape = a.shape if a.ndim == 3 else a.shape + (1,)
        if self._shape is None:
            self._shape = shape
            self._first = who
        elif shape != self._shape:
            hint = ""
            if shape[:2] == self._shape[1::-1]:
                hint = "; it is rotated: put it into sensor orientation (spnrestore.spn.to_sensor_orientation)"
            raise BadImageError(
                who,
                f"is {shape[0]}x{shape[1]}x{shape[2]} but the fingerprint's first image ({self._first}) is "
                f"{self._shape[0]}x{self._shape[1]}x{self._shape[2]}{hint}",
                "all images of one fingerprint must have the same size and orientation: crop or rotate them",
            )
        check_not_constant(a, who)
        img = a if a.ndim == 3 else a[:, :, None]
        h, w, nch = shape
        # per-channel residuals, each row as its even then its odd columns (split layout): the running
        # sums are kept in that layout (finalize restores the pixel order), which saves the inverse
        # transform's last column interleave
        res = denoise_image(a, self.sigma, workspace=self._ws, split_cols=True, gemm=True)
        if self._num is None:
            self._num = [np.zeros((h, w), _SUM_DTYPE) for _ in range(nch)]
            self._den = [np.zeros((h, w), _SUM_DTYPE) for _ in range(nch)]
        sat = None
        if self.saturation_compat == "prnu-python":
            sat = saturation(a, compat="prnu-python")
            if sat.ndim == 2:
                sat = sat[:, :, None]
            chan_max = [None] * nch
        else:
            chan_max = _channel_max(img)
        cand = [[] for _ in range(nch)]  # per channel: (rows, split columns, den before) of max-valued pixels
        n_cand = [0] * nch
        step = max(1, _ACC_STRIP // w)
        dt = img.dtype
        u = _small_buf(self._ws, "acc_plane", (step, w), dt)
        pf = _small_buf(self._ws, "acc_float", (step, w), np.float32)
        i2 = _small_buf(self._ws, "acc_inten2", (step, w), np.float32)
        for y0 in range(0, h, step):
            y1 = min(h, y0 + step)
            n = y1 - y0
            for c in range(nch):
                p = _split_channel(img[y0:y1], c, u[:n])
                if dt == np.uint8:
                    cv2.LUT(p, _IDENTITY_LUT, dst=pf[:n])
                    cv2.LUT(p, _INTEN2_LUT, dst=i2[:n])
                    q2 = i2[:n]
                else:
                    np.copyto(pf[:n], p)
                    q2 = _inten2(p, pf[:n], i2[:n])
                # numerator: W * I (I on 0..255; the 1/255 is applied in finalize)
                cv2.accumulateProduct(res[c][y0:y1], pf[:n], self._num[c][y0:y1])
                den = self._den[c][y0:y1]
                if sat is not None:
                    q2 *= _split_channel(sat[y0:y1], c, _small_buf(self._ws, "acc_sat", (step, w), np.float32)[:n])
                elif chan_max[c] is not None:
                    nz = cv2.findNonZero(cv2.compare(p, chan_max[c], cv2.CMP_EQ)) if cand[c] is not None else None
                    if nz is not None:
                        nz = nz.reshape(-1, 2)
                        xs, ys = nz[:, 0], nz[:, 1]
                        cand[c].append((ys + y0, xs, den[ys, xs]))
                        n_cand[c] += len(xs)
                        if n_cand[c] > _SPARSE_MAX * h * w:
                            cand[c] = None  # a large saturated area: the dense mask below
                cv2.accumulate(q2, den)
        for c in range(nch):
            if cand[c] is None:
                # dense case: take the masked pixels' IntenScale**2 of this image back out of the sum
                keep = _sat_keep_plane(np.ascontiguousarray(img[:, :, c]))
                if keep is not None:
                    masked = split_columns(keep) == 0
                    p = split_columns(np.ascontiguousarray(img[:, :, c]))[masked]
                    if p.dtype == np.uint8:
                        i2v = _INTEN2_LUT[p]
                    else:
                        i2v = _inten2(p, p.astype(np.float32), np.empty(p.shape, np.float32))
                    self._den[c][masked] -= i2v
            elif cand[c]:
                # saturation: a max-valued pixel with a max-valued 4-neighbour (circular) is left out of
                # the denominator: put back its sum from before this image
                ys, xs, before = (np.concatenate(v) for v in zip(*cand[c]))
                masked = _flat_max_pixels(ys, _orig_cols(xs, w), h, w)
                self._den[c][ys[masked], xs[masked]] = before[masked]
        self._count += 1

    def window_sums(self, window) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the two running sums inside ``window`` = (y0, y1, x0, x1), in pixel order: float32
        C x h x w arrays (numerator, denominator). The difference of two calls around one :meth:`add` is
        that image's own terms, so that ``fingerprint_from_sums(num - num_i, den - den_i)`` is the
        fingerprint without image ``i`` on the window (leave-one-out, no second pass over the images)."""
        if self._num is None:
            raise SpnRestoreError("fingerprint: no image was added yet, so there are no sums to read")
        y0, y1, x0, x1 = (int(v) for v in window)
        w = self._num[0].shape[1]
        cols = np.arange(x0, x1)
        split = np.where(cols % 2 == 0, cols // 2, (w + 1) // 2 + cols // 2)  # columns in the split layout
        num = np.stack([plane[y0:y1][:, split] for plane in self._num])
        den = np.stack([plane[y0:y1][:, split] for plane in self._den])
        return num, den

    def finalize(self) -> np.ndarray:
        """The fingerprint ``K``: float32 H x W (dimensionless relative gain deviation).

        Gray conversion, :func:`zero_mean_total` and :func:`wiener_dft` of the
        per-channel ML estimate. The accumulator stays usable (more images may
        be added and finalize called again).
        """
        if self._count == 0:
            raise SpnRestoreError("fingerprint: no image was added; give at least one image of the camera")
        weights = GRAY_WEIGHTS if len(self._num) == 3 else (1.0,)
        h, w = self._num[0].shape
        k = np.zeros((h, w), np.float32)
        step = max(1, (1 << 20) // w)
        for r0 in range(0, h, step):  # row chunks: float64 temporaries stay small
            r1 = min(h, r0 + step)
            acc = np.zeros((r1 - r0, w), np.float64)
            for c in range(len(self._num)):
                acc += self._num[c][r0:r1] * weights[c] / (255.0 * (self._den[c][r0:r1] + 1.0))
            k[r0:r1] = acc
        k = merge_columns(k)  # the sums are kept in the split column layout (see add)
        return _finish(k, f"fingerprint of {self._count} image(s) starting with {self._first}")


def fingerprint_from_sums(num: np.ndarray, den: np.ndarray, who: str = "fingerprint") -> np.ndarray:
    """The fingerprint ``K`` (float32 h x w) of running sums in pixel order (C x h x w, numerator and
    denominator of :class:`FingerprintAccumulator`): the arithmetic of :meth:`FingerprintAccumulator.finalize`
    (equal to it bit for bit on the whole image), for the sums of a window or with one image's terms taken
    out (:meth:`FingerprintAccumulator.window_sums`)."""
    num, den = np.asarray(num), np.asarray(den)
    weights = GRAY_WEIGHTS if len(num) == 3 else (1.0,)
    acc = np.zeros(num.shape[1:], np.float64)
    for c in range(len(num)):
        acc += num[c] * weights[c] / (255.0 * (den[c] + 1.0))
    return _finish(acc.astype(np.float32), who)


def central_window(shape, side: int, grid: int = 16) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the central ``side`` x ``side`` window of an image of ``shape`` (smaller where the
    image is), with its corner and sides on the ``grid`` (the JPEG block grid: a crop there compresses to
    the same blocks as the whole image)."""
    h, w = int(shape[0]), int(shape[1])
    sh, sw = (max(grid, min(side, n) // grid * grid) if n >= grid else n for n in (h, w))
    y0, x0 = ((h - sh) // 2) // grid * grid, ((w - sw) // 2) // grid * grid
    return y0, y0 + sh, x0, x0 + sw


def estimate_fingerprint(images: Iterable[np.ndarray], sigma: float = DEFAULT_SIGMA, *, names=None,
                         saturation_compat: str = "standard") -> np.ndarray:
    """Camera fingerprint ``K`` from images of one camera (streamed one at a time).

    Parameters
    ----------
    images : iterable of ndarray
        uint8 H x W x 3 (RGB) or H x W images, all of one size and in sensor
        orientation; a generator is consumed lazily (memory does not grow with N).
    sigma : float
        Wavelet Wiener noise std (grey levels), default 5.
    names : iterable of str, optional
        Names/paths of the images, for error messages.
    saturation_compat : {"standard", "prnu-python"}
        See :func:`saturation`.

    Returns
    -------
    ndarray
        float32 H x W fingerprint (dimensionless).
    """
    acc = FingerprintAccumulator(sigma, saturation_compat=saturation_compat)
    name_iter = iter(names) if names is not None else None
    for i, img in enumerate(images):
        name = next(name_iter, None) if name_iter is not None else None
        acc.add(img, name=name if name is not None else f"image #{i}")
    return acc.finalize()


#: 1/255: the scale of the intensity ``I`` of the term ``I * K`` (float32, as every path that forms it).
INTENSITY_SCALE = np.float32(1.0 / 255.0)


def gray_intensity(rgb) -> np.ndarray:
    """``I = rgb2gray(rgb) / 255`` (float32, a new array) of an image (H x W x 3 or H x W), unchecked: the
    intensity of the term ``I * K`` (:func:`fingerprint_term`)."""
    i = rgb2gray(np.asarray(rgb))
    i *= INTENSITY_SCALE
    return i


def fingerprint_term(K, rgb, *, name=None) -> np.ndarray:
    """The expected PRNU term of a tested image: ``I * K`` with ``I = rgb2gray(rgb) / 255``.

    ``K``: float H x W fingerprint; ``rgb``: uint8 H x W x 3 (or H x W) image
    in sensor orientation, same H x W. Returns float32 H x W (units of K).
    Correlate it with the image's residual (:func:`ncc`, :func:`pce`).
    """
    k = as_float_map(K, "fingerprint")
    a = np.asarray(rgb)
    if a.ndim not in (2, 3):
        raise BadImageError(label(name), f"has shape {a.shape}", "expected H x W x 3 (RGB) or H x W")
    check_same_size(a.shape, k.shape, "image", "fingerprint", name=name)
    i = gray_intensity(a)
    if not np.isfinite(i).all():
        raise BadImageError(label(name), "contains NaN or infinite values")
    i *= k
    return i
