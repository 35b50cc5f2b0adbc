"""Regularisation layers: Dropout and BatchNorm.

Both behave differently while training and while evaluating (``rt.training``): Dropout
only drops during training; BatchNorm normalises with the batch's statistics during
training and with its running averages afterwards.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError
from engine.layers.base import LayerType, ParamSpec, register


# ---- Dropout ------------------------------------------------------------------------
def _dropout_forward(rt, xs):
    """Inverted dropout: y = x ⊙ m / (1 − rate), m ~ Bernoulli(1 − rate); identity when evaluating.

    Scaling the kept values by 1/(1 − rate) keeps E[y] = x, so nothing changes at test time.
    The mask is drawn as U[0,1) < 1 − rate in float64 from ``rt.rng`` (same seed, same
    mask in float32 and float64).
    """
    x = xs[0]
    rate = rt.p["rate"]
    if not rt.training or rate == 0.0:
        rt.cache["mask"] = None
        return x
    if rt.rng is None:
        rt.rng = np.random.default_rng()
    mask = (rt.rng.random(x.shape) < 1.0 - rate).astype(x.dtype)
    mask *= 1.0 / (1.0 - rate)
    rt.cache["mask"] = mask
    return x * mask


def _dropout_backward(rt, dy):
    """∂L/∂x = ∂L/∂y ⊙ m / (1 − rate): dropped units pass no gradient."""
    mask = rt.cache.get("mask")
    return [dy if mask is None else dy * mask]


# Exporters (engine/export): identity when predicting; PyTorch keeps nn.Dropout for train.py.
def _dropout_onnx(ctx, n):
    return ctx.op("Dropout", [n.x[0], ctx.const(n.p["rate"], "ratio")])


register(LayerType(
    name="Dropout",
    category="regularisation",
    help="During training, sets each value to 0 with probability 'rate' and scales the others "
         "by 1/(1 − rate); when evaluating it does nothing. Units cannot rely on particular "
         "partners, which reduces overfitting (Srivastava et al. 2014). Typical rate: 0.1–0.5.",
    params=(
        ParamSpec("rate", "float", 0.5, "Probability of dropping each value during training "
                  "(0 = no dropout; must be below 1).", min=0.0, max=0.99),
    ),
    shape=lambda p, in_shapes: in_shapes[0],
    forward=_dropout_forward,
    backward=_dropout_backward,
    key_params=("rate",),
    exporters={"onnx": _dropout_onnx, "numpy": lambda ctx, n: n.x[0],
               "torch": lambda ctx, n: ctx.module(f"nn.Dropout(p={float(n.p['rate'])!r})")},
))


# ---- BatchNorm ----------------------------------------------------------------------
def _bn_layout(shape):
    """(features, reduction axes of the batch array, broadcast shape) for a per-example shape.

    (F,): per feature over the batch; (T, F): per feature over batch and time;
    (C, H, W): per channel over batch, height and width.
    """
    if len(shape) == 1:
        return shape[0], (0,), (1, shape[0])
    if len(shape) == 2:
        return shape[1], (0, 1), (1, 1, shape[1])
    if len(shape) == 3:
        return shape[0], (0, 2, 3), (1, shape[0], 1, 1)
    raise ShapeError(
        f"BatchNorm needs a (features,), (time, features) or (channels, height, width) input, "
        f"got {shape}; insert a Flatten or Reshape before it"
    )


def _bn_shape(p, in_shapes):
    _bn_layout(in_shapes[0])
    return in_shapes[0]


def _bn_params(p, in_shapes):
    n = _bn_layout(in_shapes[0])[0]
    return {"gamma": (n,), "beta": (n,)}


def _bn_buffers(p, in_shapes):
    n = _bn_layout(in_shapes[0])[0]
    return {"running_mean": (n,), "running_var": (n,)}


def _bn_init(p, in_shapes, rng):
    n = _bn_layout(in_shapes[0])[0]
    return {"gamma": np.ones(n), "beta": np.zeros(n)}


def _bn_init_buffers(p, in_shapes):
    n = _bn_layout(in_shapes[0])[0]
    return {"running_mean": np.zeros(n), "running_var": np.ones(n)}


def _bn_forward(rt, xs):
    """y = γ ⊙ (x − μ)/√(σ² + ε) + β.

    Training: μ, σ² are the batch's mean and biased variance, and the running averages move
    towards them: r ← (1 − m)·r + m·batch (the running variance takes the unbiased
    σ²·n/(n − 1), as PyTorch does). Evaluation: μ, σ² are the running averages.
    """
    x = xs[0]
    nf, axes, bshape = _bn_layout(x.shape[1:])
    eps = rt.p["eps"]
    if rt.training:
        n = x.size // nf  # values per feature
        mean = x.mean(axis=axes, dtype=np.float64).astype(x.dtype)  # float64 sums, dtype result
        xc = x - mean.reshape(bshape)
        var = np.square(xc).mean(axis=axes, dtype=np.float64).astype(x.dtype)
        mom = rt.p["momentum"]
        rm, rv = rt.B["running_mean"], rt.B["running_var"]
        rm *= 1.0 - mom
        rm += mom * mean
        rv *= 1.0 - mom
        rv += (mom * n / (n - 1) if n > 1 else mom) * var
    else:
        xc = x - rt.B["running_mean"].astype(x.dtype, copy=False).reshape(bshape)
        var = rt.B["running_var"].astype(x.dtype, copy=False)
        n = 0
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat = xc * inv_std.reshape(bshape)
    rt.cache.update(xhat=xhat, inv_std=inv_std, n=n, training=rt.training)
    return xhat * rt.W["gamma"].reshape(bshape) + rt.W["beta"].reshape(bshape)


def _bn_backward(rt, dy):
    """∂L/∂γ = Σ dy ⊙ x̂, ∂L/∂β = Σ dy (sums over the normalised axes), and through the
    batch statistics: ∂L/∂x = γ/√(σ²+ε) ⊙ (dy − mean(dy) − x̂ ⊙ mean(dy ⊙ x̂)).
    In evaluation mode μ, σ² are constants and ∂L/∂x = γ/√(σ²+ε) ⊙ dy.
    """
    xhat, inv_std, n = rt.cache["xhat"], rt.cache["inv_std"], rt.cache["n"]
    _, axes, bshape = _bn_layout(dy.shape[1:])
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    rt.G["gamma"][...] = dgamma
    rt.G["beta"][...] = dbeta
    if not rt.need_input_grad:
        return [None]
    scale = (rt.W["gamma"] * inv_std).reshape(bshape)
    if not rt.cache["training"]:
        return [dy * scale]
    inv_n = 1.0 / n
    return [scale * (dy - (dbeta * inv_n).reshape(bshape) - xhat * (dgamma * inv_n).reshape(bshape))]


# ---- BatchNorm exporters (engine/export): evaluation mode, with the running statistics ------
def _bn_onnx(ctx, n):
    args = [ctx.weight("gamma"), ctx.weight("beta"), ctx.weight("running_mean"), ctx.weight("running_var")]
    if len(n.in_shapes[0]) != 2:  # (N, F) and (N, C, H, W) have the features on axis 1, as ONNX wants
        return ctx.op("BatchNormalization", [n.x[0], *args], epsilon=n.p["eps"])
    xt = ctx.op("Transpose", [n.x[0]], perm=[0, 2, 1])  # (N, T, F) → (N, F, T) and back
    y = ctx.op("BatchNormalization", [xt, *args], epsilon=n.p["eps"])
    return ctx.op("Transpose", [y], perm=[0, 2, 1])


_TORCH_BN_LAST = '''class BatchNormLast(nn.BatchNorm1d):
    """BatchNorm1d over the last axis of a (batch, time, features) input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)
