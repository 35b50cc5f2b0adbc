"""Convolution and pooling kernels: im2col / col2im around one BLAS GEMM, and window pools.

Images are NCHW batches; a 1-D signal (N, C, L) runs as (N, C, 1, L). Geometry, for each
spatial axis: kernel k, stride s, dilation d, padding p_before (the after-padding only
changes the output size, which the caller passes), output size
``O = ⌊(I + p_before + p_after − d·(k − 1) − 1)/s⌋ + 1``.

A convolution (cross-correlation, as in PyTorch and ONNX) is
``y[n, f, a, b] = b_f + Σ_{c,i,j} W[f, c, i, j] · x[n, c, a·sh − pt + i·dh, b·sw − pl + j·dw]``
(x = 0 outside the image). With the columns ``cols = im2col(x)`` of shape (C·kh·kw, N·Ho·Wo)
it is one GEMM ``Y = W₂ · cols`` (W₂ = W reshaped to (F, C·kh·kw)), and backward is two:
``∂L/∂W₂ = ΔY · colsᵀ`` and ``∂L/∂cols = W₂ᵀ · ΔY``, followed by ``col2im`` (the adjoint
of im2col: it adds every column entry back onto the pixel it was copied from). The GEMMs go
to BLAS (``np.matmul`` with ``out=``); the kernels here only move data.

Inner loops index flat arrays with ``uint64`` offsets: Numba then emits no negative-index
wrap-around and LLVM vectorises the copies (a signed computed offset measured 4–5× slower,
and slicing a view per run of 10–28 values slower still).

The ``reference_*`` functions at the end are plain NumPy (sliding windows) for the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64


@njit(cache=True, nogil=True, inline="always")
def _valid_columns(offset: int, stride: int, width: int, wo: int) -> tuple[int, int]:
    """The output columns b in [lo, hi) whose input column b·stride + offset lies in [0, width)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    last = width - 1 - offset
    hi = last // stride + 1 if last >= 0 else 0
    hi = min(hi, wo)
    return min(lo, hi), hi


@njit(cache=True, nogil=True)
def im2col(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, pt: int, pl: int,
           ho: int, wo: int, cols: np.ndarray) -> None:
    """cols[(c·kh + i)·kw + j, (n·Ho + a)·Wo + b] = x[n, c, a·sh − pt + i·dh, b·sw − pl + j·dw]
    (0 where that pixel lies in the padding). x: (N, C, H, W) and cols C-contiguous."""
    n_, c_, h_, w_ = x.shape
    xf, cf = x.reshape(-1), cols.reshape(-1)
    q = n_ * ho * wo
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                off = j * dw - pl
                lo, hi = _valid_columns(off, sw, w_, wo)
                row = ((c * kh + i) * kw + j) * q
                for n in range(n_):
                    for a in range(ho):
                        o = row + (n * ho + a) * wo
                        ih = a * sh - pt + i * dh
                        if ih < 0 or ih >= h_:
                            for b in range(wo):
                                cf[uint64(o + b)] = 0.0
                            continue
                        for b in range(lo):
                            cf[uint64(o + b)] = 0.0
                        src = ((n * c_ + c) * h_ + ih) * w_ + off
                        if sw == 1:
                            for b in range(lo, hi):
                                cf[uint64(o + b)] = xf[uint64(src + b)]
                        else:
                            for b in range(lo, hi):
                                cf[uint64(o + b)] = xf[uint64(src + b * sw)]
                        for b in range(hi, wo):
                            cf[uint64(o + b)] = 0.0


