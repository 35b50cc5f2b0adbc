"""Optimizer, clipping, weight-decay and gradient-norm kernels over the flat buffers.

Every trainable number of a model lives in one contiguous 1-D ``params`` array and its
gradient in ``grads`` (see :mod:`engine.compiler`), so each of these is one Numba call per
training step whatever the number of layers. The update rules are those of ``torch.optim``
(same order of operations, same ε placement) so that the exported PyTorch training script
reproduces our steps. Plain NumPy references live in the tests.

:func:`fused_step` is the one pass of a training step after backpropagation: it walks the
buffer in blocks of :data:`BLOCK` elements and, per block, first adds (s·g)² to the norm of
the node that owns it, then applies the optimizer to the same elements while they are still
in the L1 cache. So the per-node gradient norms cost no extra pass over memory.

Arithmetic on the arrays is in their own dtype (float32 models: float32, as torch.optim
does; float64 models stay exact in float64) and written as plain loops LLVM vectorises.
Sums of squares, where accuracy needs it, accumulate in float64 over :data:`LANES`
independent partial sums (which is what lets them vectorise without reordering a single
sum, since fastmath stays off) and are then added pairwise.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: Elements per block of :func:`fused_step`: 16 KB of float32 gradient, well inside L1.
BLOCK = 4096
#: Independent float64 partial sums in :func:`sum_squares`. 64 keeps the inner loop a loop
#: (LLVM vectorises it); a short one would be unrolled into scalar code instead.
LANES = 64
#: Optimizer kinds of :func:`fused_step` and the layout of its ``hp`` array
#: (``hp[0]`` = learning rate η, ``hp[1]`` = step t ≥ 1 for every kind):
SGD, ADAGRAD, RMSPROP, ADAM = range(4)
#:   SGD      hp[2:] = momentum μ, nesterov (0/1)
#:   ADAGRAD  hp[2:] = lr_decay, ε
#:   RMSPROP  hp[2:] = α, ε, momentum μ, centered (0/1)
#:   ADAM     hp[2:] = β1, β2, ε, decoupled weight decay λ (0 for Adam, AdamW's λ)


# ---- sums of squares ------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def sum_squares(x: np.ndarray) -> float:
    """Σ xᵢ², accumulated in float64 over LANES partial sums, then pairwise."""
    acc = np.zeros(LANES)
    n = x.shape[0] // LANES * LANES
    for r in range(0, n, LANES):
        for j in range(LANES):
            v = np.float64(x[r + j])
            acc[j] += v * v
    tail = 0.0
    for i in range(n, x.shape[0]):
        v = np.float64(x[i])
        tail += v * v
    width = LANES
    while width > 1:
        width //= 2
        for j in range(width):
            acc[j] += acc[j + width]
    return acc[0] + tail


@njit(cache=True, nogil=True)
def scale_in_place(x: np.ndarray, s: float) -> None:
    """x ← s·x in x's dtype."""
    c = x.dtype.type(s)
    for i in range(x.shape[0]):
        x[i] = x[i] * c


@njit(cache=True, nogil=True)
def segment_l2_norms(g, offsets, out):
    """out[k] = ‖g[offsets[k]:offsets[k+1]]‖₂ for every segment (one per node), in float64."""
    for k in range(offsets.shape[0] - 1):
        out[k] = math.sqrt(sum_squares(g[offsets[k]:offsets[k + 1]]))


@njit(cache=True, nogil=True)
def clip_global_norm(g, max_norm):
    """‖g‖₂ before clipping; scales g by c = max_norm/(‖g‖+10⁻⁶) when c < 1 (torch's rule).

    A non-finite norm leaves g untouched so the trainer can report the divergence.
    """
    norm = math.sqrt(sum_squares(g))
    if math.isfinite(norm):
        c = max_norm / (norm + 1e-6)
        if c < 1.0:
            scale_in_place(g, c)
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


# ---- the update rules, one block at a time (all arithmetic in the arrays' dtype) -------------
@njit(cache=True, nogil=True)
def sgd_block(p, g, buf, lr, momentum, nesterov):
    """SGD with optional (Nesterov) momentum, dampening 0, as ``torch.optim.SGD``.

    μ = 0:  p ← p − η g.
    μ > 0:  v ← μ v + g;  p ← p − η v,  or with Nesterov  p ← p − η (g + μ v).
    """
    dt = p.dtype.type
    eta, mu = dt(lr), dt(momentum)
    if momentum == 0.0:
        for i in range(p.shape[0]):
            p[i] = p[i] - eta * g[i]
    elif nesterov:
        for i in range(p.shape[0]):
            v = mu * buf[i] + g[i]
            buf[i] = v
            p[i] = p[i] - eta * (g[i] + mu * v)
    else:
        for i in range(p.shape[0]):
            v = mu * buf[i] + g[i]
            buf[i] = v
            p[i] = p[i] - eta * v


