"""Fast wavelet denoising of one image: the per-channel noise residual.

This is the ``NoiseExtract`` step of the Binghamton/Politecnico PRNU pipeline
(Lukas, Fridrich, Goljan 2006; prnu-python's ``noise_extract``), computed with
OpenCV float32 filters instead of PyWavelets:

1. 4-level 2-D discrete wavelet transform with the 8-tap Daubechies filter
   (``db4`` in PyWavelets) and PyWavelets' ``'symmetric'`` (half-sample mirror)
   extension, with exactly PyWavelets' coefficient layout (a level of length
   ``N`` gives ``(N + 7) // 2`` coefficients).
2. In every detail subband of every level: ``x *= s2 / (v + s2)`` where
   ``v = min over w in (3, 5, 7, 9) of max(0, boxmean_w(x**2) - s2)`` with zero
   padding outside the subband, i.e. ``x *= s2 / max(s2, min_w boxmean_w(x**2))``.
3. Approximation band of the coarsest level set to zero; inverse transform
   (PyWavelets' ``waverec2`` trimming); crop to the image size.

How it is fast (all float32, one thread):

* The DWT is done in polyphase form: each 8-tap decimating filter is two 4-tap
  filters on the even and odd samples (``cv2.filter2D`` with anchor 0, i.e. a
  "valid" correlation); even/odd rows are strided row views (free), even/odd
  columns of a channel are read with ``cv2.extractChannel`` from the
  interleaved RGB rows seen as ``W/2`` pixels of 6 values. The symmetric
  extension is one ``cv2.copyMakeBorder(BORDER_REFLECT)`` of the image (the
  coarser levels are written straight into pre-padded buffers). The inverse
  transform is polyphase too: even and odd output rows are written into
  strided row views of the output, even and odd columns interleaved with
  ``cv2.merge``.
* Everything runs in strips of rows (about 2**17 elements of work each) so
  temporaries stay in cache and no large temporary is page-faulted per call;
  the analysis of a strip recomputes the 4-row halo the window rule needs and
  shrinks the detail bands right away.
* The 4-window rule uses ``cv2.sepFilter2D`` with 1/w kernels and
  ``BORDER_CONSTANT`` (zero padding), ``cv2.min`` and one ``cv2.divide``.
* For the gray residual the three shrunk channels are combined with the gray
  weights *in the wavelet domain* and inverted once: the inverse DWT, the crop
  and the gray conversion are linear, so ``gray(IDWT(c_R), IDWT(c_G),
  IDWT(c_B)) == IDWT(gray(c_R, c_G, c_B))`` (up to float rounding).

Everything here is a private helper of :mod:`spnrestore.spn.residual`; the
public entry points are :func:`spnrestore.spn.noise_rgb` and
:func:`spnrestore.spn.extract_residual`.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

#: Number of wavelet decomposition levels of the standard algorithm.
LEVELS = 4
#: PyWavelets name of the 8-tap Daubechies filter (Binghamton's ``Daubechies, 8``).
WAVELET = "db4"
#: Window sizes of the adaptive Wiener rule (square windows, zero padding).
WINDOWS = (3, 5, 7, 9)
#: Gray weights for R, G, B (Binghamton ``rgb2gray1`` / prnu-python ``rgb2gray``).
GRAY_WEIGHTS = (0.29893602, 0.58704307, 0.11402090)

# PyWavelets' db4 filter bank (dec_lo, dec_hi, rec_lo, rec_hi), embedded so the fast path
# does not need PyWavelets at run time (a test checks these against pywt.Wavelet('db4')).
_DB4_DEC_LO = (
    -0.010597401785069032, 0.0328830116668852, 0.030841381835560764, -0.18703481171909309,
    -0.027983769416859854, 0.6308807679298589, 0.7148465705529157, 0.2303778133088965,
)


def _filter_bank(name: str):
    """(dec_lo, dec_hi, rec_lo, rec_hi) as float64 arrays; db4 built in, others from PyWavelets."""
    if name == "db4":
        lo = np.asarray(_DB4_DEC_LO)
        k = np.arange(lo.size)
        hi = (-1.0) ** (k + 1) * lo[::-1]  # quadrature mirror: dec_hi[k] = (-1)^(k+1) dec_lo[F-1-k]
        return lo, hi, lo[::-1].copy(), hi[::-1].copy()
    import pywt

    w = pywt.Wavelet(name)
    if not w.orthogonal or w.dec_len % 2:
        raise ValueError(f"wavelet {name!r}: only orthogonal wavelets with an even filter length are supported")
    return tuple(np.asarray(v, np.float64) for v in (w.dec_lo, w.dec_hi, w.rec_lo, w.rec_hi))


def min_side(levels: int = LEVELS, wavelet: str = WAVELET) -> int:
    """Smallest image side (pixels) accepted: ``2**levels * filter_length``.

    For the standard 4-level ``db4`` (8 taps) this is ``16 * 8 = 128``: the
    coarsest level then still has at least as many coefficients as the filter
    has taps (PyWavelets' ``dwt_max_level`` would allow 4 levels from 112 px,
    where every coarse coefficient is dominated by the mirrored border).
    """
    return (2**levels) * len(_filter_bank(wavelet)[0])


class _Filters:
    """Polyphase kernels (as cv2 column kernels, anchor 0) of one orthogonal wavelet."""

    def __init__(self, name: str):
        dlo, dhi, rlo, rhi = _filter_bank(name)
        self.name = name
        self.flen = F = dlo.size
        self.half = M = F // 2

        def col(values):
            return np.asarray(values, np.float64).astype(np.float32).reshape(-1, 1)

        # analysis: c[o] = sum_k g[k] p[2o + k], g = reversed dec filter, p padded by F-2 on the left
        #   = sum_m g[2m] p_even[o + m] + g[2m + 1] p_odd[o + m]
        glo, ghi = dlo[::-1], dhi[::-1]
        self.a_lo = (col(glo[0::2]), col(glo[1::2]))
        self.a_hi = (col(ghi[0::2]), col(ghi[1::2]))
        # synthesis: y[2q] = sum_s rec[2(M-1-s)] c[q+s], y[2q+1] = sum_s rec[2(M-1-s)+1] c[q+s]
        idx = 2 * (M - 1 - np.arange(M))
        self.s_lo = (col(rlo[idx]), col(rlo[idx + 1]))
        self.s_hi = (col(rhi[idx]), col(rhi[idx + 1]))
        # the same filters as 2 x F matrices for the row (vertical) direction done as small matrix
        # products (see _rows_analysis_gemm / _rows_synthesis_gemm)
        self.m_an = np.stack([glo, ghi]).astype(np.float32)
        zs = np.empty((2, F))
        zs[0, 0::2], zs[0, 1::2] = rlo[idx], rhi[idx]  # even output rows: lo, hi rows interleaved
        zs[1, 0::2], zs[1, 1::2] = rlo[idx + 1], rhi[idx + 1]  # odd output rows
        self.m_syn = zs.astype(np.float32)

    def ncoef(self, n: int) -> int:
        """Coefficients per level for a signal of length n (PyWavelets, any mode but periodization)."""
        return (n + self.flen - 1) // 2


@lru_cache(maxsize=8)
def filters(name: str = WAVELET) -> _Filters:
    return _Filters(name)


_ANCHOR = (0, 0)
_CONST = cv2.BORDER_CONSTANT
#: Target number of float32 elements of one strip of work (keeps temporaries in cache
#: and avoids page-faulting large temporaries on every call).
STRIP_ELEMS = 1 << 17
#: Output rows per strip of the analysis (each strip recomputes 2 x 4 halo rows).
_ANALYSIS_ROWS = 64


def _strip_rows(width: int, minimum: int = 16) -> int:
    return max(minimum, STRIP_ELEMS // max(1, width))


def _corr_rows(src, kernel, dst=None):
    """dst[i] = sum_m kernel[m] * src[i + m] along rows (valid for i <= len - M), float32."""
    return cv2.filter2D(src, cv2.CV_32F, kernel, dst=dst, anchor=_ANCHOR, borderType=_CONST)


def _rows_analysis_gemm(src: np.ndarray, k: int, f: _Filters):
    """Decimating lo/hi filters along rows as ``k`` (2 x F) @ (F x n) products: output row ``i`` of
    the low band is ``sum_t glo[t] * src[2i + t]`` (the same sums as the polyphase ``_corr_rows``
    pair, in another order). ``src``: float32 rows (unit column stride), at least ``2k + F - 2``.
    Returns (low, high): k x n views (every other row of one new array)."""
    n = src.shape[1]
    rs = src.strides[0]
    x = np.lib.stride_tricks.as_strided(src, (k, f.flen, n), (2 * rs, rs, 4), writeable=False)
    o = np.empty((k, 2, n), np.float32)
    np.matmul(f.m_an, x, out=o)
    o = o.reshape(2 * k, n)
    return o[0::2], o[1::2]


def _corr_cols(src, kernel, dst=None):
    """Same as :func:`_corr_rows` along columns."""
    return cv2.filter2D(src, cv2.CV_32F, kernel.T, dst=dst, anchor=_ANCHOR, borderType=_CONST)


@lru_cache(maxsize=8)
def _box_kernels(windows):
    return [np.full(w, 1.0 / w, np.float32) for w in windows]


def _min_boxmean(e: np.ndarray, windows) -> np.ndarray:
    """min over w of the zero-padded w x w box mean of ``e`` (float32, new array).

    ``cv2.sepFilter2D`` with a 1/w kernel per axis: same result as
    ``cv2.boxFilter(normalize=True)`` within float rounding, and faster for
    float32 (OpenCV's float box filter has a slow horizontal pass).
    """
    kern = _box_kernels(tuple(windows))
    mn = cv2.sepFilter2D(e, -1, kern[0], kern[0], borderType=_CONST)
    if len(kern) > 1:
        tmp = np.empty_like(mn)
        for k in kern[1:]:
            cv2.sepFilter2D(e, -1, k, k, dst=tmp, borderType=_CONST)
            cv2.min(mn, tmp, dst=mn)
    return mn


def min_box_factor(e: np.ndarray, s2: float, windows=WINDOWS, out: np.ndarray | None = None) -> np.ndarray:
    """``s2 / max(s2, min_w boxmean_w(e))`` with zero padding outside ``e`` (float32 2-D).

    This is the adaptive Wiener gain ``s2 / (v + s2)`` with ``v = min_w max(0,
    boxmean_w(e) - s2)``. Computed in row strips (with a halo of
    ``max(windows)//2`` rows), so temporaries stay small.
    """
    n, m = e.shape
    r = max(windows) // 2
    if out is None:
        out = np.empty((n, m), np.float32)
    step = _strip_rows(m, 4 * r)
    s2 = np.float32(s2)
    for y0 in range(0, n, step):
        y1 = min(n, y0 + step)
        a, b = max(0, y0 - r), min(n, y1 + r)
        mn = _min_boxmean(e[a:b], windows)
        sl = mn[y0 - a : y0 - a + (y1 - y0)]
        np.maximum(sl, s2, out=sl)
        np.divide(s2, sl, out=out[y0:y1])
    return out


def _shrink_into(band: np.ndarray, lo: int, hi: int, s2: float, windows, scale: float, dst: np.ndarray, add: bool):
    """Shrink rows [lo, hi) of ``band`` (the strip holds the halo rows) into ``dst``.

    ``dst = scale * x * s2 / max(s2, min_w boxmean_w(x**2))`` (``+=`` if ``add``).
    """
    e = cv2.multiply(band, band)
    mn = _min_boxmean(e, windows)
    mn = mn[lo:hi]
    cv2.max(mn, float(s2), dst=mn)
    if add:
        t = cv2.divide(band[lo:hi], mn, scale=float(s2) * scale)
        cv2.add(dst, t, dst=dst)
    else:
        cv2.divide(band[lo:hi], mn, dst=dst, scale=float(s2) * scale)


def _reflect_fill(buf: np.ndarray, top: int, left: int, h: int, w: int) -> None:
    """Fill the borders of ``buf`` around the interior ``buf[top:top+h, left:left+w]`` by
    half-sample symmetric extension (PyWavelets 'symmetric' = cv2 BORDER_REFLECT)."""
    bottom = buf.shape[0] - top - h
    right = buf.shape[1] - left - w
    core = buf[top : top + h]
    if left:
        core[:, :left] = core[:, left : 2 * left][:, ::-1]
    if right:
        core[:, left + w :] = core[:, left + w - right : left + w][:, ::-1]
    if top:
        buf[:top] = buf[top : 2 * top][::-1]
    if bottom:
        buf[top + h :] = buf[top + h - bottom : top + h][::-1]


def _padded_shape(h: int, w: int, f: _Filters):
    nr, nc = f.ncoef(h), f.ncoef(w)
    pad = f.flen - 2
    return (pad + h + 2 * nr - h, pad + w + 2 * nc - w), pad


def _analysis_shrink(p: np.ndarray, h: int, w: int, f: _Filters, s2: float, windows, scale: float,
                     dst_bands, add: bool, ll_out: np.ndarray | None, channel: int = 0, gemm: bool = False):
    """One DWT level of channel ``channel`` of a padded image ``p`` (uint8 or float32,
    H' x W' or H' x W' x C, padded as :func:`_padded_shape` says).

    Writes the shrunk detail bands (times ``scale``) into ``dst_bands`` (three
    float32 arrays ``ncoef(h) x ncoef(w)``; ``+=`` if ``add``) and the
    approximation into ``ll_out`` (a ``ncoef(h) x ncoef(w)`` view, or None).
    Works in strips of output rows; each strip recomputes the 4-row halo its
    window filters need.
    """
    nr, nc = f.ncoef(h), f.ncoef(w)
    r = max(windows) // 2
    F = f.flen
    nch = p.shape[2] if p.ndim == 3 else 1
    step = max(_ANALYSIS_ROWS, _strip_rows(2 * p.shape[1], 16))
    for o0 in range(0, nr, step):
        o1 = min(nr, o0 + step)
        a, b = max(0, o0 - r), min(nr, o1 + r)
        rows = p[2 * a : 2 * b + F - 2]
        # even / odd columns of the channel: the row seen as W'/2 pixels of 2*C interleaved values
        r2 = rows.reshape(rows.shape[0], rows.shape[1] // 2, 2 * nch)
        pe, po = cv2.extractChannel(r2, channel), cv2.extractChannel(r2, nch + channel)
        if pe.dtype != np.float32:
            pe, po = pe.astype(np.float32), po.astype(np.float32)
        lo = _corr_cols(pe, f.a_lo[0])
        cv2.add(lo, _corr_cols(po, f.a_lo[1]), dst=lo)
        hi = _corr_cols(pe, f.a_hi[0])
        cv2.add(hi, _corr_cols(po, f.a_hi[1]), dst=hi)
        lo, hi = lo[:, :nc], hi[:, :nc]
        k = b - a
        out = []
        for src in (lo, hi):
            if gemm:
                out.extend(_rows_analysis_gemm(src, k, f))
                continue
            ev, od = src[0::2], src[1::2]
            for ke, ko in (f.a_lo, f.a_hi):
                c = _corr_rows(ev, ke)
                cv2.add(c, _corr_rows(od, ko), dst=c)
                out.append(c[:k])
        ll, lh, hl, hh = out
        if ll_out is not None:
            ll_out[o0:o1] = ll[o0 - a : o1 - a]
        for band, dst in zip((lh, hl, hh), dst_bands):
            _shrink_into(band, o0 - a, o1 - a, s2, windows, scale, dst[o0:o1], add)


def _synthesis(ll, bands, f: _Filters, h: int, w: int, out: np.ndarray | None = None,
               split_cols: bool = False, gemm: bool = False) -> np.ndarray:
    """Inverse 2-D DWT level -> float32 ``h x w`` (``ll`` None = zero approximation).

    ``split_cols``: write each output row as its even columns followed by its odd columns
    (``[y[0], y[2], ..., y[1], y[3], ...]``) instead of interleaved, which saves the column
    interleave pass (see :func:`split_columns`).
    """
    lh, hl, hh = bands  # lh: horizontal low / vertical high; hl: horizontal high / vertical low
    n = lh.shape[0]
    M = f.half
    if out is None:
        out = np.empty((h, w), np.float32)
    q_total = (h + 1) // 2
    qc = (w + 1) // 2
    step = _strip_rows(w, 8)
    if gemm:
        return _synthesis_gemm(ll, bands, f, h, w, out, split_cols, step)
    for q0 in range(0, q_total, step):
        q1 = min(q_total, q0 + step)
        c0, c1 = q0, min(n, q1 + M - 1)
        lo_v = _synth_cols_strip(None if ll is None else ll[c0:c1], hl[c0:c1], f, qc, split_cols)
        hi_v = _synth_cols_strip(lh[c0:c1], hh[c0:c1], f, qc, split_cols)
        lo_v, hi_v = lo_v[:, :w], hi_v[:, :w]
        ev = out[2 * q0 : 2 * q1 : 2]
        od = out[2 * q0 + 1 : 2 * q1 : 2]
        t = _corr_rows(hi_v, f.s_hi[0])
        cv2.add(t[: ev.shape[0]], _corr_rows(lo_v, f.s_lo[0])[: ev.shape[0]], dst=ev)
        if od.shape[0]:
            t = _corr_rows(hi_v, f.s_hi[1])
            cv2.add(t[: od.shape[0]], _corr_rows(lo_v, f.s_lo[1])[: od.shape[0]], dst=od)
    return out


def _synthesis_gemm(ll, bands, f: _Filters, h: int, w: int, out: np.ndarray, split_cols: bool, step: int):
    """:func:`_synthesis` with the row direction as (2 x F) @ (F x w) products (see _Filters.m_syn):
    the column-inverted low and high rows are stored interleaved (low row j, high row j, ...), so
    output rows 2q and 2q + 1 are one product of 8 consecutive stored rows, written in place."""
    lh, hl, hh = bands
    n = lh.shape[0]
    M = f.half
    q_total = (h + 1) // 2
    qc = (w + 1) // 2
    for q0 in range(0, q_total, step):
        q1 = min(q_total, q0 + step)
        c0, c1 = q0, min(n, q1 + M - 1)
        nr = c1 - c0
        z = np.empty((2 * (q1 - q0 + M - 1), 2 * qc), np.float32)
        z[2 * nr :] = 0  # rows past the bands: zero, as the zero border of _corr_rows
        _synth_cols_strip(None if ll is None else ll[c0:c1], hl[c0:c1], f, qc, split_cols, dst=z[0 : 2 * nr : 2])
        _synth_cols_strip(lh[c0:c1], hh[c0:c1], f, qc, split_cols, dst=z[1 : 2 * nr : 2])
        rs = z.strides[0]
        nq = q1 - q0
        full = nq if 2 * q1 <= h else nq - 1  # an odd height ends with an even row alone
        if full:
            x = np.lib.stride_tricks.as_strided(z, (full, f.flen, w), (2 * rs, rs, 4), writeable=False)
            np.matmul(f.m_syn, x, out=out[2 * q0 : 2 * (q0 + full)].reshape(full, 2, w))
        if full < nq:
            np.matmul(f.m_syn[:1], z[2 * full : 2 * full + f.flen, :w], out=out[2 * (q0 + full) : 2 * (q0 + full) + 1])
    return out


def _synth_cols_strip(a, d, f: _Filters, q: int, split_cols: bool = False, dst=None) -> np.ndarray:
    """Inverse 1-D DWT along columns: (rows x 2q) float32, even/odd columns interleaved
    (``split_cols``: the q even columns, then the q odd columns); written into ``dst`` if given."""
    even = _corr_cols(d, f.s_hi[0])
    odd = _corr_cols(d, f.s_hi[1])
    if split_cols:
        res = np.empty((d.shape[0], 2 * q), np.float32) if dst is None else dst
        if a is None:
            res[:, :q] = even[:, :q]
            res[:, q:] = odd[:, :q]
        else:  # the last add writes straight into the halves: no interleave pass
            cv2.add(even[:, :q], _corr_cols(a, f.s_lo[0])[:, :q], dst=res[:, :q])
            cv2.add(odd[:, :q], _corr_cols(a, f.s_lo[1])[:, :q], dst=res[:, q:])
        return res
    if a is not None:
        cv2.add(even, _corr_cols(a, f.s_lo[0]), dst=even)
        cv2.add(odd, _corr_cols(a, f.s_lo[1]), dst=odd)
    if dst is not None:
        res = dst.reshape(d.shape[0], q, 2)
        cv2.merge([even[:, :q], odd[:, :q]], dst=res)
        return dst
    res = np.empty((d.shape[0], q, 2), np.float32)
    cv2.merge([even[:, :q], odd[:, :q]], dst=res)
    return res.reshape(d.shape[0], 2 * q)


def split_columns(x: np.ndarray) -> np.ndarray:
    """``x`` (H x W, or H x W x C: each channel) with every row reordered as its even columns, then
    its odd columns: the layout of ``split_cols=True`` (a new contiguous array)."""
    qe = (x.shape[1] + 1) // 2
    out = np.empty(x.shape, x.dtype)
    out[:, :qe] = x[:, 0::2]
    out[:, qe:] = x[:, 1::2]
    return out


def merge_columns(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_columns` (a new contiguous array)."""
    qe = (x.shape[1] + 1) // 2
    out = np.empty(x.shape, x.dtype)
    out[:, 0::2] = x[:, :qe]
    out[:, 1::2] = x[:, qe:]
    return out


def _level_sizes(shape, f: _Filters, levels: int):
    """Sizes of the input of every level: [(H, W), (h1, w1), ...] (``levels`` entries)."""
    sizes = [tuple(shape)]
    for _ in range(levels - 1):
        h, w = sizes[-1]
        sizes.append((f.ncoef(h), f.ncoef(w)))
    return sizes


def _buf(ws: dict | None, key, shape) -> np.ndarray:
    """A float32 scratch array; reused from the workspace dict ``ws`` when given (no new page faults)."""
    if ws is None:
        return np.empty(shape, np.float32)
    a = ws.get(key)
    if a is None or a.shape != tuple(shape):
        a = ws[key] = np.empty(shape, np.float32)
    return a


def denoise_planes(planes, sigma: float, weights=None, levels: int = LEVELS, wavelet: str = WAVELET,
                   windows=WINDOWS, out=None, workspace: dict | None = None) -> list[np.ndarray]:
    """Wavelet noise residual of 2-D planes (uint8 or float32), all of the same shape.

    If ``weights`` is None: one float32 residual per plane (the per-channel
    residual; ``out`` may be a list of destination arrays). Otherwise a single
    float32 residual ``sum_c weights[c] * residual_c``, computed with one
    inverse transform (see module docstring). ``workspace``: a dict kept by the
    caller between calls to reuse the large buffers (the results then live in
    it and are overwritten by the next call).
    """
    f = filters(wavelet)
    pad_args = _pad_args(planes[0].shape, f)
    sources = [(cv2.copyMakeBorder(np.ascontiguousarray(p), *pad_args, cv2.BORDER_REFLECT), 0) for p in planes]
    return _denoise(sources, planes[0].shape, sigma, weights, levels, f, windows, out, workspace)


def denoise_image(img: np.ndarray, sigma: float, weights=None, levels: int = LEVELS, wavelet: str = WAVELET,
                  windows=WINDOWS, out=None, workspace: dict | None = None,
                  split_cols: bool = False, gemm: bool = False) -> list[np.ndarray]:
    """Like :func:`denoise_planes` for an H x W x C (interleaved) or H x W image.

    The image is padded once; each channel's even/odd columns are read straight
    from the interleaved rows (no channel split). ``split_cols``: the residuals
    come back with every row as its even columns then its odd columns (see
    :func:`split_columns`; saves the last column interleave).
    """
    f = filters(wavelet)
    img = np.ascontiguousarray(img)
    shape = img.shape[:2]
    pad = _pad_args(shape, f)
    if workspace is None:
        p = cv2.copyMakeBorder(img, *pad, cv2.BORDER_REFLECT)
    else:  # pad into a reused buffer (a new 24 MP padded image costs page faults on every call)
        ph, pw = shape[0] + pad[0] + pad[1], shape[1] + pad[2] + pad[3]
        key = ("padded", img.dtype.str, img.shape[2:])
        p = workspace.get(key)
        if p is None or p.shape[:2] != (ph, pw):
            p = workspace[key] = np.empty((ph, pw) + img.shape[2:], img.dtype)
        cv2.copyMakeBorder(img, *pad, cv2.BORDER_REFLECT, dst=p)
    nch = img.shape[2] if img.ndim == 3 else 1
    if p.ndim == 2 and nch == 1 and img.ndim == 3:
        p = p[:, :, None]
    return _denoise([(p, c) for c in range(nch)], shape, sigma, weights, levels, f, windows, out, workspace,
                   split_cols, gemm)


def _pad_args(shape, f: _Filters):
    h, w = shape
    (ph, pw), pad = _padded_shape(h, w, f)
    return pad, ph - pad - h, pad, pw - pad - w


def _denoise(sources, shape, sigma, weights, levels, f: _Filters, windows, out, ws=None, split_cols=False,
             gemm=False):
    s2 = float(sigma) ** 2
    shape = tuple(shape[:2])
    sizes = _level_sizes(shape, f, levels)
    combine = weights is not None
    nsets = 1 if combine else len(sources)
    coef = [f.ncoef(h) for h, _ in sizes], [f.ncoef(w) for _, w in sizes]
    acc = [[[_buf(ws, ("band", si, lv, j), (coef[0][lv], coef[1][lv])) for j in range(3)] for lv in range(levels)]
           for si in range(nsets)]
    for ci, (p, channel) in enumerate(sources):
        bands = acc[0] if combine else acc[ci]
        scale = float(weights[ci]) if combine else 1.0
        add = combine and ci > 0
        for lev in range(levels):
            h, w = sizes[lev]
            if lev + 1 < levels:
                nh, nw = sizes[lev + 1]
                (qh, qw), qpad = _padded_shape(nh, nw, f)
                nxt = _buf(ws, ("ll", lev), (qh, qw))
                ll_view = nxt[qpad : qpad + nh, qpad : qpad + nw]
            else:
                nxt = ll_view = None
            _analysis_shrink(p, h, w, f, s2, windows, scale, bands[lev], add, ll_view, channel, gemm)
            if nxt is not None:
                _reflect_fill(nxt, qpad, qpad, nh, nw)
            p, channel = nxt, 0
    outs = []
    for si in range(nsets):
        rec = None
        for lev in range(levels - 1, -1, -1):
            h, w = sizes[lev]
            dst = None
            if lev == 0:
                dst = out[si] if out is not None else (None if ws is None else _buf(ws, ("out", si), (h, w)))
            if gemm and dst is None:
                dst = np.empty((h, w), np.float32)
            rec = _synthesis(rec, acc[si][lev], f, h, w, out=dst, split_cols=split_cols and lev == 0, gemm=gemm)
            acc[si][lev] = None
        outs.append(rec)
    return outs
