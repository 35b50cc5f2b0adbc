"""Backpropagation-through-time kernels for SimpleRNN, LSTM and GRU.

One call runs a whole batch of sequences forward, or backward; nothing loops over time in
Python. Layout: every step keeps *feature-major* blocks ``(features, N)``, contiguous per
step, so a step is one BLAS product on whole blocks and the element-wise passes run over
flat contiguous gate blocks:

- ``xh`` (T+1, F+1+H, N) holds, for step t, the rows [x_tᵀ; 1; h_{t−1}] (h_{−1} = 0), so
  with ``W = [Wx; b; Wh]`` one product ``Z_t = Wᵀ xh[t]`` gives every pre-activation of the
  step, bias included; the rows h of ``xh[t+1]`` receive h_t (``xh[T]`` holds h_T);
- ``gates`` and ``dg`` (T, G, N): gate k of step t is the contiguous block [kH, (k+1)H)·N;
- backward, per step from the last: δ_t = ∂L/∂Z_t, then ∂L/∂W += xh[t] δ_tᵀ (accumulated
  in BLAS), ∂L/∂h_{t−1} = Wh δ_t (+ the cell's direct paths), ∂L/∂x_t = Wx δ_t.

``hn2[t]`` receives ‖∂L/∂h_t‖² (summed over batch and units; t = 1 … T): the total gradient
reaching each hidden state, which the trainer reports as the gradient through time.

Truncation ``k > 0``: the sequence is cut into blocks of k steps counted back from the last
step and no gradient crosses a block boundary (the same as detaching the state every k
steps in PyTorch); a loss on the last state then reaches exactly the last k steps.

The gate functions come from :mod:`engine.kernels.vecmath` (vectorised float32 σ and tanh).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.strided_gemm import gemm
from engine.kernels.vecmath import (
    ACTIVATIONS,
    KERNEL,
    SIGMOID,
    TANH,
    activate,
    muladd,
    sigmoid_slope,
    slope,
    slope_coefficients,
    tanh,
)

__all__ = ["ACTIVATIONS"]


# ---- layout -----------------------------------------------------------------------------------
@njit(**KERNEL)
def flat(a):
    """A contiguous array as a 1-D view (sub-blocks are then ``flat(a)[offset:]``)."""
    return a.reshape(a.size)


@njit(**KERNEL)
def load_inputs(x, xh):
    """xh[t] = [x_tᵀ; 1; ·] for every step of the (N, T, F) batch, and h_{−1} = 0."""
    N, T, F = x.shape
    for n in range(N):
        for t in range(T):
            src = x[n, t]
            for f in range(F):
                xh[t, f, n] = src[f]
    for t in range(T + 1):
        xh[t, F] = 1
    xh[0, F + 1:] = 0


@njit(**KERNEL)
def pack(W, top, middle, bottom, has_middle):
    """W = [top; middle; bottom] by rows (middle: one bias row, zeros without a bias)."""
    a = top.shape[0]
    W[:a] = top
    if has_middle:
        W[a] = middle
    else:
        W[a] = 0
    W[a + 1:] = bottom


@njit(**KERNEL)
def transpose(W, Wt):
    """Wt = Wᵀ. The forward products Z_t = Wᵀ·xh[t] read the packed weights as Wt, a plain
    (not transposed) operand: OpenBLAS runs these small products 20–28 % faster that way
    (measured on W5's 256×73·73×32), and the copy costs one pass over the weights per forward.

    The loops walk the matrix with the shorter rows across: its elements then lie a short row
    apart, the other's are contiguous (W5's (4H, K) → (K, 4H) the other way round stepped
    1 KiB per element and took 38 µs; so 3.4 µs)."""
    K, G = W.shape
    if K <= G:
        for k in range(K):
            for g in range(G):
                Wt[g, k] = W[k, g]
    else:
        for g in range(G):
            for k in range(K):
                Wt[g, k] = W[k, g]


@njit(**KERNEL)
def unpack(dW, top, middle, bottom, has_middle):
    """The inverse of :func:`pack` for gradients."""
    a = top.shape[0]
    top[:] = dW[:a]
    if has_middle:
        middle[:] = dW[a]
    bottom[:] = dW[a + 1:]


@njit(**KERNEL)
def hidden_outputs(xh, F, seq, state, with_seq):
    """state[n] = h_T and, if asked, seq[n, t] = h_{t+1}: batch-major copies of the hidden rows."""
    T = xh.shape[0] - 1
    H, N = state.shape[1], state.shape[0]
    for j in range(H):
        row = xh[T, F + 1 + j]
        for n in range(N):
            state[n, j] = row[n]
    if with_seq:
        for t in range(T):
            for j in range(H):
                row = xh[t + 1, F + 1 + j]
                for n in range(N):
                    seq[n, t, j] = row[n]


@njit(**KERNEL)
def input_gradient_to_batch(dxs, dx):
    """dx[n, t, f] = dxs[t, f, n]."""
    T, F, N = dxs.shape
    for t in range(T):
        for f in range(F):
            row = dxs[t, f]
            for n in range(N):
                dx[n, t, f] = row[n]


@njit(**KERNEL)
def add_port_gradients(dh, dseq, dlast, t, last):
    """∂L/∂h_t (H, N) += what arrives directly: the sequence port's step t, and the last
    state's at the last step. Returns ‖∂L/∂h_t‖² (a float64 sum over batch and units)."""
    H, N = dh.shape
    if dseq.shape[0] > 0:
        for n in range(N):
            src = dseq[n, t]
            for j in range(H):
                dh[j, n] += src[j]
    if t == last:
        for n in range(N):
            src = dlast[n]
            for j in range(H):
                dh[j, n] += src[j]
    return squared_norm(flat(dh))


