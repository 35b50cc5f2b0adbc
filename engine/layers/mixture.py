"""MixtureDensity: the output unit of a mixture density network (Bishop 1994).

A regression net with a mean-squared-error output predicts the conditional *mean* of y given
x; where one x has several y (an inverse problem) that mean lies between the branches, on
none of them. A mixture density output predicts a whole conditional density instead,

    p(y | x) = Σ_k π_k(x) · N(y; μ_k(x), σ_k(x)²),   k = 1 … K,

from 3K numbers z = (a, m, s) of the layer before it:

    π = softmax(a)              mixing weights, Σ_k π_k = 1
    μ = m                       means
    σ = σ_min + exp(s)          standard deviations (or σ_min + softplus(s))

**Output layout** (per position, on the last axis): ``[π_1 … π_K, μ_1 … μ_K, σ_1 … σ_K]``,
the same in ``predict``, the model file and every export. Train it with the ``mdn_nll``
loss, −log p(y | x) averaged over the examples (engine.losses), against one target value per
position. :func:`sample_mixture` draws y from the predicted densities (the studio plots the
samples over the data).

Backward maps ∂L/∂(π, μ, σ) to ∂L/∂(a, m, s): the softmax Jacobian for a,
identity for m, ∂σ/∂s = exp(s) (= σ − σ_min) or sigmoid(s) for s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import ShapeError
from engine.layers.base import LayerType, ParamSpec, register


def _split(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return z[..., :k], z[..., k:2 * k], z[..., 2 * k:]


def _mixture_shape(p, in_shapes):
    (shape,) = in_shapes
    k = p["components"]
    if len(shape) not in (1, 2) or shape[-1] != 3 * k:
        raise ShapeError(
            f"MixtureDensity with {k} components needs {3 * k} inputs per position ({k} mixing logits, "
            f"{k} means, {k} scales), got {shape}; set the Dense before it to {3 * k} units")
    return shape


def _softplus(s: np.ndarray) -> np.ndarray:
    return np.maximum(s, 0) + np.log1p(np.exp(-np.abs(s)))


def _sigmoid(s: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(s))
    return np.where(s >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(s.dtype)


def _mixture_forward(rt, xs):
    z = xs[0]
    k = rt.p["components"]
    a, m, s = _split(z, k)
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    pi = e / e.sum(axis=-1, keepdims=True)
    with np.errstate(over="ignore"):
        spread = np.exp(s) if rt.p["sigma"] == "exp" else _softplus(s)
    y = np.concatenate([pi, m, rt.p["min_sigma"] + spread], axis=-1).astype(z.dtype, copy=False)
    rt.cache["pi"], rt.cache["s"], rt.cache["spread"] = pi, s, spread
    return y


def _mixture_backward(rt, dy):
    k = rt.p["components"]
    dpi, dmu, dsigma = _split(dy, k)
    pi, s = rt.cache["pi"], rt.cache["s"]
    da = pi * (dpi - (dpi * pi).sum(axis=-1, keepdims=True))
    slope = rt.cache["spread"] if rt.p["sigma"] == "exp" else _sigmoid(s)
    return [np.concatenate([da, dmu, dsigma * slope], axis=-1).astype(dy.dtype, copy=False)]


def sample_mixture(params: np.ndarray, samples: int = 1, seed: int = 0) -> np.ndarray:
    """Draw ``samples`` values of y per row of MixtureDensity outputs (..., 3K).

    For each draw: a component k with probability π_k, then y ~ N(μ_k, σ_k²). Returns an
    array of shape (..., samples). Deterministic for a given ``seed``.
    """
    params = np.asarray(params, np.float64)
    k = params.shape[-1] // 3
    if k < 1 or params.shape[-1] != 3 * k:
        raise ShapeError(f"MixtureDensity outputs have 3K values per position, got {params.shape[-1]}")
    pi, mu, sigma = _split(params, k)
    rng = np.random.default_rng(seed)
    cum = np.cumsum(pi, axis=-1)
    u = rng.random(params.shape[:-1] + (samples,)) * cum[..., -1:]
    which = np.minimum((u[..., None] >= cum[..., None, :]).sum(axis=-1), k - 1)
    mean = np.take_along_axis(mu, which, axis=-1)
    std = np.take_along_axis(sigma, which, axis=-1)
    return mean + std * rng.standard_normal(which.shape)


def sample_mdn(model: Any, X: np.ndarray, samples: int = 1, seed: int = 0) -> np.ndarray:
    """Samples of y for each row of ``X`` from a trained model ending in MixtureDensity.

    ``X`` is what the model trains on (already normalised, if the run normalises);
    returns (len(X), samples) for a (3K,) output, (len(X), T, samples) for (T, 3K).
    """
    out = model.graph.nodes[model.output_id]
    if out.type != "MixtureDensity":
        raise ShapeError(f"the model's output '{model.output_id}' is a {out.type}, not a MixtureDensity; "
                         "sampling needs a mixture density network")
    return sample_mixture(model.predict(np.ascontiguousarray(X, dtype=model.dtype)), samples, seed)


# ---- exporters ---------------------------------------------------------------------------------
def _mixture_onnx(ctx, n):
    k, x = n.p["components"], n.x[0]
    a, m, s = ctx.op_n("Split", [x, ctx.const([k, k, k], "sizes", "int64")], 3, axis=-1)
    pi = ctx.op("Softmax", [a], axis=-1)
    spread = ctx.op("Exp", [s]) if n.p["sigma"] == "exp" else ctx.op("Softplus", [s])
    sigma = ctx.op("Add", [spread, ctx.const(float(n.p["min_sigma"]), "min_sigma")])
    return ctx.op("Concat", [pi, m, sigma], axis=-1)


_TORCH_MIXTURE = '''class MixtureDensity(nn.Module):
    """Mixture density output: z = (a, m, s) → [softmax(a), m, σ_min + exp(s) or softplus(s)]."""

    def __init__(self, k: int, sigma: str, min_sigma: float) -> None:
        super().__init__()
        self.k, self.sigma, self.min_sigma = k, sigma, min_sigma

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        a, m, s = torch.split(z, self.k, dim=-1)
        spread = torch.exp(s) if self.sigma == "exp" else nn.functional.softplus(s)
        return torch.cat([torch.softmax(a, dim=-1), m, self.min_sigma + spread], dim=-1)
'''

_NUMPY_MIXTURE = '''def mixture_density(z, k, sigma, min_sigma):
    """[softmax(a), m, σ_min + exp(s) or softplus(s)] for z = (a, m, s), K values each."""
    a, m, s = z[..., :k], z[..., k:2 * k], z[..., 2 * k:]
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    spread = np.exp(s) if sigma == "exp" else np.maximum(s, 0) + np.log1p(np.exp(-np.abs(s)))
    return np.concatenate([e / e.sum(axis=-1, keepdims=True), m, min_sigma + spread], axis=-1).astype(z.dtype)
'''


def _mixture_torch(ctx, n):
    ctx.helper("MixtureDensity", _TORCH_MIXTURE)
    return ctx.module(f"MixtureDensity({n.p['components']}, {n.p['sigma']!r}, {float(n.p['min_sigma'])!r})")


def _mixture_numpy(ctx, n):
    ctx.helper("mixture_density", _NUMPY_MIXTURE)
    return f"mixture_density({n.x[0]}, {n.p['components']}, {n.p['sigma']!r}, {float(n.p['min_sigma'])!r})"


register(LayerType(
    name="MixtureDensity",
    category="io",
    help="Mixture density output (Bishop 1994): K Gaussians p(y|x) = Σ π_k N(y; μ_k, σ_k²) from the 3K "
         "values of the layer before (mixing logits, means, scales). Outputs [π_1…π_K, μ_1…μ_K, σ_1…σ_K]; "
         "train with the mdn_nll loss. For targets with several values per x (inverse problems), where "
         "an MSE output would predict their average.",
    params=(
        ParamSpec("components", "int", 3, "Number K of Gaussian components (the layer before needs 3K units).",
                  min=1, max=64),
        ParamSpec("sigma", "choice", "exp", "How scales s become standard deviations: σ = σ_min + exp(s) "
                  "or σ_min + softplus(s) (grows linearly, gentler for large s).", choices=("exp", "softplus")),
        ParamSpec("min_sigma", "float", 1e-3, "σ_min, a floor on every standard deviation (keeps the "
                  "likelihood finite when a component sits on one point).", min=0.0, max=10.0),
    ),
    shape=_mixture_shape,
    forward=_mixture_forward,
    backward=_mixture_backward,
    key_params=("components",),
    exporters={"onnx": _mixture_onnx, "torch": _mixture_torch, "numpy": _mixture_numpy},
))
