"""Optimizer, clipping, weight-decay and gradient-norm kernels over the flat buffers.

Every trainable number of a model lives in one contiguous 1-D ``params`` array and its
gradient in ``grads`` (see :mod:`engine.compiler`), so each of these is one Numba call per
training step whatever the number of layers. Arithmetic is done in float64 scalars and the
result stored in the arrays' own dtype (float32 by default). The update rules are those of
``torch.optim`` (same order of operations, same ε placement) so that the exported PyTorch
training script reproduces our steps. Plain NumPy references live in the tests.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def sgd_update(p, g, buf, lr, momentum, nesterov):
    """SGD with optional (Nesterov) momentum, dampening 0, as ``torch.optim.SGD``.

    μ = 0:  p ← p − η g.
    μ > 0:  v ← μ v + g;  p ← p − η v,  or with Nesterov  p ← p − η (g + μ v).
    """
    n = p.shape[0]
    if momentum == 0.0:
        for i in range(n):
            p[i] = p[i] - lr * np.float64(g[i])
        return
    for i in range(n):
        gi = np.float64(g[i])
        buf[i] = momentum * np.float64(buf[i]) + gi
        v = np.float64(buf[i])
        d = gi + momentum * v if nesterov else v
        p[i] = np.float64(p[i]) - lr * d


@njit(cache=True, nogil=True)
def adagrad_update(p, g, s, clr, eps):
    """AdaGrad, as ``torch.optim.Adagrad``: s ← s + g²;  p ← p − η' g / (√s + ε).

    η' = η / (1 + (t−1)·lr_decay) is computed by the caller.
    """
    for i in range(p.shape[0]):
        gi = np.float64(g[i])
        s[i] = np.float64(s[i]) + gi * gi
        p[i] = np.float64(p[i]) - clr * gi / (math.sqrt(np.float64(s[i])) + eps)


@njit(cache=True, nogil=True)
def rmsprop_update(p, g, sq, gavg, buf, lr, alpha, eps, momentum, centered):
    """RMSProp, as ``torch.optim.RMSprop``.

    v ← α v + (1−α) g²;  d = √v + ε  (centered: m ← α m + (1−α) g,  d = √(v − m²) + ε).
    μ = 0:  p ← p − η g / d.   μ > 0:  b ← μ b + g / d;  p ← p − η b.
    """
    for i in range(p.shape[0]):
        gi = np.float64(g[i])
        sq[i] = alpha * np.float64(sq[i]) + (1.0 - alpha) * gi * gi
        v = np.float64(sq[i])
        if centered:
            gavg[i] = alpha * np.float64(gavg[i]) + (1.0 - alpha) * gi
            m = np.float64(gavg[i])
            v = v - m * m
        d = math.sqrt(max(v, 0.0)) + eps
        if momentum > 0.0:
            buf[i] = momentum * np.float64(buf[i]) + gi / d
            p[i] = np.float64(p[i]) - lr * np.float64(buf[i])
        else:
            p[i] = np.float64(p[i]) - lr * gi / d


@njit(cache=True, nogil=True)
def adam_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, t):
    """Adam / AdamW at step t ≥ 1, as ``torch.optim.Adam`` / ``AdamW``.

    AdamW first decays decoupled: p ← p (1 − η λ)  (λ = 0 gives Adam). Then
    m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
    p ← p − (η / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
    """
    step_size = lr / (1.0 - beta1 ** t)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** t)
    shrink = 1.0 - lr * weight_decay
    for i in range(p.shape[0]):
        gi = np.float64(g[i])
        m[i] = beta1 * np.float64(m[i]) + (1.0 - beta1) * gi
        v[i] = beta2 * np.float64(v[i]) + (1.0 - beta2) * gi * gi
        pi = np.float64(p[i])
        if weight_decay != 0.0:
            p[i] = pi * shrink
            pi = np.float64(p[i])
        denom = math.sqrt(np.float64(v[i])) / bc2_sqrt + eps
        p[i] = pi - step_size * np.float64(m[i]) / denom


@njit(cache=True, nogil=True)
def sum_squares(x):
    """Σ xᵢ², accumulated in float64."""
    acc = 0.0
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        acc += xi * xi
    return acc


@njit(cache=True, nogil=True)
def clip_global_norm(g, max_norm):
    """‖g‖₂ before clipping; scales g by c = max_norm/(‖g‖+10⁻⁶) when c < 1 (torch's rule).

    A non-finite norm leaves g untouched so the trainer can report the divergence.
    """
    norm = math.sqrt(sum_squares(g))
    if not math.isfinite(norm):
        return norm
    c = max_norm / (norm + 1e-6)
    if c < 1.0:
        for i in range(g.shape[0]):
            g[i] = np.float64(g[i]) * c
    return norm


@njit(cache=True, nogil=True)
def weight_decay(p, g, mask, l1, l2):
    """g ← g + mask·(λ₂ w + λ₁ sign w); returns the penalty λ₁ Σ|w| + ½ λ₂ Σ w² over the mask."""
    abs_sum = 0.0
    sq_sum = 0.0
    for i in range(p.shape[0]):
        if mask[i] == 0:
            continue
        w = np.float64(p[i])
        s = 1.0 if w > 0.0 else (-1.0 if w < 0.0 else 0.0)
        g[i] = np.float64(g[i]) + l2 * w + l1 * s
        abs_sum += abs(w)
        sq_sum += w * w
    return l1 * abs_sum + 0.5 * l2 * sq_sum


@njit(cache=True, nogil=True)
def segment_l2_norms(g, offsets, out):
    """out[k] = ‖g[offsets[k]:offsets[k+1]]‖₂ for every segment (one per node), in float64."""
    for k in range(offsets.shape[0] - 1):
        acc = 0.0
        for i in range(offsets[k], offsets[k + 1]):
            gi = np.float64(g[i])
            acc += gi * gi
        out[k] = math.sqrt(acc)
