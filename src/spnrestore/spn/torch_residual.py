"""Batched PRNU residuals with torch (GPU or CPU); imported only on demand (needs torch).

Same algorithm as :func:`spnrestore.spn.extract_residual` (4-level db4 with
'symmetric' extension, 3/5/7/9 window Wiener rule, gray weights, zero-mean on
the 2x2 phases, Wiener in the full DFT), float32 throughout, TF32 disabled:

* the DWT is a strided ``conv2d`` per axis on the symmetric-padded planes, the
  inverse a ``conv_transpose2d``;
* box means are ``avg_pool2d`` with ``count_include_pad=True`` (zero padding);
* the Wiener DFT step uses the full ``fft2`` and ``real(ifft2(...))`` exactly
  like the reference (no half-spectrum bookkeeping needed on a GPU).

>>> from spnrestore.spn.torch_residual import extract_residuals
>>> W = extract_residuals(batch_uint8_NxHxWx3, device="cuda")   # N x H x W float32 (torch)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as tf

from spnrestore.errors import BadImageError

from .residual import DEFAULT_SIGMA
from .wavelet_denoise import GRAY_WEIGHTS, LEVELS, WINDOWS, _filter_bank, min_side

__all__ = ["extract_residuals", "TorchResidual"]


def _sym_index(n: int, left: int, right: int, device) -> torch.Tensor:
    """Indices of PyWavelets 'symmetric' (half-sample) extension of a length-n axis."""
    i = np.arange(-left, n + right)
    period = 2 * n
    i = np.mod(i, period)
    i = np.where(i >= n, period - 1 - i, i)
    return torch.as_tensor(i, dtype=torch.long, device=device)


class TorchResidual:
    """Residual extractor bound to a device; reusable across batches of one or more sizes.

    Parameters
    ----------
    device : str or torch.device
        "cuda", "cuda:1", "cpu", ...
    sigma : float
        Wavelet Wiener noise std in grey levels (default 5).
    """

    def __init__(self, device="cpu", sigma: float = DEFAULT_SIGMA, wavelet: str = "db4", levels: int = LEVELS):
        self.device = torch.device(device)
        self.sigma = float(sigma)
        self.levels = levels
        self.min_side = min_side(levels, wavelet)
        dlo, dhi, rlo, rhi = _filter_bank(wavelet)
        self.flen = F = dlo.size
        dev = self.device
        # analysis: correlation with the reversed decomposition filters
        g = torch.tensor(np.stack([dlo[::-1], dhi[::-1]]), dtype=torch.float32, device=dev)  # (2, F)
        self.a_w = g.reshape(2, 1, 1, F)
        self.a_h = g.reshape(2, 1, F, 1)
        r = torch.tensor(np.stack([rlo, rhi]), dtype=torch.float32, device=dev)  # (2, F)
        self.s_w = r.reshape(2, 1, 1, F)  # conv_transpose: (in=2 [lo, hi], out=1, kh, kw)
        self.s_h = r.reshape(2, 1, F, 1)
        self.gray = torch.tensor(GRAY_WEIGHTS, dtype=torch.float32, device=dev).reshape(1, 3, 1, 1)
        self.windows = WINDOWS

    # -- wavelet ----------------------------------------------------------------
    def _ncoef(self, n):
        return (n + self.flen - 1) // 2

    def _analysis(self, x):
        """x: (B, 1, h, w) -> ll (B,1,nr,nc), details (B,3,nr,nc) [LH, HL, HH]."""
        _, _, h, w = x.shape
        nr, nc = self._ncoef(h), self._ncoef(w)
        pad = self.flen - 2
        x = x.index_select(3, _sym_index(w, pad, 2 * nc - w, x.device))
        x = tf.conv2d(x, self.a_w, stride=(1, 2))  # (B, 2, h, nc): [W-lo, W-hi]
        b = x.shape[0]
        x = x.reshape(b * 2, 1, h, nc).index_select(2, _sym_index(h, pad, 2 * nr - h, x.device))
        x = tf.conv2d(x, self.a_h, stride=(2, 1))  # (2B, 2, nr, nc)
        x = x.reshape(b, 4, nr, nc)  # [Wlo Hlo = LL, Wlo Hhi = LH, Whi Hlo = HL, Whi Hhi = HH]
        return x[:, :1], x[:, 1:]

    def _synthesis(self, ll, det, h, w):
        """Inverse of :meth:`_analysis`, output (B, 1, h, w); ``ll`` None = zeros."""
        b, _, nr, nc = det.shape
        F = self.flen
        if ll is None:
            ll = torch.zeros_like(det[:, :1])
        # along H: (LL, LH) -> W-lo ; (HL, HH) -> W-hi
        pairs = torch.cat([ll, det], dim=1).reshape(b * 2, 2, nr, nc)
        y = tf.conv_transpose2d(pairs, self.s_h, stride=(2, 1))[:, :, F - 2 : F - 2 + h]  # (2B, 1, h, nc)
        y = y.reshape(b, 2, h, nc)
        z = tf.conv_transpose2d(y, self.s_w, stride=(1, 2))[:, :, :, F - 2 : F - 2 + w]
        return z

    def _shrink(self, d, s2):
        e = d * d
        mn = None
        for k in self.windows:
            m = tf.avg_pool2d(e, k, stride=1, padding=k // 2, count_include_pad=True)
            mn = m if mn is None else torch.minimum(mn, m)
        return d * (s2 / torch.clamp(mn, min=s2))

    def _wiener_factor(self, e, s2):
        mn = None
        for k in self.windows:
            m = tf.avg_pool2d(e, k, stride=1, padding=k // 2, count_include_pad=True)
            mn = m if mn is None else torch.minimum(mn, m)
        return s2 / torch.clamp(mn, min=s2)

    # -- full residual --------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, images) -> torch.Tensor:
        """N x H x W x 3 (or N x H x W) uint8 array/tensor -> N x H x W float32 tensor on the device."""
        x = torch.as_tensor(images)
        if x.dtype != torch.uint8:
            raise BadImageError("batch", f"has dtype {x.dtype}", "pass uint8 images (N x H x W x 3)")
        if x.ndim == 3:
            x = x.unsqueeze(-1)
        if x.ndim != 4 or x.shape[-1] not in (1, 3):
            raise BadImageError("batch", f"has shape {tuple(x.shape)}", "expected N x H x W x 3 or N x H x W")
        n, h, w, c = x.shape
        if min(h, w) < self.min_side:
            raise BadImageError("batch", f"images are {h}x{w} px", f"each side needs at least {self.min_side} px")
        x = x.to(self.device, non_blocking=True)
        flat = x.reshape(n, -1, c)
        const = (flat == flat[:, :1]).all(dim=1).all(dim=1)
        if bool(const.any()):
            bad = ", ".join(str(i) for i in torch.nonzero(const).flatten().tolist())
            raise BadImageError(f"batch image(s) {bad}", "constant image: no noise residual",
                                "a header-only raw file develops to black: check the source")
        prev = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            # chunks of at most 2**28 input values (1 GiB of float32 planes): convolutions on
            # tensors past 2**31 bytes fall back to much slower kernels
            per = max(1, (1 << 28) // (h * w * c))
            outs = [self._run(x[i : i + per], min(per, n - i), h, w, c) for i in range(0, n, per)]
            return outs[0] if len(outs) == 1 else torch.cat(outs)
        finally:
            torch.backends.cudnn.allow_tf32 = prev

    def _run(self, x, n, h, w, c):
        s2 = self.sigma**2
        planes = x.permute(0, 3, 1, 2).float().reshape(n * c, 1, h, w)
        sizes = [(h, w)]
        bands = []
        cur = planes
        for lev in range(self.levels):
            ll, det = self._analysis(cur)
            det = self._shrink(det, s2)  # (n*c, 3, nr, nc)
            nr, nc = det.shape[-2:]
            det = det.reshape(n, c, 3, nr, nc)
            if c == 3:
                det = (det * self.gray.reshape(1, 3, 1, 1, 1)).sum(dim=1)
            else:
                det = det[:, 0]
            bands.append(det)
            cur = ll
            if lev + 1 < self.levels:
                sizes.append((nr, nc))
        del cur, ll, planes
        rec = None
        for lev in range(self.levels - 1, -1, -1):
            hh, ww = sizes[lev]
            rec = self._synthesis(rec, bands[lev], hh, ww)
            bands[lev] = None
        wres = rec[:, 0]  # (n, h, w)
        wres = self._zero_mean_total(wres)
        std = wres.reshape(n, -1).std(dim=1, unbiased=True)
        if bool((std <= 0).any()) or not bool(torch.isfinite(std).all()):
            raise BadImageError("batch", "an image has no noise residual (flat image?)")
        return self._wiener_dft(wres, std)

    @staticmethod
    def _zero_mean_total(x):
        out = x.clone()
        for a in (0, 1):
            for b in (0, 1):
                v = x[:, a::2, b::2]
                m = v.mean(dim=(1, 2), keepdim=True)
                rm = v.mean(dim=2, keepdim=True)
                cm = v.mean(dim=1, keepdim=True)
                out[:, a::2, b::2] = v - rm - cm + m
        return out

    def _wiener_dft(self, x, std):
        n, h, w = x.shape
        f = torch.fft.fft2(x)
        e = (f.real * f.real + f.imag * f.imag) / (h * w)  # |F|^2 / (H W) = m^2
        s2 = (std * std).reshape(n, 1, 1, 1)
        fac = self._wiener_factor(e.unsqueeze(1), s2)[:, 0]
        return torch.fft.ifft2(f * fac).real.contiguous()


def extract_residuals(images, device="cpu", sigma: float = DEFAULT_SIGMA) -> torch.Tensor:
    """Residuals of a batch: N x H x W x 3 uint8 (numpy or torch) -> N x H x W float32 torch tensor on ``device``.

    Equal to :func:`spnrestore.spn.extract_residual` per image within float32
    rounding (NCC >= 0.999). Use ``.cpu().numpy()`` for numpy arrays.
    """
    return TorchResidual(device, sigma)(images)
