"""Scoring residuals against camera fingerprints with torch (GPU or CPU); imported only on demand (needs torch).

:class:`TorchScorer` holds the fingerprints on a device and gives the rows of
:func:`spnrestore.spn.score_residual` (same PCE and NCC within float32 FFT rounding, same logging of size
mismatches, same quarter turns for turned shots, same order of rows), for one residual (:meth:`~TorchScorer.score`)
or several residuals of one size (:meth:`~TorchScorer.score_batch`).

The PCE is the zero-shift PCE of :mod:`spnrestore.spn.detection`, computed the same way: the residual's half
spectrum ``A`` (DC zeroed) once per residual and quarter turn; per pair the term ``t = (gray(image) / 255) * K``,
its ``rfft2`` ``B`` (DC zeroed), ``P = A * conj(B)`` (complex64, as the numpy path), the energy
``sum C**2 = (1/N) sum_k wx |P_k|**2`` (Parseval, float64) and the 11 x 11 values of ``C`` around zero shift
by a partial inverse DFT (two float64 complex matrix products); ``PCE = sign(peak) peak**2 / mean(C**2 outside
the neighbourhood)``. The NCC sums are float64. The terms of many pairs (all fingerprints of a residual, and
several residuals when memory allows) go through one batched ``torch.fft.rfft2``; the batch is sized from the
free device memory (CUDA) or bounded by ``max_memory`` (CPU: 1 GiB unless told). The device may be shared (the
workflow's score jobs run side by side): a batch that finds the memory full is split in halves and tried
again after torch's cache is emptied, and residuals that cannot be scored even one pair at a time are scored
by the numpy path, with a line in the log; the rows are the same either way.

>>> from spnrestore.spn.torch_scoring import TorchScorer
>>> scorer = TorchScorer(fingerprints, "cuda")                    # fingerprints: {camera: H x W float32}
>>> rows = scorer.score(residual, image, name="IMG_0001.JPG")     # [{fingerprint, pce, ncc}, ...]
>>> table = scorer.score_batch(residuals, images, names)          # one list of rows per residual
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
import torch

from spnrestore.errors import BadImageError, SpnRestoreError

from ._checks import check_same_size
from .detection import _ncc_value
from .fingerprint import INTENSITY_SCALE
from .scoring import score_residual, usable_fingerprints
from .wavelet_denoise import GRAY_WEIGHTS

__all__ = ["TorchScorer", "torch_device_available"]

logger = logging.getLogger(__name__)

#: device bytes per pixel of one pair in a batch (term 4, its spectrum 4 and the FFT's work area, or the
#: spectrum and P in float64 8), with a margin
PAIR_BYTES_PER_PX = 32
#: device bytes per pixel of one residual view (residual 4 + float64 8, spectrum 4, gray 4, image, rotations)
VIEW_BYTES_PER_PX = 40
#: the most pixels of terms in one batched FFT (2**30: 44 pairs at 24 MP; larger batches gain nothing)
MAX_BATCH_PX = 1 << 30
#: the working memory of a CPU scorer unless ``max_memory`` is given
CPU_MEMORY = 1 << 30
#: share of the free CUDA memory (plus torch's cached blocks) a batch may take
CUDA_SHARE = 0.6
#: the float32 constants of the numpy path (rgb2gray's weights, 1 / 255) as Python floats
_GRAY32 = [float(np.float32(g)) for g in GRAY_WEIGHTS]
_SCALE32 = float(INTENSITY_SCALE)


def torch_device_available() -> bool:
    """True when torch sees a CUDA device (the case where :class:`TorchScorer` is worth taking)."""
    return torch.cuda.is_available()


def _turns(shape, k_shape) -> tuple[int, ...]:
    return (0,) if tuple(k_shape) == tuple(shape) else (1, -1)


def _tensor(x, device, dtype, who: str, what: str) -> torch.Tensor:
    """``x`` (numpy array or tensor) on ``device`` as ``dtype`` (None: keep), contiguous."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        a = np.asarray(x)
        if a.dtype.kind not in "biuf":
            raise SpnRestoreError(f"{who}: expected a numeric {what}, got dtype {a.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=device, dtype=dtype or t.dtype).contiguous()


def _upload_fingerprint(camera: str, k, device) -> torch.Tensor:
    t = _tensor(k, device, torch.float32, f"fingerprint {camera!r}", "array")
    if t.ndim != 2:
        raise SpnRestoreError(f"fingerprint {camera!r}: expected a 2-D array (H x W), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise SpnRestoreError(f"fingerprint {camera!r}: contains NaN or infinite values (a corrupt or partly "
                              "written file?); recompute it")
    return t


class _Phases:
    """The partial inverse DFT of one H x W size (float64 complex, on the device): ``ex`` (W//2 + 1) x (2r+1),
    the weighted column phases ``wx e^{2 pi i kx dx / W}``; ``ey`` (2r+1) x H, ``e^{2 pi i ky dy / H}``;
    ``ys``, ``xs`` the distinct circular shifts of the neighbourhood (as :class:`ResidualSpectrum`)."""

    def __init__(self, h: int, w: int, r: int, device):
        half = w // 2 + 1
        wx = np.full(half, 2.0)
        wx[0] = 1.0
        if w % 2 == 0:
            wx[-1] = 1.0
        shifts = np.arange(-r, r + 1, dtype=np.int64)
        # angles from exact integer products modulo the period, as detection.py
        ax = 2 * np.pi * (np.outer(np.arange(half, dtype=np.int64), shifts) % w) / w
        ay = 2 * np.pi * (np.outer(shifts, np.arange(h, dtype=np.int64)) % h) / h
        self.ex = torch.from_numpy(wx[:, None] * np.exp(1j * ax)).to(device)
        self.ey = torch.from_numpy(np.exp(1j * ay)).to(device)
        self.ys = np.unique(shifts % h, return_index=True)[1]
        self.xs = np.unique(shifts % w, return_index=True)[1]


class _View:
    """One residual in one quarter turn: ``x`` (float32), ``x64`` (float64, for the NCC; None without),
    ``spec`` (its rfft2, DC zeroed), ``gray`` (``rgb2gray(image) / 255`` turned alike), ``moments``."""

    def __init__(self, x, gray, moments, with_ncc):
        self.x = x
        self.x64 = x.double().ravel() if with_ncc else None
        self.gray = gray
        self.spec = torch.fft.rfft2(x)
        self.spec[0, 0] = 0
        self.moments = moments


class TorchScorer:
    """Fingerprints on a torch device, to score residuals as :func:`~spnrestore.spn.score_residual` does.

    Parameters
    ----------
    fingerprints : mapping
        camera -> fingerprint ``K`` (H x W float array or tensor); uploaded once as float32. A fingerprint
        that is not 2-D or holds NaN or infinity is an error naming the camera (raised here, not when scoring).
    device : str or torch.device
        ``'cpu'``, ``'cuda'``, ``'cuda:N'`` (:func:`spnrestore.model.device.pick_device` turns ``'auto'`` into one).
    neighborhood : int
        Side of the neighbourhood of the peak excluded from the energy (odd; 11 as the numpy path).
    max_memory : int, optional
        Bytes of working memory a batch may take (estimated; at least one residual and one pair are taken
        whatever the bound); default: 60 % of the free CUDA memory (and torch's cached blocks) at each call
        on a GPU, :data:`CPU_MEMORY` (1 GiB) on CPU.
    """

    def __init__(self, fingerprints: Mapping[str, np.ndarray], device="cpu", *, neighborhood: int = 11,
                 max_memory: int | None = None):
        if neighborhood < 1 or neighborhood % 2 == 0:
            raise ValueError("neighborhood must be an odd positive number of pixels")
        self.device = torch.device(device)
        self.neighborhood = neighborhood
        self.max_memory = max_memory
        with torch.no_grad():
            self.fingerprints = {camera: _upload_fingerprint(camera, k, self.device)
                                 for camera, k in fingerprints.items()}
        self._phases: dict[tuple[int, int], _Phases] = {}
        self._numpy_fingerprints: dict[str, np.ndarray] | None = None
        #: how often a batch was split for want of device memory, and residuals scored by the numpy path
        self.batch_splits = 0
        self.cpu_fallbacks = 0

    def score(self, residual, image, name: str = "residual", *, with_ncc: bool = True) -> list[dict]:
        """Rows ``{fingerprint, pce, ncc}`` of ``residual`` (H x W float) of ``image`` (uint8 RGB or gray,
        H x W (x 3)) against every fingerprint of its size or of the transposed size (a shot turned by the
        camera: both quarter turns, the higher PCE kept), in the order of the fingerprints; a fingerprint
        of another size is logged with ``name`` and left out. ``with_ncc=False``: ``ncc`` is NaN. Inputs may
        be numpy arrays or tensors (on any device). The contract of :func:`~spnrestore.spn.score_residual`."""
        return self.score_batch([residual], [image], [name], with_ncc=with_ncc)[0]

    @torch.no_grad()
    def score_batch(self, residuals: Sequence, images: Sequence, names: Sequence[str] | None = None, *,
                    with_ncc: bool = True) -> list[list[dict]]:
        """:meth:`score` of several residuals of one size (a sequence, or an N x H x W array or tensor) with
        their images (N x H x W (x 3)); one list of rows per residual, in order. The terms of as many pairs
        as memory allows go through one batched FFT. ``names`` default to ``residual 0``, ``residual 1``..."""
        residuals, images = list(residuals), list(images)
        names = [f"residual {i}" for i in range(len(residuals))] if names is None else [str(n) for n in names]
        if not len(residuals) == len(images) == len(names):
            raise SpnRestoreError(f"score_batch: {len(residuals)} residuals, {len(images)} images and "
                                  f"{len(names)} names; give one image and one name per residual")
        if not residuals:
            return []
        shapes = [tuple(np.shape(r)) for r in residuals]
        for shape, name in zip(shapes, names):
            if len(shape) != 2:
                raise SpnRestoreError(f"{name}: expected a 2-D residual (H x W), got shape {shape}")
            if shape != shapes[0]:
                raise SpnRestoreError(f"score_batch: {name} is {shape[1]}x{shape[0]} but {names[0]} is "
                                      f"{shapes[0][1]}x{shapes[0][0]}; score residuals of one size per call")
        shape = shapes[0]
        for name in names:  # each residual's mismatches are logged under its own name
            usable = [camera for camera, _ in usable_fingerprints(self.fingerprints, shape, name)]
        if not usable:
            return [[] for _ in residuals]
        turns = [t for t in (0, 1, -1) if any(t in _turns(shape, self.fingerprints[c].shape) for c in usable)]
        pairs_per_residual = sum(len(_turns(shape, self.fingerprints[c].shape)) for c in usable)
        px = shape[0] * shape[1]
        budget = self._budget()
        per_residual = len(turns) * VIEW_BYTES_PER_PX * px + pairs_per_residual * PAIR_BYTES_PER_PX * px
        most = max(1, MAX_BATCH_PX // px)  # pairs per FFT
        group = max(1, min(budget // per_residual, most // pairs_per_residual))
        if group > 1:
            batch = group * pairs_per_residual
        else:
            batch = max(1, min(most, (budget - len(turns) * VIEW_BYTES_PER_PX * px) // (PAIR_BYTES_PER_PX * px)))
        out = []
        for g0 in range(0, len(residuals), group):
            sl = slice(g0, g0 + group)
            try:
                out += self._score_group(residuals[sl], images[sl], names[sl], usable, turns, batch, with_ncc)
            except torch.OutOfMemoryError:
                self._release()
                out += self._score_on_cpu(residuals[sl], images[sl], names[sl], usable, with_ncc)
        return out

    def _release(self) -> None:
        """Give the memory torch holds in its cache back to the device (other processes may need it)."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _score_on_cpu(self, residuals, images, names, usable, with_ncc) -> list[list[dict]]:
        """The rows of :func:`~spnrestore.spn.score_residual` (the numpy path) against the ``usable`` fingerprints
        (the others' mismatch is logged already), for residuals the device had no memory left for."""
        if self._numpy_fingerprints is None:
            self._numpy_fingerprints = {c: k.cpu().numpy() for c, k in self.fingerprints.items()}
        prints = {c: k for c, k in self._numpy_fingerprints.items() if c in usable}
        out = []
        for residual, image, name in zip(residuals, images, names):
            logger.warning(f"{name}: the {self.device} had no memory left for it (shared with other jobs?); scored "
                           "on the CPU")
            as_array = [x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in (residual, image)]
            out.append(score_residual(*as_array, prints, name, with_ncc=with_ncc))
            self.cpu_fallbacks += 1
        return out

    def _parts_in_halves(self, views, pairs, with_ncc) -> np.ndarray:
        """:meth:`_parts` of ``pairs``, split in halves (again and again, down to one pair) while the device
        has no memory for them; torch's out-of-memory error when even one pair does not fit."""
        try:
            return self._parts(views, pairs, with_ncc).cpu().numpy()
        except torch.OutOfMemoryError:
            if len(pairs) == 1:
                raise
        self._release()
        self.batch_splits += 1
        half = len(pairs) // 2
        return np.concatenate([self._parts_in_halves(views, pairs[:half], with_ncc),
                               self._parts_in_halves(views, pairs[half:], with_ncc)])

    def _budget(self) -> int:
        if self.max_memory is not None:
            return int(self.max_memory)
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
            return int(CUDA_SHARE * (free + cached))
        return CPU_MEMORY

    def _phases_of(self, h: int, w: int) -> _Phases:
        if (h, w) not in self._phases:
            self._phases[(h, w)] = _Phases(h, w, self.neighborhood // 2, self.device)
        return self._phases[(h, w)]

    def _score_group(self, residuals, images, names, usable, turns, batch, with_ncc) -> list[list[dict]]:
        """Rows of a few residuals: their views (residual and quarter turn), then the pairs (view,
        fingerprint) in batches of ``batch``; per residual and fingerprint the turn of higher PCE."""
        views, turned, pairs = [], [], []  # pairs: (view index, residual index, camera)
        for i, (residual, image, name) in enumerate(zip(residuals, images, names)):
            x, gray = self._upload(residual, image, name)
            moments = None
            if with_ncc:
                x64 = x.double().ravel()
                moments = torch.stack([x64.sum(), torch.dot(x64, x64)])
                del x64
            for turn in turns:
                v = len(views)
                turned.append(turn != 0)
                views.append(_View(torch.rot90(x, turn).contiguous() if turn else x,
                                   torch.rot90(gray, turn).contiguous() if turn else gray, moments, with_ncc))
                pairs += [(v, i, c) for c in usable if turn in _turns(x.shape, self.fingerprints[c].shape)]
        best: dict = {}
        upright = [p for p in pairs if not turned[p[0]]]  # one size per batch: upright views, then turned ones
        turned_pairs = [p for p in pairs if turned[p[0]]]
        chunks = [part[p0 : p0 + batch] for part in (upright, turned_pairs) for p0 in range(0, len(part), batch)]
        for chunk in chunks:
            parts = self._parts_in_halves(views, [(v, c) for v, _, c in chunk], with_ncc)
            moments = torch.stack([views[v].moments for v, _, _ in chunk]).cpu().numpy() if with_ncc else None
            for j, (v, i, camera) in enumerate(chunk):
                value, correlation = self._finish(parts[j], moments[j] if with_ncc else None,
                                                  views[v].x.shape, with_ncc, f"{names[i]} against {camera!r}")
                if (i, camera) not in best or value > best[(i, camera)][0]:
                    best[(i, camera)] = (value, correlation)
        return [[{"fingerprint": c, "pce": best[(i, c)][0], "ncc": best[(i, c)][1]} for c in usable]
                for i in range(len(residuals))]

    def _upload(self, residual, image, name) -> tuple[torch.Tensor, torch.Tensor]:
        """The residual (float32, finite) and ``rgb2gray(image) / 255`` (float32) on the device, with the
        checks of the numpy path."""
        x = _tensor(residual, self.device, torch.float32, name, "residual")
        if not bool(torch.isfinite(x).all()):
            raise SpnRestoreError(f"{name}: the residual contains NaN or infinite values (a corrupt or partly "
                                  "written file?); recompute it")
        img = _tensor(image, self.device, None, name, "image")
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[:, :, 0]
        if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
            raise BadImageError(f"{name} (image)", f"has shape {tuple(img.shape)}",
                                "expected H x W x 3 (RGB) or H x W")
        check_same_size(tuple(img.shape), tuple(x.shape), "image", "residual", name=name)
        if img.ndim == 3:
            f = img.float()
            g = _GRAY32
            gray = f[:, :, 0] * g[0] + f[:, :, 1] * g[1] + f[:, :, 2] * g[2]
        else:
            gray = img.float()
        if img.is_floating_point() and not bool(torch.isfinite(gray).all()):
            raise BadImageError(f"{name} (image)", "contains NaN or infinite values")
        return x, (gray * _SCALE32).contiguous()  # a new tensor: a float32 gray input may share the caller's memory

    def _parts(self, views, pairs, with_ncc) -> torch.Tensor:
        """Per pair (view index, camera), all of one size, float64: ``[energy, C[dy, dx] (11 x 11, dy, dx =
        -r..r), sum t, sum t**2, sum x t]`` (energy and C divided by N; the sums 0 without NCC)."""
        h, w = views[pairs[0][0]].x.shape
        ph = self._phases_of(h, w)
        n = len(pairs)
        t = torch.empty((n, h, w), dtype=torch.float32, device=self.device)
        sums = torch.zeros((n, 3), dtype=torch.float64, device=self.device)
        for j, (v, camera) in enumerate(pairs):
            torch.mul(views[v].gray, self.fingerprints[camera], out=t[j])
            if with_ncc:
                t64 = t[j].double().ravel()
                sums[j] = torch.stack([t64.sum(), torch.dot(t64, t64), torch.dot(views[v].x64, t64)])
                del t64
        f = torch.fft.rfft2(t)
        del t
        f[:, 0, 0] = 0
        f.imag.neg_()  # conj(B)
        start = 0
        for j in range(1, n + 1):  # P = A conj(B), the pairs of one view are consecutive
            if j == n or pairs[j][0] != pairs[start][0]:
                f[start:j] *= views[pairs[start][0]].spec
                start = j
        p = torch.view_as_real(f).double()  # (n, h, half, 2) float64
        del f
        # Parseval, weights wx: 2 sum |P|**2 less the columns of weight 1 (no float64 |P|**2 plane)
        energy = 2 * torch.linalg.vector_norm(p, dim=(1, 2, 3)).square()
        energy -= torch.linalg.vector_norm(p[:, :, 0], dim=(1, 2)).square()
        if w % 2 == 0:
            energy -= torch.linalg.vector_norm(p[:, :, -1], dim=(1, 2)).square()
        energy /= h * w
        c = (ph.ey @ (torch.view_as_complex(p) @ ph.ex)).real / (h * w)  # (n, 2r+1, 2r+1): C[dy, dx]
        return torch.cat([energy[:, None], c.reshape(n, -1), sums], dim=1)

    def _finish(self, part, moments, shape, with_ncc, name) -> tuple[float, float]:
        """(PCE, NCC or NaN) from :meth:`_parts`' row of one pair: the rule of ``detection._finish``."""
        h, w = shape
        side = self.neighborhood
        r = side // 2
        ph = self._phases_of(h, w)
        total, c, (sy, syy, sxy) = part[0], part[1 : 1 + side * side].reshape(side, side), part[1 + side * side :]
        peak = float(c[r, r])
        nb = c[np.ix_(ph.ys, ph.xs)]
        if not (np.isfinite(total) and np.isfinite(peak)) or (with_ncc and not np.isfinite(sy + syy + sxy)):
            raise SpnRestoreError(f"{name}: the scores are not finite (NaN or infinite values in the inputs?); "
                                  "recompute the residual and the fingerprint")
        n_px = h * w
        energy = max(total - float((nb * nb).sum()), 0.0) / (n_px - nb.size)
        if not energy > 0:
            raise SpnRestoreError(f"{name}: the cross-correlation is zero (constant input?)")
        value = float(np.sign(peak) * peak * peak / energy)
        if not with_ncc:
            return value, float("nan")
        return value, _ncc_value(float(moments[0]), float(moments[1]), float(sy), float(syy), float(sxy), n_px, name)