@njit(**KERNEL)
def squared_norm(d):
    """Σ d_j² in float64, over eight interleaved partial sums: one running sum is a chain of
    dependent additions that cannot be vectorised without fastmath (measured: 10 % of W5's
    backward); eight independent chains can, and the float64 result differs only in rounding.
    As multiply-adds (fused where the CPU has FMA) the pass is 30 % faster (0.75 → 0.52 µs for
    W5's 64×32 block)."""
    lanes = 8
    part = np.zeros(lanes)
    full = d.size - d.size % lanes
    for j in range(0, full, lanes):
        for k in range(lanes):
            v = np.float64(d[j + k])
            part[k] = muladd(v, v, part[k])
    total = 0.0
    for j in range(full, d.size):
        total += np.float64(d[j]) * np.float64(d[j])
    for k in range(lanes):
        total += part[k]
    return total


@njit(**KERNEL)
def cut_here(T, t, truncate):
    """Whether truncated BPTT stops the gradient between steps t − 1 and t (0-based t)."""
    return truncate > 0 and (T - t) % truncate == 0


@njit(**KERNEL)
def accumulate_weight_gradient(xht, dgt, dW, F, t, T):
    """∂L/∂W += xh[t] δ_tᵀ, steps taken from the last (t = T − 1 writes, the others add); at
    t = 0 only the rows [x_0; 1] (h_{−1} = 0 adds nothing)."""
    K, G = dW.shape
    N = dgt.shape[1]
    rows = K if t > 0 else F + 1
    gemm(False, True, rows, G, N, xht, N, dgt, N, t < T - 1, dW, G)
    if t == 0 and T == 1:
        dW[F + 1:] = 0


@njit(**KERNEL)
def accumulate_weight_gradient_transposed(xht, dgt, dWt, F, t, T):
    """:func:`accumulate_weight_gradient` into (∂L/∂W)ᵀ (G, K): ∂L/∂Wᵀ += δ_t xh[t]ᵀ. The same
    sums; OpenBLAS runs this orientation of W5's products (256×32·32×73) 6–7 % faster."""
    G, K = dWt.shape
    N = dgt.shape[1]
    cols = K if t > 0 else F + 1
    gemm(False, True, G, cols, N, dgt, N, xht, N, t < T - 1, dWt, K)
    if t == 0 and T == 1:
        dWt[:, F + 1:] = 0


@njit(**KERNEL)
def propagate(W, F, dgt, dh, dxs, t, need_dx, carry_on):
    """From δ_t (G, N) with W = [Wx; b; Wh]: ∂L/∂x_t = Wx δ_t into dxs[t] (if asked) and
    ∂L/∂h_{t−1} = Wh δ_t into dh (if the gradient goes on), one product each."""
    G, N = dgt.shape
    H = dh.shape[0]
    if need_dx:
        gemm(False, False, F, N, G, W, G, dgt, N, False, dxs[t], N)
    if carry_on:
        gemm(False, False, H, N, G, flat(W)[(F + 1) * G:], G, dgt, N, False, dh, N)


