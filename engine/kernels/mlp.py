"""The fused whole-step kernel: forward, loss and backward of a plain chain in one call.

The general path (:class:`engine.compiler.Model`) runs a Python loop over the nodes, which
costs a few microseconds per layer: more than the arithmetic of a small or deep narrow
network. A graph that is a single chain of layers that declare a fused form (``fuse`` on
their LayerType: Dense, element-wise Activation), optionally ending in a layer the loss
absorbs (Softmax, sigmoid), instead runs as one ``@njit`` call per training step
(:func:`chain_step`), driven by an op table that :mod:`engine.fused` builds. It computes
exactly what the general path computes, through the same activation and loss kernels,
writing ∂L/∂W, ∂L/∂b (and PReLU's ∂L/∂α) into the model's flat gradient buffer:

    forward   z = x W + b,  y = f(z)
    loss      L(z_last, t) and δ = ∂L/∂z_last            (engine.kernels.losses)
    backward  δ ← δ ⊙ f'(z)  through an activation,
              ∂L/∂W = xᵀ δ,  ∂L/∂b = Σ_batch δ,  δ ← δ Wᵀ  through a Dense,
              stopping at the first layer that has parameters (∂L/∂input is never needed).

Every node's output lives in one flat workspace (a region per node, sized for the largest
batch seen), so a step allocates nothing. Matrix products below :data:`SMALL_MATMUL`
multiply-adds use plain loops (a BLAS call costs ~0.5–1 µs); larger ones go to NumPy's
BLAS through :func:`engine.kernels.blas.matmul`.

Like every kernel module this one is a leaf: it imports only other kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.activations import (
    ELU,
    GELU,
    HARD_TANH,
    IDENTITY,
    LEAKY_RELU,
    PRELU,
    RELU,
    SCALED_TANH,
    SIGMOID,
    SOFTPLUS,
    TANH,
    act_grad_scalar,
    act_scalar,
)
from engine.kernels.blas import matmul
from engine.kernels.losses import bce_logits_kernel, mae_kernel, mse_kernel, softmax_ce_kernel

#: Operation kinds in the op table.
DENSE, ACT = 0, 1
#: Columns of the op table (one int64 row per operation).
KIND, FAN_IN, FAN_OUT, W_OFF, B_OFF, CODE, SRC, DST = range(8)
N_COLS = 8
#: Loss codes understood by :func:`chain_step`.
LOSS_CODES = {"mse": 0, "mae": 1, "cross_entropy": 2, "bce_logits": 3}
#: Below this many multiply-adds (n·k·m) a matrix product runs as plain loops, not BLAS.
SMALL_MATMUL = 512


# ---- matrix products ----------------------------------------------------------------
@njit(cache=True, nogil=True)
def dense_forward(gemm: int, x: np.ndarray, w: np.ndarray, b: np.ndarray, has_bias: bool, y: np.ndarray) -> None:
    """y = x W (+ b) for x (n, k), W (k, m), y (n, m)."""
    n, k = x.shape
    m = w.shape[1]
    if n * k * m <= SMALL_MATMUL:
        for i in range(n):
            for j in range(m):
                y[i, j] = 0.0
            for p in range(k):
                xv = x[i, p]
                for j in range(m):
                    y[i, j] += xv * w[p, j]
    else:
        matmul(gemm, x, False, w, False, y)
    if has_bias:
        for i in range(n):
            for j in range(m):
                y[i, j] += b[j]


@njit(cache=True, nogil=True)
def dense_param_grads(gemm: int, x: np.ndarray, d: np.ndarray, gw: np.ndarray, gb: np.ndarray,
                      has_bias: bool) -> None:
    """∂L/∂W = xᵀ δ (k, m) and ∂L/∂b = Σ_i δ_i (m,) for x (n, k), δ (n, m)."""
    n, k = x.shape
    m = d.shape[1]
    if n * k * m <= SMALL_MATMUL:
        for p in range(k):
            for j in range(m):
                gw[p, j] = 0.0
        for i in range(n):
            for p in range(k):
                xv = x[i, p]
                for j in range(m):
                    gw[p, j] += xv * d[i, j]
    else:
        matmul(gemm, x, True, d, False, gw)
    if has_bias:
        for j in range(m):
            gb[j] = 0.0
        for i in range(n):
            for j in range(m):
                gb[j] += d[i, j]


@njit(cache=True, nogil=True)
def dense_input_grad(gemm: int, d: np.ndarray, w: np.ndarray, dx: np.ndarray) -> None:
    """∂L/∂x = δ Wᵀ (n, k) for δ (n, m), W (k, m)."""
    n, m = d.shape
    k = w.shape[0]
    if n * k * m <= SMALL_MATMUL:
        for i in range(n):
            for p in range(k):
                s = d[i, 0] * w[p, 0]
                for j in range(1, m):
                    s += d[i, j] * w[p, j]
                dx[i, p] = s
    else:
        matmul(gemm, d, False, w, True, dx)


# ---- activations ---------------------------------------------------------------------
@njit(cache=True, nogil=True)
def fast_act_forward(code: int, z: np.ndarray, y: np.ndarray, alpha: float) -> None:
    """y = f(z) as :func:`act_forward`, with the switch on ``code`` hoisted out of the loop.

    Each branch calls the inlined ``act_scalar`` with a constant code, so the compiler keeps
    one formula per loop and can vectorise it (the code-switched loop costs ~5 ns/value).
    """
    n = z.size
    if code == SIGMOID:
        for i in range(n):
            y[i] = act_scalar(SIGMOID, z[i], alpha)
    elif code == TANH:
        for i in range(n):
            y[i] = act_scalar(TANH, z[i], alpha)
    elif code == SCALED_TANH:
        for i in range(n):
            y[i] = act_scalar(SCALED_TANH, z[i], alpha)
    elif code == RELU:
        for i in range(n):
            y[i] = act_scalar(RELU, z[i], alpha)
    elif code == LEAKY_RELU:
        for i in range(n):
            y[i] = act_scalar(LEAKY_RELU, z[i], alpha)
    elif code == PRELU:
        for i in range(n):
            y[i] = act_scalar(PRELU, z[i], alpha)
    elif code == ELU:
        for i in range(n):
            y[i] = act_scalar(ELU, z[i], alpha)
    elif code == SOFTPLUS:
        for i in range(n):
            y[i] = act_scalar(SOFTPLUS, z[i], alpha)
    elif code == HARD_TANH:
        for i in range(n):
            y[i] = act_scalar(HARD_TANH, z[i], alpha)
    elif code == GELU:
        for i in range(n):
            y[i] = act_scalar(GELU, z[i], alpha)
    else:
        for i in range(n):
            y[i] = act_scalar(IDENTITY, z[i], alpha)


@njit(cache=True, nogil=True)
def fast_act_backward(code: int, z: np.ndarray, y: np.ndarray, dy: np.ndarray, dz: np.ndarray,
                      alpha: float) -> float:
    """dz = dy ⊙ f'(z) as :func:`act_backward` (switch hoisted); returns ∂L/∂α for PReLU only."""
    n = z.size
    dalpha = 0.0
    if code == SIGMOID:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(SIGMOID, z[i], y[i], alpha)
    elif code == TANH:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(TANH, z[i], y[i], alpha)
    elif code == SCALED_TANH:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(SCALED_TANH, z[i], y[i], alpha)
    elif code == RELU:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(RELU, z[i], y[i], alpha)
    elif code == LEAKY_RELU:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(LEAKY_RELU, z[i], y[i], alpha)
    elif code == PRELU:
        for i in range(n):
            zi = z[i]
            if zi <= 0:
                dalpha += dy[i] * zi
            dz[i] = dy[i] * act_grad_scalar(PRELU, zi, y[i], alpha)
    elif code == ELU:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(ELU, z[i], y[i], alpha)
    elif code == SOFTPLUS:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(SOFTPLUS, z[i], y[i], alpha)
    elif code == HARD_TANH:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(HARD_TANH, z[i], y[i], alpha)
    elif code == GELU:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(GELU, z[i], y[i], alpha)
    else:
        for i in range(n):
            dz[i] = dy[i] * act_grad_scalar(IDENTITY, z[i], y[i], alpha)
    return dalpha


