"""Loss kernels: value and gradient with respect to the network output in one pass.

Kernels are leaves: they import nothing from the engine above them. The declarations
(:data:`engine.losses.LOSSES`), target preparation and the last-axis rule live in
:mod:`engine.losses`; the fused whole-step path (:mod:`engine.kernels.mlp`) calls these
directly. Sums accumulate in float64 scalars whatever the arrays' dtype.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def mse_kernel(out: np.ndarray, t: np.ndarray, dout: np.ndarray) -> float:
    """L = (1/n) Σ (o − t)²,  ∂L/∂o = 2(o − t)/n  (n = number of elements)."""
    n = out.size
    total = 0.0
    scale = 2.0 / n
    for i in range(n):
        d = out[i] - t[i]
        total += d * d
        dout[i] = scale * d
    return total / n


@njit(cache=True, nogil=True)
def mae_kernel(out: np.ndarray, t: np.ndarray, dout: np.ndarray) -> float:
    """L = (1/n) Σ |o − t|,  ∂L/∂o = sign(o − t)/n."""
    n = out.size
    total = 0.0
    for i in range(n):
        d = out[i] - t[i]
        total += abs(d)
        dout[i] = (1.0 if d > 0 else (-1.0 if d < 0 else 0.0)) / n
    return total / n


@njit(cache=True, nogil=True)
def softmax_ce_kernel(z: np.ndarray, t: np.ndarray, dz: np.ndarray) -> float:
    """Softmax cross-entropy on logits z (N, K) with target distributions t (N, K).

    L = (1/N) Σ_n [logsumexp(z_n) − Σ_k t_nk z_nk],  ∂L/∂z = (softmax(z) − t)/N.
    Subtracting the row maximum keeps exp() from overflowing.
    """
    n, k = z.shape
    total = 0.0
    for i in range(n):
        m = z[i, 0]
        for j in range(1, k):
            if z[i, j] > m:
                m = z[i, j]
        s = 0.0
        for j in range(k):
            s += math.exp(z[i, j] - m)
        lse = m + math.log(s)
        tz = 0.0
        tsum = 0.0
        for j in range(k):
            tz += t[i, j] * z[i, j]
            tsum += t[i, j]
            dz[i, j] = math.exp(z[i, j] - lse)
        for j in range(k):
            dz[i, j] = (dz[i, j] * tsum - t[i, j]) / n
        total += lse * tsum - tz
    return total / n


@njit(cache=True, nogil=True)
def bce_logits_kernel(z: np.ndarray, t: np.ndarray, dz: np.ndarray) -> float:
    """Binary cross-entropy on logits: L = mean[max(z,0) − z·t + log(1 + e^−|z|)],
    ∂L/∂z = (σ(z) − t)/n. Never evaluates log(σ) directly, so it cannot overflow."""
    n = z.size
    total = 0.0
    for i in range(n):
        zi = z[i]
        total += max(zi, 0.0) - zi * t[i] + math.log1p(math.exp(-abs(zi)))
        if zi >= 0:
            s = 1.0 / (1.0 + math.exp(-zi))
        else:
            e = math.exp(zi)
            s = e / (1.0 + e)
        dz[i] = (s - t[i]) / n
    return total / n