@njit(cache=True, nogil=True)
def col2im(cols: np.ndarray, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, pt: int, pl: int,
           ho: int, wo: int, dx: np.ndarray) -> None:
    """The adjoint of :func:`im2col`: dx[n, c, a·sh − pt + i·dh, b·sw − pl + j·dw] +=
    cols[(c·kh + i)·kw + j, (n·Ho + a)·Wo + b] over every (i, j, a, b); padding entries are
    dropped. dx (N, C, H, W) is overwritten (zeroed first)."""
    n_, c_, h_, w_ = dx.shape
    dx[...] = 0.0
    df, cf = dx.reshape(-1), cols.reshape(-1)
    q = n_ * ho * wo
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                off = j * dw - pl
                lo, hi = _valid_columns(off, sw, w_, wo)
                row = ((c * kh + i) * kw + j) * q
                for n in range(n_):
                    for a in range(ho):
                        ih = a * sh - pt + i * dh
                        if ih < 0 or ih >= h_:
                            continue
                        o = row + (n * ho + a) * wo
                        dst = ((n * c_ + c) * h_ + ih) * w_ + off
                        if sw == 1:
                            for b in range(lo, hi):
                                df[uint64(dst + b)] += cf[uint64(o + b)]
                        else:
                            for b in range(lo, hi):
                                df[uint64(dst + b * sw)] += cf[uint64(o + b)]


@njit(cache=True, nogil=True)
def rows_to_nchw(yt: np.ndarray, bias: np.ndarray, y: np.ndarray) -> None:
    """y[n, f, p] = yt[f, n·P + p] + bias[f] (no bias when ``bias`` is empty).
    yt: (F, N·P) the GEMM's result; y: (N, F, P)."""
    n_, f_, p_ = y.shape
    has_bias = bias.size > 0
    for n in range(n_):
        for f in range(f_):
            src = yt[f, n * p_:(n + 1) * p_]
            dst = y[n, f]
            b = bias[f] if has_bias else 0.0
            for p in range(p_):
                dst[p] = src[p] + b


@njit(cache=True, nogil=True)
def nchw_to_rows(dy: np.ndarray, dyt: np.ndarray, dbias: np.ndarray) -> None:
    """dyt[f, n·P + p] = dy[n, f, p], and ∂L/∂b_f = Σ_{n,p} dy[n, f, p] into ``dbias``
    (summed in float64; skipped when ``dbias`` is empty). dy: (N, F, P)."""
    n_, f_, p_ = dy.shape
    has_bias = dbias.size > 0
    if has_bias:
        dbias[...] = 0.0
    for f in range(f_):
        total = 0.0
        for n in range(n_):
            src = dy[n, f]
            dst = dyt[f, n * p_:(n + 1) * p_]
            for p in range(p_):
                dst[p] = src[p]
                total += src[p]
        if has_bias:
            dbias[f] = total


@njit(cache=True, nogil=True)
def max_pool_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                     y: np.ndarray) -> None:
    """y[n, c, a, b] = max_{i<kh, j<kw} x[n, c, a·sh − pt + i, b·sw − pl + j] over the pixels
    inside the image (padding counts as −∞); a NaN in the window gives NaN, as in PyTorch."""
    n_, c_, h_, w_ = x.shape
    ho, wo = y.shape[2], y.shape[3]
    for n in range(n_):
        for c in range(c_):
            plane = x[n, c]
            out = y[n, c]
            for a in range(ho):
                i0 = a * sh - pt
                for b in range(wo):
                    j0 = b * sw - pl
                    m = -np.inf
                    for i in range(max(i0, 0), min(i0 + kh, h_)):
                        for j in range(max(j0, 0), min(j0 + kw, w_)):
                            v = plane[i, j]
                            if v > m or v != v:
                                m = v
                                if v != v:
                                    break
                    out[a, b] = m