# ---- the step -----------------------------------------------------------------------
@njit(cache=True, nogil=True)
def chain_loss(code: int, z: np.ndarray, t: np.ndarray, dz: np.ndarray) -> float:
    """The loss kernel of engine.losses selected by ``code``; writes ∂L/∂z into dz (n, K)."""
    if code == 2:
        return softmax_ce_kernel(z, t, dz)
    z1, t1, d1 = z.reshape(z.size), t.reshape(t.size), dz.reshape(dz.size)
    if code == 0:
        return mse_kernel(z1, t1, d1)
    if code == 1:
        return mae_kernel(z1, t1, d1)
    return bce_logits_kernel(z1, t1, d1)


@njit(cache=True, nogil=True)
def chain_step(params: np.ndarray, grads: np.ndarray, ops: np.ndarray, alphas: np.ndarray,
               ws: np.ndarray, cap: int, delta_cols: np.ndarray, X: np.ndarray, T: np.ndarray,
               loss_code: int, gemm: int) -> float:
    """One training forward + loss + backward over the op table; returns the loss.

    The workspace is measured in columns of ``cap`` elements (``cap`` = largest batch). Op
    ``i`` reads its (n, fan_in) input from column ``ops[i, SRC]`` (−1: the batch X) and
    writes its (n, fan_out) output contiguously from column ``ops[i, DST]`` (element
    ``DST·cap``). δ ping-pongs between the regions at ``delta_cols``.
    """
    n = X.shape[0]
    nops = ops.shape[0]
    # forward
    for i in range(nops):
        k, m, src = ops[i, FAN_IN], ops[i, FAN_OUT], ops[i, SRC]
        out0 = ops[i, DST] * cap
        if ops[i, KIND] == DENSE:
            x = X if src < 0 else ws[src * cap:src * cap + n * k].reshape(n, k)
            w = params[ops[i, W_OFF]:ops[i, W_OFF] + k * m].reshape(k, m)
            bo = ops[i, B_OFF]
            b = params[max(bo, 0):max(bo, 0) + m]
            dense_forward(gemm, x, w, b, bo >= 0, ws[out0:out0 + n * m].reshape(n, m))
        else:
            z = X.reshape(X.size) if src < 0 else ws[src * cap:src * cap + n * k]
            code = ops[i, CODE]
            alpha = np.float64(params[ops[i, W_OFF]]) if code == PRELU else alphas[i]
            fast_act_forward(code, z, ws[out0:out0 + n * m], alpha)
    # loss
    last = nops - 1
    width = ops[last, FAN_OUT]
    out0 = ops[last, DST] * cap
    cur, other = delta_cols[0] * cap, delta_cols[1] * cap
    loss = chain_loss(loss_code, ws[out0:out0 + n * width].reshape(n, width), T,
                      ws[cur:cur + n * width].reshape(n, width))
    # backward, down to the first op that has parameters
    first = nops
    for i in range(nops):
        if ops[i, KIND] == DENSE or ops[i, CODE] == PRELU:
            first = i
            break
    for i in range(last, first - 1, -1):
        k, m, src = ops[i, FAN_IN], ops[i, FAN_OUT], ops[i, SRC]
        if ops[i, KIND] == ACT:
            z = X.reshape(X.size) if src < 0 else ws[src * cap:src * cap + n * k]
            y = ws[ops[i, DST] * cap:ops[i, DST] * cap + n * m]
            d = ws[cur:cur + n * m]
            code = ops[i, CODE]
            alpha = np.float64(params[ops[i, W_OFF]]) if code == PRELU else alphas[i]
            dalpha = fast_act_backward(code, z, y, d, d, alpha)
            if code == PRELU:
                grads[ops[i, W_OFF]] = dalpha
            continue
        x = X if src < 0 else ws[src * cap:src * cap + n * k].reshape(n, k)
        d2 = ws[cur:cur + n * m].reshape(n, m)
        wo, bo = ops[i, W_OFF], ops[i, B_OFF]
        gb = grads[max(bo, 0):max(bo, 0) + m]
        dense_param_grads(gemm, x, d2, grads[wo:wo + k * m].reshape(k, m), gb, bo >= 0)
        if i > first:
            dense_input_grad(gemm, d2, params[wo:wo + k * m].reshape(k, m), ws[other:other + n * k].reshape(n, k))
            cur, other = other, cur
    return loss
