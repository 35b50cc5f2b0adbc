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
of im2col: it adds every column entry back onto the pixel it was copied from). The layers
call :func:`conv_forward_blocks` / :func:`conv_backward_blocks`, which run these per block of
images with the GEMMs through engine/kernels/strided_gemm.py (NumPy's OpenBLAS where it bundles one).

Inner loops index flat arrays with ``uint64`` offsets: Numba then emits no negative-index
wrap-around and LLVM vectorises the copies (a signed computed offset measured 4–5× slower,
and slicing a view per run of 10–28 values slower still).

The ``reference_*`` functions at the end are plain NumPy (sliding windows) for the tests.
"""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from engine.kernels.strided_gemm import gemm


@njit(cache=True, nogil=True, inline="always")
def _valid_columns(offset: int, stride: int, width: int, wo: int) -> tuple[int, int]:
    """The outputs b in [lo, hi) whose input b·stride + offset lies in [0, width) (columns, or rows)."""
    lo = 0
    if offset < 0:
        lo = (-offset + stride - 1) // stride
    last = width - 1 - offset
    hi = last // stride + 1 if last >= 0 else 0
    hi = min(hi, wo)
    return min(lo, hi), hi


@njit(cache=True, nogil=True, inline="always")
def _copy_row(xf, src, sw, cf, o, lo, hi, wo):
    """cf[o + b] = xf[src + b·sw] for b in [lo, hi), and 0 for the other b < wo (the padding)."""
    for b in range(lo):
        cf[uint64(o + b)] = 0.0
    if sw == 1:
        for b in range(lo, hi):
            cf[uint64(o + b)] = xf[uint64(src + b)]
    else:
        for b in range(lo, hi):
            cf[uint64(o + b)] = xf[uint64(src + b * sw)]
    for b in range(hi, wo):
        cf[uint64(o + b)] = 0.0


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
            alo, ahi = _valid_columns(i * dh - pt, sh, h_, ho)  # rows a whose input row is inside
            for j in range(kw):
                off = j * dw - pl
                lo, hi = _valid_columns(off, sw, w_, wo)
                row = ((c * kh + i) * kw + j) * q
                for n in range(n_):
                    base = row + n * ho * wo
                    for t in range(alo * wo):
                        cf[uint64(base + t)] = 0.0
                    for t in range(ahi * wo, ho * wo):
                        cf[uint64(base + t)] = 0.0
                    plane = (n * c_ + c) * h_ * w_ + off
                    for a in range(alo, ahi):
                        o = base + a * wo
                        _copy_row(xf, plane + (a * sh - pt + i * dh) * w_, sw, cf, o, lo, hi, wo)


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
            alo, ahi = _valid_columns(i * dh - pt, sh, h_, ho)
            for j in range(kw):
                off = j * dw - pl
                lo, hi = _valid_columns(off, sw, w_, wo)
                row = ((c * kh + i) * kw + j) * q
                for n in range(n_):
                    base = row + n * ho * wo
                    plane = (n * c_ + c) * h_ * w_ + off
                    for a in range(alo, ahi):
                        o = base + a * wo
                        dst = plane + (a * sh - pt + i * dh) * w_
                        if sw == 1:
                            for b in range(lo, hi):
                                df[uint64(dst + b)] += cf[uint64(o + b)]
                        else:
                            for b in range(lo, hi):
                                df[uint64(dst + b * sw)] += cf[uint64(o + b)]


def strip_shape(c: int, n: int, kh: int, kw: int, dh: int, ho: int, wo: int) -> tuple[int, int, int, int, int]:
    """The shape (C, kw, N, Hs, Wo) of the strips of :func:`im2col_strips`, Hs = Ho + dh·(kh − 1)."""
    return c, kw, n, ho + dh * (kh - 1), wo


@njit(cache=True, nogil=True)
def _fill_strips(x, kw, sw, dw, pt, pl, wo, strip):
    """strip[c, j, n, r, b] = x[n, c, r − pt, b·sw − pl + j·dw] (0 in the padding): every input
    row once per kernel column j, cut to the Wo outputs that column feeds."""
    n_, c_, h_, w_ = x.shape
    hs = strip.shape[3]
    xf, sf = x.reshape(-1), strip.reshape(-1)
    for c in range(c_):
        for j in range(kw):
            off = j * dw - pl
            lo, hi = _valid_columns(off, sw, w_, wo)
            for n in range(n_):
                base = ((c * kw + j) * n_ + n) * hs * wo
                plane = (n * c_ + c) * h_ * w_ + off
                for r in range(hs):
                    o = base + r * wo
                    h = r - pt
                    if h < 0 or h >= h_:
                        for b in range(wo):
                            sf[uint64(o + b)] = 0.0
                        continue
                    _copy_row(xf, plane + h * w_, sw, sf, o, lo, hi, wo)


@njit(cache=True, nogil=True)
def im2col_strips(x, kh, kw, dh, dw, pt, pl, ho, wo, sw, strip, cols):
    """:func:`im2col` for a vertical stride of 1, the same columns in two passes: the strips
    (:func:`_fill_strips`, shape :func:`strip_shape`), then each (c, i, j, n) run of Ho·Wo
    columns is one contiguous copy strip[c, j, n, i·dh : i·dh + Ho, :]. The direct loop copies
    runs of Wo values (10 on LeNet's second convolution) and pays its loop overhead per run:
    measured on W4's blocks, 0.35 → 0.17 ms (second convolution) and 0.21 → 0.16 ms (first)."""
    _fill_strips(x, kw, sw, dw, pt, pl, wo, strip)
    n_, c_ = x.shape[0], x.shape[1]
    hs = strip.shape[3]
    sf, cf = strip.reshape(-1), cols.reshape(-1)
    run = ho * wo
    q = n_ * run
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                row = ((c * kh + i) * kw + j) * q
                for n in range(n_):
                    src = ((c * kw + j) * n_ + n) * hs * wo + i * dh * wo
                    dst = row + n * run
                    for t in range(run):
                        cf[uint64(dst + t)] = sf[uint64(src + t)]


@njit(cache=True, nogil=True)
def col2im_strips(cols, kh, kw, dh, dw, pt, pl, ho, wo, sw, strip, dx):
    """The adjoint of :func:`im2col_strips` (:func:`col2im` for a vertical stride of 1): each
    (c, i, j, n) run of columns is added onto its strip rows, then every strip row onto the
    input row it came from. dx (N, C, H, W) and the strips are overwritten."""
    n_, c_, h_, w_ = dx.shape
    hs = strip.shape[3]
    sf, cf, df = strip.reshape(-1), cols.reshape(-1), dx.reshape(-1)
    run = ho * wo
    q = n_ * run
    strip[...] = 0.0
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                row = ((c * kh + i) * kw + j) * q
                for n in range(n_):
                    dst = ((c * kw + j) * n_ + n) * hs * wo + i * dh * wo
                    src = row + n * run
                    for t in range(run):
                        sf[uint64(dst + t)] += cf[uint64(src + t)]
    dx[...] = 0.0
    for c in range(c_):
        for j in range(kw):
            off = j * dw - pl
            lo, hi = _valid_columns(off, sw, w_, wo)
            for n in range(n_):
                base = ((c * kw + j) * n_ + n) * hs * wo
                plane = (n * c_ + c) * h_ * w_ + off
                for h in range(max(0, -pt), min(h_, hs - pt)):
                    o = base + (h + pt) * wo
                    dst = plane + h * w_
                    if sw == 1:
                        for b in range(lo, hi):
                            df[uint64(dst + b)] += sf[uint64(o + b)]
                    else:
                        for b in range(lo, hi):
                            df[uint64(dst + b * sw)] += sf[uint64(o + b)]


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
def nchw_to_rows(dy: np.ndarray, dyt: np.ndarray) -> None:
    """dyt[f, n·P + p] = dy[n, f, p]: ∂L/∂y laid out for the weight-gradient products.
    dy: (N, F, P). (∂L/∂b is a pass of its own, :func:`bias_gradient`: a running float64 total
    in this loop made the copy 4× slower.)"""
    n_, f_, p_ = dy.shape
    df, tf = dy.reshape(-1), dyt.reshape(-1)
    for n in range(n_):
        for f in range(f_):
            src, dst = (n * f_ + f) * p_, f * n_ * p_ + n * p_
            for p in range(p_):
                tf[uint64(dst + p)] = df[uint64(src + p)]


REASSOCIATE = {"reassoc", "contract"}
"""The one fast-math licence the kernels take, on the weight-gradient dot products only: LLVM
may reorder the additions of a dot product (as BLAS does) and fuse multiply-adds, so the
long sums vectorise. No ``nnan``/``ninf``: a NaN or an infinity still comes through."""


@njit(cache=True, nogil=True, fastmath=REASSOCIATE)
def _dot(a: np.ndarray, b: np.ndarray, zero: float) -> float:
    """Σ a[p]·b[p] (1-D arrays of the same length)."""
    s = zero
    for p in range(a.size):
        s += a[p] * b[p]
    return s


@njit(cache=True, nogil=True, fastmath=REASSOCIATE)
def bias_gradient(delta: np.ndarray, accumulate: bool, db: np.ndarray) -> None:
    """db[f] (+)= Σ_p delta[f, p]: ∂L/∂b from a block's ∂L/∂y rows (F, q). In the backward
    kernel rather than NumPy's ``sum(axis=(0, 2))`` over (N, F, P), which took 72 + 52 µs of
    W4's step (its two convolutions, one core) for what is one vectorised pass here."""
    zero = np.zeros(1, db.dtype)[0]
    for f in range(delta.shape[0]):
        row = delta[f]
        s = zero
        for p in range(row.size):
            s += row[p]
        db[f] = s + (db[f] if accumulate else zero)


@njit(cache=True, nogil=True, inline="always")
def _tile_add(t, a0, a1, a2, a3, b0, b1, b2):
    """The 4×3 tile of running sums t (12 values, row by row) plus the outer product of
    (a0 … a3) and (b0 … b2): each loaded value feeds 3 or 4 multiply-adds from registers."""
    return (t[0] + a0 * b0, t[1] + a0 * b1, t[2] + a0 * b2,
            t[3] + a1 * b0, t[4] + a1 * b1, t[5] + a1 * b2,
            t[6] + a2 * b0, t[7] + a2 * b1, t[8] + a2 * b2,
            t[9] + a3 * b0, t[10] + a3 * b1, t[11] + a3 * b2)


@njit(cache=True, nogil=True, inline="always")
def _tile_store(t, k, f, accumulate, dwt):
    """dwt[k:k+4, f:f+3] = the tile t (or += with ``accumulate``)."""
    for i in range(4):
        for j in range(3):
            dwt[k + i, f + j] = t[3 * i + j] + (dwt[k + i, f + j] if accumulate else dwt.dtype.type(0))


@njit(cache=True, nogil=True, fastmath=REASSOCIATE)
def weight_gradient(cols: np.ndarray, delta: np.ndarray, accumulate: bool, dwt: np.ndarray) -> None:
    """dwt (K, F) (+)= cols (K, q) · delta (F, q)ᵀ: the dot products of every row of the block's
    columns with every row of ∂L/∂y, 4 rows of one by 3 of the other per pass so that each
    loaded value feeds 3 or 4 multiply-adds from registers. OpenBLAS handles this thin shape
    poorly: on W4's first convolution (25×4704 by 6×4704, one core of an AMD EPYC) 79–100 µs
    against 21 µs here; on its second (150×800 by 16×800) 59 against 53 µs."""
    k_, q = cols.shape
    f_ = delta.shape[0]
    zero = np.zeros(1, dwt.dtype)[0]
    k4, f3 = k_ - k_ % 4, f_ - f_ % 3
    for k in range(0, k4, 4):
        c0, c1, c2, c3 = cols[k], cols[k + 1], cols[k + 2], cols[k + 3]
        for f in range(0, f3, 3):
            e0, e1, e2 = delta[f], delta[f + 1], delta[f + 2]
            t = (zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero)
            for p in range(q):
                t = _tile_add(t, c0[p], c1[p], c2[p], c3[p], e0[p], e1[p], e2[p])
            _tile_store(t, k, f, accumulate, dwt)
    for k in range(k_):
        for f in range(f_):
            if k < k4 and f < f3:
                continue
            dwt[k, f] = _dot(cols[k], delta[f], zero) + (dwt[k, f] if accumulate else zero)


@njit(cache=True, nogil=True, inline="always")
def _strip_row(k, n, n_, kh, kw, dh, hs, wo):
    """Where column row k = (c·kh + i)·kw + j of image n starts in the flat strips: its Ho·Wo
    values are strip[c, j, n, i·dh : i·dh + Ho, :], one contiguous run (:func:`im2col_strips`)."""
    c, i, j = k // (kh * kw), (k // kw) % kh, k % kw
    return ((c * kw + j) * n_ + n) * hs * wo + i * dh * wo


@njit(cache=True, nogil=True, fastmath=REASSOCIATE)
def weight_gradient_from_strips(sf, n_, kh, kw, dh, ho, wo, delta, accumulate, dwt):
    """:func:`weight_gradient` reading each column row where it lies in the strips ``sf``
    (flat, :func:`strip_shape` for n_ images) instead of from an im2col copy: image by image,
    a run of Ho·Wo values. Worth it where the runs are long: LeNet's first convolution
    (runs of 784) 43 → 30 µs a block of 6 images with the strips filled; on its second (runs of
    100) the short loops made it 81 → 124 µs, so that one keeps the copy (engine/layers/conv.py,
    STRIP_RUN)."""
    k_, f_ = dwt.shape
    run = ho * wo
    hs = ho + dh * (kh - 1)
    df = delta.reshape(-1)
    q = n_ * run
    zero = np.zeros(1, dwt.dtype)[0]
    k4, f3 = k_ - k_ % 4, f_ - f_ % 3
    for k in range(0, k4, 4):
        for f in range(0, f3, 3):
            t = (zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero, zero)
            for n in range(n_):
                o0, o1 = _strip_row(k, n, n_, kh, kw, dh, hs, wo), _strip_row(k + 1, n, n_, kh, kw, dh, hs, wo)
                o2, o3 = _strip_row(k + 2, n, n_, kh, kw, dh, hs, wo), _strip_row(k + 3, n, n_, kh, kw, dh, hs, wo)
                d0 = f * q + n * run
                d1, d2 = d0 + q, d0 + 2 * q
                for p in range(run):
                    t = _tile_add(t, sf[uint64(o0 + p)], sf[uint64(o1 + p)], sf[uint64(o2 + p)], sf[uint64(o3 + p)],
                                  df[uint64(d0 + p)], df[uint64(d1 + p)], df[uint64(d2 + p)])
            _tile_store(t, k, f, accumulate, dwt)
    for k in range(k_):
        for f in range(f_):
            if k < k4 and f < f3:
                continue
            s = zero
            for n in range(n_):
                o, d = _strip_row(k, n, n_, kh, kw, dh, hs, wo), f * q + n * run
                for p in range(run):
                    s += sf[uint64(o + p)] * df[uint64(d + p)]
            dwt[k, f] = s + (dwt[k, f] if accumulate else zero)


@njit(cache=True, nogil=True, inline="always")
def _strips_of(strip, c, kw, n, kh, dh, ho, wo):
    """The start of the flat ``strip`` as the strips (:func:`strip_shape`) of n images."""
    hs = ho + dh * (kh - 1)
    return strip[:c * kw * n * hs * wo].reshape(c, kw, n, hs, wo)


@njit(cache=True, nogil=True)
def _block_columns(x, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, strip, cols):
    """im2col of the images x into ``cols``: through strips when the vertical stride is 1,
    else directly."""
    if sh == 1:
        st = _strips_of(strip, x.shape[1], kw, x.shape[0], kh, dh, ho, wo)
        im2col_strips(x, kh, kw, dh, dw, pt, pl, ho, wo, sw, st, cols)
    else:
        im2col(x, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, cols)


@njit(cache=True, nogil=True)
def _block_image_gradient(cols, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, strip, dx):
    """col2im of ``cols`` into dx, the adjoint of :func:`_block_columns`."""
    if sh == 1:
        st = _strips_of(strip, dx.shape[1], kw, dx.shape[0], kh, dh, ho, wo)
        col2im_strips(cols, kh, kw, dh, dw, pt, pl, ho, wo, sw, st, dx)
    else:
        col2im(cols, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, dx)


@njit(cache=True, nogil=True, inline="always")
def _block(k, per, n_, positions, window, f_, cols, rows):
    """Block k of ``per`` images of a part of n_: its images [a, b), its columns (the start of
    ``cols``, which every block reuses) and its GEMM rows (the start of ``rows``), both
    (·, (b − a)·Ho·Wo)."""
    a = k * per
    b = min(a + per, n_)
    q = (b - a) * positions
    return a, b, q, cols[:window * q].reshape(window, q), rows[:f_ * q].reshape(f_, q)


@njit(cache=True, nogil=True)
def conv_forward_blocks(x, w2, bias, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, per, cols, rows, strip, y):
    """y[n, f] = W₂·im2col(x[n]) + b_f for images x (N, C, H, W), ``per`` images at a time,
    each block's im2col, GEMM and layout back to back while its columns are in cache. Each
    block's columns go to the start of ``cols`` (C·kh·kw·per·Ho·Wo,), its product to the start
    of ``rows`` (F·per·Ho·Wo,); ``strip`` holds one block's strips (vertical stride 1).
    y: (N, F, Ho·Wo).

    One call for all the blocks of a part: with a dozen blocks a pass, calls from Python
    retake the GIL dozens of times, and two threads running halves of a batch that way
    were slower than one (W4's first convolution: 0.47 → 0.55 ms; this loop 0.42 → 0.33)."""
    n_ = x.shape[0]
    f_, window = w2.shape
    wf = w2.reshape(-1)
    for k in range((n_ + per - 1) // per):
        a, b, q, block, product = _block(k, per, n_, ho * wo, window, f_, cols, rows)
        _block_columns(x[a:b], kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, strip, block)
        gemm(False, False, f_, q, window, wf, window, block.reshape(-1), q, False, product.reshape(-1), q)
        rows_to_nchw(product, bias, y[a:b])


@njit(cache=True, nogil=True)
def conv_backward_blocks(dy, w2, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, per, cols, rows, strip, dwt,
                         has_bias, db, need_dx, dx, x, from_strips):
    """The backward of :func:`conv_forward_blocks`, block by block: the block's columns again
    from the images x (unless the part is one block, whose columns forward left in ``cols``;
    with ``from_strips``, for a vertical stride of 1, only the strips, which
    :func:`weight_gradient_from_strips` reads in place), ∂L/∂Wᵀ = Σ cols·ΔYᵀ into dwt
    (C·kh·kw, F) (:func:`weight_gradient`), with ``has_bias`` ∂L/∂b = Σ ΔY into db (F,), and
    with ``need_dx`` ∂L/∂x = col2im(W₂ᵀ·ΔY) into dx (N, C, H, W), which overwrites the
    block's columns. dy: (N, F, Ho·Wo)."""
    n_ = dy.shape[0]
    f_, window = w2.shape
    wf = w2.reshape(-1)
    for k in range((n_ + per - 1) // per):
        a, b, q, block, delta = _block(k, per, n_, ho * wo, window, f_, cols, rows)
        nchw_to_rows(dy[a:b], delta)
        if from_strips:
            st = _strips_of(strip, x.shape[1], kw, b - a, kh, dh, ho, wo)
            _fill_strips(x[a:b], kw, sw, dw, pt, pl, wo, st)
            weight_gradient_from_strips(st.reshape(-1), b - a, kh, kw, dh, ho, wo, delta, k > 0, dwt)
        else:
            if n_ > per:  # else the only block's columns are still there from forward
                _block_columns(x[a:b], kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, strip, block)
            weight_gradient(block, delta, k > 0, dwt)
        if has_bias:
            bias_gradient(delta, k > 0, db)
        if need_dx:
            gemm(True, False, window, q, f_, wf, window, delta.reshape(-1), q, False, block.reshape(-1), q)
            _block_image_gradient(block, kh, kw, sh, sw, dh, dw, pt, pl, ho, wo, strip, dx[a:b])


@njit(cache=True, nogil=True, inline="always")
def _window(start: int, size: int, limit: int) -> tuple[int, int]:
    """The part [lo, hi) of the window [start, start + size) that lies inside [0, limit)."""
    return max(start, 0), min(start + size, limit)


@njit(cache=True, nogil=True, inline="always")
def _window_max(xf: np.ndarray, base: int, w_: int, ilo: int, ihi: int, jlo: int, jhi: int) -> tuple[float, int]:
    """(max, its position i·W + j) of the plane at ``base`` over rows [ilo, ihi) and columns
    [jlo, jhi): the first maximum in row-major order. NaNs are not looked for (see below)."""
    best = ilo * w_ + jlo
    m = xf[uint64(base + best)]
    if ihi - ilo == 2 and jhi - jlo == 2:  # the common 2×2 window, unrolled
        for k in (best + 1, best + w_, best + w_ + 1):
            v = xf[uint64(base + k)]
            if v > m:
                m, best = v, k
        return m, best
    for i in range(ilo, ihi):
        for j in range(jlo, jhi):
            v = xf[uint64(base + i * w_ + j)]
            if v > m:
                m, best = v, i * w_ + j
    return m, best


@njit(cache=True, nogil=True, inline="always")
def _window_max_nan(xf: np.ndarray, base: int, w_: int, ilo: int, ihi: int, jlo: int, jhi: int) -> tuple[float, int]:
    """:func:`_window_max` where a NaN wins (and stays): NaN propagates, as in PyTorch."""
    best = ilo * w_ + jlo
    m = xf[uint64(base + best)]
    for i in range(ilo, ihi):
        for j in range(jlo, jhi):
            v = xf[uint64(base + i * w_ + j)]
            if v > m or (v != v and m == m):
                m, best = v, i * w_ + j
    return m, best


@njit(cache=True, nogil=True)
def _max_pool_2x2(xf: np.ndarray, planes: int, h_: int, w_: int, ho: int, wo: int, yf: np.ndarray,
                  af: np.ndarray) -> None:
    """:func:`max_pool_forward` for the common 2×2 window, stride 2, no padding, no NaN: the
    four pixels of each window compared in row-major order in straight-line code (the general
    loop's window bounds and calls cost half its time). Same maxima, same first-maximum ties."""
    for q in range(planes):
        base, out = q * h_ * w_, q * ho * wo
        for a in range(ho):
            top = 2 * a * w_
            o = out + a * wo
            for b in range(wo):
                k = top + 2 * b
                m, best = xf[uint64(base + k)], k
                v = xf[uint64(base + k + 1)]
                if v > m:
                    m, best = v, k + 1
                v = xf[uint64(base + k + w_)]
                if v > m:
                    m, best = v, k + w_
                v = xf[uint64(base + k + w_ + 1)]
                if v > m:
                    m, best = v, k + w_ + 1
                yf[uint64(o + b)] = m
                af[uint64(o + b)] = best


@njit(cache=True, nogil=True)
def max_pool_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                     y: np.ndarray, argmax: np.ndarray) -> None:
    """y[n, c, a, b] = max_{i<kh, j<kw} x[n, c, a·sh − pt + i, b·sw − pl + j] over the pixels
    inside the image (padding counts as −∞); ``argmax`` (int32, y's shape) gets the position
    h·W + w of that pixel in its plane: the first maximum in row-major order, as PyTorch
    picks. A NaN in the window gives NaN: checking for NaN in every comparison made the loop
    4× slower, so one vectorised pass looks for NaN first and only then takes the slow path."""
    n_, c_, h_, w_ = x.shape
    ho, wo = y.shape[2], y.shape[3]
    xf, yf, af = x.reshape(-1), y.reshape(-1), argmax.reshape(-1)
    has_nan = False
    for t in range(xf.size):
        has_nan |= xf[t] != xf[t]
    if kh == 2 and kw == 2 and sh == 2 and sw == 2 and pt == 0 and pl == 0 and not has_nan:
        _max_pool_2x2(xf, n_ * c_, h_, w_, ho, wo, yf, af)
        return
    for q in range(n_ * c_):
        base, out = q * h_ * w_, q * ho * wo
        for a in range(ho):
            ilo, ihi = _window(a * sh - pt, kh, h_)
            for b in range(wo):
                jlo, jhi = _window(b * sw - pl, kw, w_)
                if has_nan:
                    m, best = _window_max_nan(xf, base, w_, ilo, ihi, jlo, jhi)
                else:
                    m, best = _window_max(xf, base, w_, ilo, ihi, jlo, jhi)
                yf[uint64(out + a * wo + b)] = m
                af[uint64(out + a * wo + b)] = best


@njit(cache=True, nogil=True)
def max_pool_backward(dy: np.ndarray, argmax: np.ndarray, dx: np.ndarray) -> None:
    """∂L/∂x: each window's ∂L/∂y is added to the pixel ``argmax`` names (the maximum).
    dx (N, C, H, W) is overwritten."""
    n_, c_, h_, w_ = dx.shape
    per = dy.shape[2] * dy.shape[3]
    dx[...] = 0.0
    df, gf, af = dx.reshape(-1), dy.reshape(-1), argmax.reshape(-1)
    for q in range(n_ * c_):
        base, out = q * h_ * w_, q * per
        for o in range(per):
            df[uint64(base + af[uint64(out + o)])] += gf[uint64(out + o)]


@njit(cache=True, nogil=True)
def avg_pool_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                     y: np.ndarray) -> None:
    """y[n, c, a, b] = (1/(kh·kw)) Σ_{i<kh, j<kw} x[n, c, a·sh − pt + i, b·sw − pl + j], padding
    counting as zeros (PyTorch's count_include_pad=True)."""
    n_, c_, h_, w_ = x.shape
    ho, wo = y.shape[2], y.shape[3]
    xf, yf = x.reshape(-1), y.reshape(-1)
    area = kh * kw
    for q in range(n_ * c_):
        base, out = q * h_ * w_, q * ho * wo
        for a in range(ho):
            ilo, ihi = _window(a * sh - pt, kh, h_)
            for b in range(wo):
                jlo, jhi = _window(b * sw - pl, kw, w_)
                s = 0.0
                for i in range(ilo, ihi):
                    for j in range(jlo, jhi):
                        s += xf[uint64(base + i * w_ + j)]
                yf[uint64(out + a * wo + b)] = s / area


@njit(cache=True, nogil=True)
def avg_pool_backward(dy: np.ndarray, kh: int, kw: int, sh: int, sw: int, pt: int, pl: int,
                      dx: np.ndarray) -> None:
    """∂L/∂x[n, c, h, w] = Σ over the windows containing (h, w) of ∂L/∂y / (kh·kw).
    dx is overwritten."""
    n_, c_, h_, w_ = dx.shape
    ho, wo = dy.shape[2], dy.shape[3]
    df, gf = dx.reshape(-1), dy.reshape(-1)
    area = kh * kw
    dx[...] = 0.0
    for q in range(n_ * c_):
        base, out = q * h_ * w_, q * ho * wo
        for a in range(ho):
            ilo, ihi = _window(a * sh - pt, kh, h_)
            for b in range(wo):
                jlo, jhi = _window(b * sw - pl, kw, w_)
                g = gf[uint64(out + a * wo + b)] / area
                for i in range(ilo, ihi):
                    for j in range(jlo, jhi):
                        df[uint64(base + i * w_ + j)] += g


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