# ---- SimpleRNN --------------------------------------------------------------------------------
@njit(**KERNEL)
def rnn_forward(x, Wt, code, xh):
    """h_t = φ(x_t Wx + h_{t−1} Wh + b), h_0 = 0, with Wt = [Wx; b; Wh]ᵀ (see :func:`transpose`),
    for x (N, T, F)."""
    N, T, F = x.shape
    H, K = Wt.shape
    load_inputs(x, xh)
    for t in range(T):
        h = flat(xh[t + 1])[(F + 1) * N:]
        gemm(False, False, H, N, K if t > 0 else F + 1, Wt, K, xh[t], N, False, h, N)  # h_{−1} = 0
        activate(code, h)


@njit(**KERNEL)
def rnn_backward(dseq, dlast, W, xh, code, truncate, need_dx, dg, dh, dW, dxs, hn2):
    """δ_t = ∂L/∂h_t ⊙ φ′ (through h_t), ∂L/∂W += xh[t] δ_tᵀ, ∂L/∂h_{t−1} = Wh δ_t.

    dseq (N, T, H) or empty, dlast (N, H): the gradients arriving at the ports.
    """
    T, H, N = dg.shape
    F = xh.shape[1] - 1 - H
    k = slope_coefficients(code, dg)
    dh[:] = 0
    for t in range(T - 1, -1, -1):
        hn2[t] = add_port_gradients(dh, dseq, dlast, t, T - 1)
        d, h, g = flat(dg[t]), flat(xh[t + 1])[(F + 1) * N:], flat(dh)
        for j in range(d.size):
            d[j] = g[j] * slope(k, h[j])
        accumulate_weight_gradient(xh[t], dg[t], dW, F, t, T)
        go_on = t > 0 and not cut_here(T, t, truncate)
        propagate(W, F, dg[t], dh, dxs, t, need_dx, go_on)
        if t > 0 and not go_on:
            dh[:] = 0


# ---- LSTM -------------------------------------------------------------------------------------
@njit(**KERNEL)
def lstm_forward(x, Wt, code, xh, gates, cs, acs):
    """LSTM, gates in PyTorch's order i, f, g, o, with Wt = [Wx; b; Wh]ᵀ (:func:`transpose`):

        [z_i z_f z_g z_o] = x_t Wx + h_{t−1} Wh + b
        i = σ(z_i), f = σ(z_f), g = φ(z_g), o = σ(z_o)
        c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ φ(c_t),   h_0 = c_0 = 0

    Keeps the gates (T, 4H, N), cs (T+1, H, N) = c_0 … c_T and φ(c_t) in acs (T, H, N).
    """
    N, T, F = x.shape
    G, K = Wt.shape
    H = G // 4
    M = H * N
    load_inputs(x, xh)
    cs[0] = 0
    for t in range(T):
        gemm(False, False, G, N, K if t > 0 else F + 1, Wt, K, xh[t], N, False, gates[t], N)  # h_{−1} = 0
        z = flat(gates[t])
        cp, c, a, h = flat(cs[t]), flat(cs[t + 1]), flat(acs[t]), flat(xh[t + 1])[(F + 1) * N:]
        if code == TANH:
            lstm_cell_tanh(z, cp, c, a, h, M)
        else:
            lstm_cell(code, z, cp, c, a, h, M)


@njit(**KERNEL)
def lstm_cell(code, z, cp, c, a, h, M):
    """One step's element-wise part, pass by pass (any φ; the reference for the fused one):
    the gates z = [i f g o] activated in place, c = f ⊙ c_{t−1} + i ⊙ g, a = φ(c), h = o ⊙ a."""
    i, f, g, o = z[:M], z[M:2 * M], z[2 * M:3 * M], z[3 * M:]
    activate(SIGMOID, z[:2 * M])
    activate(code, g)
    activate(SIGMOID, o)
    for j in range(M):
        c[j] = f[j] * cp[j] + i[j] * g[j]
    a[:] = c
    activate(code, a)
    for j in range(M):
        h[j] = o[j] * a[j]


@njit(**KERNEL)
def lstm_cell_tanh(z, cp, c, a, h, M):
    """:func:`lstm_cell` for φ = tanh with c, φ(c) and h in one pass (the same operations, so
    the same bits). The gates keep their own passes: all five σ/tanh in one loop ran 4 % slower
    (AVX2 register spills)."""
    i, f, g, o = z[:M], z[M:2 * M], z[2 * M:3 * M], z[3 * M:]
    activate(SIGMOID, z[:2 * M])
    activate(TANH, g)
    activate(SIGMOID, o)
    for j in range(M):
        cj = f[j] * cp[j] + i[j] * g[j]
        aj = tanh(cj)
        c[j], a[j], h[j] = cj, aj, o[j] * aj