'''


def _bn_torch(ctx, n):
    shape = n.in_shapes[0]
    nf = _bn_layout(shape)[0]
    cls = {1: "nn.BatchNorm1d", 2: "BatchNormLast", 3: "nn.BatchNorm2d"}[len(shape)]
    if len(shape) == 2:
        ctx.helper("BatchNormLast", _TORCH_BN_LAST)
    return ctx.module(f"{cls}({nf}, eps={float(n.p['eps'])!r}, momentum={float(n.p['momentum'])!r})", {
        "weight": ("gamma", n.W["gamma"]), "bias": ("beta", n.W["beta"]),
        "running_mean": ("running_mean", n.B["running_mean"]),
        "running_var": ("running_var", n.B["running_var"]),
        "num_batches_tracked": (None, np.array(0, dtype=np.int64)),
    })


_NUMPY_BN = '''def batch_norm(x, gamma, beta, mean, var, eps, shape):
    """Evaluation-mode batch normalisation γ·(x − μ)/√(σ² + ε) + β with the running μ, σ²."""
    inv_std = 1.0 / np.sqrt(var + eps)
    return (x - mean.reshape(shape)) * inv_std.reshape(shape) * gamma.reshape(shape) + beta.reshape(shape)
'''


def _bn_numpy(ctx, n):
    ctx.helper("batch_norm", _NUMPY_BN)
    args = ", ".join(ctx.weight(k) for k in ("gamma", "beta", "running_mean", "running_var"))
    return f"batch_norm({n.x[0]}, {args}, {float(n.p['eps'])!r}, {_bn_layout(n.in_shapes[0])[2]!r})"


register(LayerType(
    name="BatchNorm",
    category="regularisation",
    help="Batch normalisation (Ioffe & Szegedy 2015): rescales every feature (every channel of "
         "an image) to mean 0 and variance 1 over the batch, then applies a learned scale γ and "
         "shift β. Keeps activations in a healthy range, so deep networks train faster and "
         "tolerate larger learning rates. While evaluating it uses running averages of the "
         "training statistics instead of the batch.",
    params=(
        ParamSpec("momentum", "float", 0.1, "How fast the running averages follow the batch "
                  "statistics: running = (1 − momentum)·running + momentum·batch.",
                  min=0.0, max=1.0),
        ParamSpec("eps", "float", 1e-5, "Small ε added to the variance to avoid dividing by 0.",
                  min=1e-12, max=1.0, log_scale=True),
    ),
    shape=_bn_shape,
    forward=_bn_forward,
    backward=_bn_backward,
    weights=_bn_params,
    init=_bn_init,
    buffers=_bn_buffers,
    init_buffers=_bn_init_buffers,
    decay=(),
    min_batch=2,
    exporters={"onnx": _bn_onnx, "torch": _bn_torch, "numpy": _bn_numpy},
))