@njit(cache=True, nogil=True)
def max_pool_backward(x: np.ndarray, y: np.ndarray, dy: np.ndarray, kh: int, kw: int, sh: int, sw: int,
                      pt: int, pl: int, dx: np.ndarray) -> None:
    """∂L/∂x: each window's ∂L/∂y goes to the first pixel (row-major) that holds its maximum,
    as PyTorch's max pooling picks. dx is overwritten."""
    n_, c_, h_, w_ = x.shape
    ho, wo = y.shape[2], y.shape[3]
    dx[...] = 0.0
    for n in range(n_):
        for c in range(c_):
            plane, out, grad, dplane = x[n, c], y[n, c], dy[n, c], dx[n, c]
            for a in range(ho):
                i0 = a * sh - pt
                for b in range(wo):
                    j0 = b * sw - pl
                    m = out[a, b]
                    found = False
                    for i in range(max(i0, 0), min(i0 + kh, h_)):
                        for j in range(max(j0, 0), min(j0 + kw, w_)):
                            v = plane[i, j]
                            if v == m or (v != v and m != m):
                                dplane[i, j] += grad[a, b]
                                found = True
                                break
                        if found:
                            break


@njit(cache=True, nogil=True)
def avg_pool_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                     y: np.ndarray) -> None:
    """y[n, c, a, b] = (1/(kh·kw)) Σ_{i<kh, j<kw} x[n, c, a·sh − pt + i, b·sw − pl + j], padding
    counting as zeros (PyTorch's count_include_pad=True)."""
    n_, c_, h_, w_ = x.shape
    ho, wo = y.shape[2], y.shape[3]
    area = kh * kw
    for n in range(n_):
        for c in range(c_):
            plane = x[n, c]
            out = y[n, c]
            for a in range(ho):
                i0 = a * sh - pt
                for b in range(wo):
                    j0 = b * sw - pl
                    s = 0.0
                    for i in range(max(i0, 0), min(i0 + kh, h_)):
                        for j in range(max(j0, 0), min(j0 + kw, w_)):
                            s += plane[i, j]
                    out[a, b] = s / area


@njit(cache=True, nogil=True)
def avg_pool_backward(dy: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                      dx: np.ndarray) -> None:
    """∂L/∂x[n, c, h, w] = Σ over the windows containing (h, w) of ∂L/∂y / (kh·kw).
    dx is overwritten."""
    n_, c_, h_, w_ = dx.shape
    ho, wo = dy.shape[2], dy.shape[3]
    area = kh * kw
    dx[...] = 0.0
    for n in range(n_):
        for c in range(c_):
            grad, dplane = dy[n, c], dx[n, c]
            for a in range(ho):
                i0 = a * sh - pt
                for b in range(wo):
                    j0 = b * sw - pl
                    g = grad[a, b] / area
                    for i in range(max(i0, 0), min(i0 + kh, h_)):
                        for j in range(max(j0, 0), min(j0 + kw, w_)):
                            dplane[i, j] += g


# ---- NumPy references (tests only) -----------------------------------------------------------
def _windows(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], dilation: tuple[int, int],
             pads: tuple[int, int, int, int], fill: float) -> np.ndarray:
    """(N, C, Ho, Wo, kh, kw) windows of the padded x (pads: top, bottom, left, right)."""
    (sh, sw), (dh, dw) = stride, dilation
    pt, pb, pl, pr = pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw]


def reference_conv2d(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride: tuple[int, int],
                     dilation: tuple[int, int], pads: tuple[int, int, int, int]) -> np.ndarray:
    """y = b + Σ_{c,i,j} W[f,c,i,j]·x_pad[n, c, a·sh + i·dh, b·sw + j·dw] (float64)."""
    win = _windows(np.asarray(x, np.float64), W.shape[2], W.shape[3], stride, dilation, pads, 0.0)
    y = np.einsum("ncabij,fcij->nfab", win, np.asarray(W, np.float64))
    return y if b is None else y + np.asarray(b, np.float64)[None, :, None, None]


def reference_pool2d(x: np.ndarray, kind: str, size: tuple[int, int], stride: tuple[int, int],
                     pads: tuple[int, int, int, int]) -> np.ndarray:
    """Max (−∞ padding) or average (zero padding, divided by kh·kw) over each window (float64)."""
    fill = -np.inf if kind == "max" else 0.0
    win = _windows(np.asarray(x, np.float64), size[0], size[1], stride, (1, 1), pads, fill)
    return win.max(axis=(4, 5)) if kind == "max" else win.mean(axis=(4, 5))