@njit(**KERNEL)
def lstm_backward(dseq, dlast, W, xh, gates, cs, acs, code, truncate, need_dx, dg, dh, dc, dWt, dxs, hn2):
    """BPTT through the LSTM, from t = T down to 1, with dh = ∂L/∂h_t and dc = ∂L/∂c_t:

        dc ← dc (from c_{t+1}: already ⊙ f_{t+1}) + dh ⊙ o ⊙ φ′(c_t)
        δ_i = dc ⊙ g ⊙ σ′(i),  δ_f = dc ⊙ c_{t−1} ⊙ σ′(f),  δ_g = dc ⊙ i ⊙ φ′(g),
        δ_o = dh ⊙ φ(c_t) ⊙ σ′(o);   ∂L/∂h_{t−1} = Wh δ_t,  ∂L/∂c_{t−1} = dc ⊙ f

    dWt (G, K) receives (∂L/∂W)ᵀ (:func:`accumulate_weight_gradient_transposed`).
    """
    T, G, N = dg.shape
    H = G // 4
    M = H * N
    F = xh.shape[1] - 1 - H
    k = slope_coefficients(code, dg)
    dh[:] = 0
    dc[:] = 0
    for t in range(T - 1, -1, -1):
        hn2[t] = add_port_gradients(dh, dseq, dlast, t, T - 1)
        z, d = flat(gates[t]), flat(dg[t])
        i, f, g, o = z[:M], z[M:2 * M], z[2 * M:3 * M], z[3 * M:]
        di, df, dgg, do = d[:M], d[M:2 * M], d[2 * M:3 * M], d[3 * M:]
        a, cp, dhf, dcf = flat(acs[t]), flat(cs[t]), flat(dh), flat(dc)
        for j in range(M):
            dcc = dcf[j] + dhf[j] * o[j] * slope(k, a[j])
            di[j] = dcc * g[j] * sigmoid_slope(i[j])
            df[j] = dcc * cp[j] * sigmoid_slope(f[j])
            dgg[j] = dcc * i[j] * slope(k, g[j])
            do[j] = dhf[j] * a[j] * sigmoid_slope(o[j])
            dcf[j] = dcc * f[j]
        accumulate_weight_gradient_transposed(xh[t], dg[t], dWt, F, t, T)
        go_on = t > 0 and not cut_here(T, t, truncate)
        propagate(W, F, dg[t], dh, dxs, t, need_dx, go_on)
        if t > 0 and not go_on:
            dh[:] = 0
            dc[:] = 0


# ---- GRU --------------------------------------------------------------------------------------
@njit(**KERNEL)
def gru_forward(x, wx, wh, code, reset_after, xh, gates, hn, hw):
    """GRU, gates in PyTorch's order r, z, n, with wx = [Wx; bx] and wh = [bh; Wh]
    (x-part a = x_t Wx + bx):

        r = σ(a_r + h_{t−1} Wh_r + bh_r),  z = σ(a_z + h_{t−1} Wh_z + bh_z)
        reset after:  n = φ(a_n + r ⊙ (h_{t−1} Wh_n + bh_n))        (PyTorch; ONNX lbr = 1)
        reset before: n = φ(a_n + (r ⊙ h_{t−1}) Wh_n + bh_n)        (Cho et al.; ONNX lbr = 0)
        h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}

    Keeps gates (T, 3H, N) = r, z, n and hn (T, H+1, N): rows 1… hold h_{t−1} Wh_n + bh_n
    (reset after) or [1; r ⊙ h_{t−1}] (reset before). hw (3H, N) is work space.
    """
    N, T, F = x.shape
    G = wx.shape[1]
    H = G // 3
    M = H * N
    load_inputs(x, xh)
    for t in range(T):
        gemm(True, False, G, N, F + 1, wx, G, xh[t], N, False, gates[t], N)
        rows = flat(xh[t])[F * N:]  # [1; h_{t−1}]
        hp = flat(xh[t])[(F + 1) * N:]
        z, w = flat(gates[t]), flat(hw)
        r, u, nn = z[:M], z[M:2 * M], z[2 * M:]
        gemm(True, False, G if reset_after else 2 * H, N, H + 1, wh, G, rows, N, False, hw, N)
        for j in range(2 * M):
            z[j] += w[j]
        activate(SIGMOID, z[:2 * M])
        hnt = flat(hn[t])
        if reset_after:
            for j in range(M):
                hnt[N + j] = w[2 * M + j]
                nn[j] += r[j] * w[2 * M + j]
        else:
            hnt[:N] = 1
            for j in range(M):
                hnt[N + j] = r[j] * hp[j]
            gemm(True, False, H, N, H + 1, flat(wh)[2 * H:], G, hn[t], N, False, hw, N)
            for j in range(M):
                nn[j] += w[j]
        activate(code, nn)
        h = flat(xh[t + 1])[(F + 1) * N:]
        for j in range(M):
            h[j] = nn[j] + u[j] * (hp[j] - nn[j])