@njit(cache=True, nogil=True)
def adagrad_block(p, g, s, clr, eps):
    """AdaGrad, as ``torch.optim.Adagrad``: s ← s + g²;  p ← p − η' g / (√s + ε).

    η' = η / (1 + (t−1)·lr_decay) is computed by the caller.
    """
    dt = p.dtype.type
    eta, e = dt(clr), dt(eps)
    for i in range(p.shape[0]):
        si = s[i] + g[i] * g[i]
        s[i] = si
        p[i] = p[i] - eta * g[i] / (np.sqrt(si) + e)


@njit(cache=True, nogil=True)
def rmsprop_block(p, g, sq, gavg, buf, lr, alpha, eps, momentum, centered):
    """RMSProp, as ``torch.optim.RMSprop``.

    v ← α v + (1−α) g²;  d = √v + ε  (centered: m ← α m + (1−α) g,  d = √(v − m²) + ε).
    μ = 0:  p ← p − η g / d.   μ > 0:  b ← μ b + g / d;  p ← p − η b.
    """
    dt = p.dtype.type
    eta, a, a1, e, mu, zero = dt(lr), dt(alpha), dt(1.0 - alpha), dt(eps), dt(momentum), dt(0.0)
    for i in range(p.shape[0]):
        gi = g[i]
        v = a * sq[i] + a1 * gi * gi
        sq[i] = v
        if centered:
            m = a * gavg[i] + a1 * gi
            gavg[i] = m
            v = max(v - m * m, zero)
        d = np.sqrt(v) + e
        if momentum > 0.0:
            b = mu * buf[i] + gi / d
            buf[i] = b
            p[i] = p[i] - eta * b
        else:
            p[i] = p[i] - eta * gi / d


@njit(cache=True, nogil=True)
def adam_block(p, g, m, v, step_size, beta1, beta2, bc2_sqrt, eps, shrink):
    """Adam / AdamW, as ``torch.optim.Adam`` / ``AdamW``; the caller gives the step's scalars.

    AdamW first decays decoupled: p ← p·(1 − η λ)  (``shrink``; 1 for Adam). Then
    m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
    p ← p − (η / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
    """
    dt = p.dtype.type
    b1, c1, b2, c2 = dt(beta1), dt(1.0 - beta1), dt(beta2), dt(1.0 - beta2)
    size, bc2, e, keep = dt(step_size), dt(bc2_sqrt), dt(eps), dt(shrink)
    for i in range(p.shape[0]):
        gi = g[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * keep - size * mi / (np.sqrt(vi) / bc2 + e)  # keep = 1 is exact for Adam


@njit(cache=True, nogil=True)
def update_block(kind, hp, p, g, state, a, b):
    """Apply optimizer ``kind`` with hyper-parameters ``hp`` to elements a..b of the buffers."""
    lr, t = hp[0], hp[1]
    pb, gb = p[a:b], g[a:b]
    if kind == SGD:
        sgd_block(pb, gb, state[0, a:b], lr, hp[2], hp[3] != 0.0)
    elif kind == ADAGRAD:
        adagrad_block(pb, gb, state[0, a:b], lr / (1.0 + (t - 1.0) * hp[2]), hp[3])
    elif kind == RMSPROP:
        rmsprop_block(pb, gb, state[0, a:b], state[1, a:b], state[2, a:b], lr, hp[2], hp[3], hp[4],
                      hp[5] != 0.0)
    else:
        beta1, beta2 = hp[2], hp[3]
        adam_block(pb, gb, state[0, a:b], state[1, a:b], lr / (1.0 - beta1 ** t), beta1, beta2,
                   math.sqrt(1.0 - beta2 ** t), hp[4], 1.0 - lr * hp[5])


# ---- the fused pass ---------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def fused_step(kind, hp, p, g, state, offsets, norms, scale, apply):
    """Per-node gradient norms and the optimizer update in one pass; True if it was applied.

    For every node k (elements offsets[k]..offsets[k+1]) and block of BLOCK elements:
    g ← s·g when s ≠ 1 (the clipping factor), norms[k] += Σ g² (float64), then, while
    ``apply`` holds and every sum so far is finite, the update of ``kind`` on the block.
    The first non-finite block stops the update there (it and all later blocks keep their
    values; the norms are still completed, so the trainer can name the layer).
    """
    ok = apply
    for k in range(offsets.shape[0] - 1):
        total = 0.0
        for a in range(offsets[k], offsets[k + 1], BLOCK):
            b = min(a + BLOCK, offsets[k + 1])
            gb = g[a:b]
            if scale != 1.0:
                scale_in_place(gb, scale)
            total += sum_squares(gb)
            if ok and math.isfinite(total):
                update_block(kind, hp, p, g, state, a, b)
            else:
                ok = False
        norms[k] = math.sqrt(total)
    return ok
