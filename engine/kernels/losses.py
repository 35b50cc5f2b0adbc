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


@njit(cache=True, nogil=True)
def mdn_nll_kernel(out: np.ndarray, t: np.ndarray, dout: np.ndarray) -> float:
    """Mixture density negative log-likelihood on MixtureDensity outputs.

    ``out`` (N, 3K) holds [π_1…π_K, μ_1…μ_K, σ_1…σ_K] per position, ``t`` (N, 1) the target y.
    With log N_k = −½ log 2π − log σ_k − ½((y − μ_k)/σ_k)² and l_k = log π_k + log N_k:

        L = −(1/N) Σ_n logsumexp_k(l_k)
        ∂L/∂π_k = −N_k / p(y) / N          (= −γ_k/π_k / N, with γ_k = e^(l_k − lse))
        ∂L/∂μ_k = −γ_k (y − μ_k)/σ_k² / N
        ∂L/∂σ_k = γ_k (1 − ((y − μ_k)/σ_k)²)/σ_k / N

    ∂L/∂π_k is formed as e^(log N_k − lse), never as γ_k/π_k, so a component whose weight
    underflows to 0 still gets a finite gradient.
    """
    n, width = out.shape
    k = width // 3
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    total = 0.0
    logn = np.empty(k)
    logl = np.empty(k)
    for i in range(n):
        y = t[i, 0]
        m = -math.inf
        for j in range(k):
            sigma = out[i, 2 * k + j]
            u = (y - out[i, k + j]) / sigma
            logn[j] = -half_log_2pi - math.log(sigma) - 0.5 * u * u
            pi = out[i, j]
            logl[j] = math.log(pi) + logn[j] if pi > 0 else -math.inf
            if logl[j] > m:
                m = logl[j]
        s = 0.0
        for j in range(k):
            s += math.exp(logl[j] - m)
        lse = m + math.log(s)
        total -= lse
        for j in range(k):
            sigma = out[i, 2 * k + j]
            u = (y - out[i, k + j]) / sigma
            gamma = math.exp(logl[j] - lse)
            dout[i, j] = -math.exp(logn[j] - lse) / n
            dout[i, k + j] = -gamma * u / sigma / n
            dout[i, 2 * k + j] = gamma * (1.0 - u * u) / sigma / n
    return total / n