@njit(**KERNEL)
def gru_backward(dseq, dlast, wx, wh, xh, gates, hn, code, reset_after, truncate, need_dx,
                 dgx, dgh, dh, carry, drh, dwx, dwh, dxs, hn2):
    """BPTT through the GRU, from t = T down to 1, with dh = ∂L/∂h_t:

        δ_n = dh ⊙ (1 − z) ⊙ φ′(n),   δ_z = dh ⊙ (h_{t−1} − n) ⊙ σ′(z)
        reset after:  δ_r = δ_n ⊙ hn ⊙ σ′(r); the h side of n gets δ_n ⊙ r:
                      ∂L/∂h_{t−1} = dh ⊙ z + Wh [δ_r; δ_z; δ_n ⊙ r]
        reset before: u = Wh_n δ_n (= ∂L/∂(r ⊙ h_{t−1})), δ_r = u ⊙ h_{t−1} ⊙ σ′(r):
                      ∂L/∂h_{t−1} = dh ⊙ z + u ⊙ r + Wh_rz [δ_r; δ_z]

    dgx (T, 3H, N) receives δ on the x side, dgh the h side (reset after only). dwx, dwh
    accumulate the gradients of [Wx; bx] and [bh; Wh].
    """
    T, G, N = dgx.shape
    H = G // 3
    M = H * N
    F = xh.shape[1] - 1 - H
    k = slope_coefficients(code, dgx)
    dh[:] = 0
    for t in range(T - 1, -1, -1):
        hn2[t] = add_port_gradients(dh, dseq, dlast, t, T - 1)
        z, d, g, c = flat(gates[t]), flat(dgx[t]), flat(dh), flat(carry)
        hp, rows = flat(xh[t])[(F + 1) * N:], flat(xh[t])[F * N:]
        r, u, nn = z[:M], z[M:2 * M], z[2 * M:]
        dr, du, dn = d[:M], d[M:2 * M], d[2 * M:]
        for j in range(M):
            dn[j] = (g[j] - g[j] * u[j]) * slope(k, nn[j])
            du[j] = g[j] * (hp[j] - nn[j]) * sigmoid_slope(u[j])
            c[j] = g[j] * u[j]
        acc = t < T - 1
        go_on = t > 0 and not cut_here(T, t, truncate)
        if reset_after:
            e, hnt = flat(dgh[t]), flat(hn[t])[N:]
            for j in range(M):
                dr[j] = dn[j] * hnt[j] * sigmoid_slope(r[j])
                e[j] = dr[j]
                e[2 * M + j] = dn[j] * r[j]
            e[M:2 * M] = du
            gemm(False, True, H + 1, G, N, rows, N, dgh[t], N, acc, dwh, G)
            if go_on:
                gemm(False, False, H, N, G, flat(wh)[G:], G, dgh[t], N, False, dh, N)
        else:
            gemm(False, False, H, N, H, flat(wh)[G + 2 * H:], G, dn, N, False, drh, N)
            v = flat(drh)
            for j in range(M):
                dr[j] = v[j] * hp[j] * sigmoid_slope(r[j])
                c[j] += v[j] * r[j]
            gemm(False, True, H + 1, 2 * H, N, rows, N, dgx[t], N, acc, dwh, G)
            gemm(False, True, H + 1, H, N, hn[t], N, dn, N, acc, flat(dwh)[2 * H:], G)
            if go_on:
                gemm(False, False, H, N, 2 * H, flat(wh)[G:], G, dgx[t], N, False, dh, N)
        gemm(False, True, F + 1, G, N, xh[t], N, dgx[t], N, acc, dwx, G)
        if need_dx:
            gemm(False, False, F, N, G, wx, G, dgx[t], N, False, dxs[t], N)
        if go_on:
            for j in range(M):
                g[j] += c[j]
        elif t > 0:
            dh[:] = 0
