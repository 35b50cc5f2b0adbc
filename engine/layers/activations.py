"""Activation (element-wise non-linearities, PReLU's learned slope, maxout) and Softmax."""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError
from engine.kernels.activations import CODES, PRELU, act_backward, act_forward
from engine.layers.base import LayerType, ParamSpec, register

FUNCTIONS = tuple(CODES) + ("maxout",)
FUNCTION_HELP = {
    "identity": "f(z) = z",
    "sigmoid": "σ(z) = 1/(1+e^−z); saturates at 0 and 1, σ' ≤ 1/4: deep stacks lose gradient",
    "tanh": "tanh(z); zero-centred, saturates at ±1, tanh' ≤ 1",
    "scaled_tanh": "LeCun's 1.7159·tanh(2z/3): f(±1) = ±1, gain ≈ 1 near 0",
    "relu": "max(0, z); gradient 1 where active, 0 where dead",
    "leaky_relu": "z if z > 0 else αz",
    "prelu": "leaky ReLU whose slope α is learned",
    "elu": "z if z > 0 else α(e^z − 1)",
    "softplus": "log(1 + e^z), a smooth ReLU",
    "hard_tanh": "clip(z, −1, 1)",
    "gelu": "z·Φ(z) with Φ the normal CDF",
    "maxout": "max over groups of k consecutive inputs (outputs = inputs / k)",
}
#: Functions whose outputs saturate (activation statistics report the saturated fraction).
SATURATING = {"sigmoid": (0.01, 0.99), "tanh": (-0.99, 0.99), "scaled_tanh": (-1.7, 1.7),
              "hard_tanh": (-1.0, 1.0)}
#: Functions with a dead zone (statistics report the fraction of exact zeros).
RECTIFIERS = ("relu",)


def _alpha(rt) -> float:
    if rt.p["function"] == "prelu":
        return float(rt.W["alpha"][0])
    return rt.p["alpha"]


def _activation_shape(p, in_shapes):
    (shape,) = in_shapes
    if p["function"] != "maxout":
        return shape
    k = p["pieces"]
    if len(shape) != 1:
        raise ShapeError(f"maxout needs a flat (features,) input, got {shape}; insert a Flatten before it")
    if shape[0] % k:
        lower, upper = shape[0] // k * k, (shape[0] // k + 1) * k
        raise ShapeError(
            f"maxout with k={k} needs a number of inputs divisible by {k}, got {shape[0]}; "
            f"set the previous layer to {lower or k} or {upper} units, or change k"
        )
    return (shape[0] // k,)


def _activation_forward(rt, xs):
    z = np.ascontiguousarray(xs[0])
    fn = rt.p["function"]
    if fn == "maxout":
        n, f = z.shape
        groups = z.reshape(n, f // rt.p["pieces"], rt.p["pieces"])
        idx = np.argmax(groups, axis=2)
        rt.cache["idx"] = idx
        return np.take_along_axis(groups, idx[..., None], axis=2)[..., 0]
    y = np.empty_like(z)
    act_forward(CODES[fn], z.reshape(-1), y.reshape(-1), _alpha(rt))
    rt.cache["z"], rt.cache["y"] = z, y
    return y


def _activation_backward(rt, dy):
    fn = rt.p["function"]
    if fn == "maxout":
        idx = rt.cache["idx"]
        k = rt.p["pieces"]
        dz = np.zeros((idx.shape[0], idx.shape[1], k), dtype=dy.dtype)
        np.put_along_axis(dz, idx[..., None], dy[..., None], axis=2)
        return [dz.reshape(idx.shape[0], -1)]
    z, y = rt.cache["z"], rt.cache["y"]
    dy = np.ascontiguousarray(dy)
    dz = np.empty_like(z)
    dalpha = act_backward(CODES[fn], z.reshape(-1), y.reshape(-1), dy.reshape(-1), dz.reshape(-1), _alpha(rt))
    if fn == "prelu":
        rt.G["alpha"][0] = dalpha
    return [dz]


def _activation_weights(p, in_shapes):
    return {"alpha": (1,)} if p["function"] == "prelu" else {}


register(LayerType(
    name="Activation",
    category="activation",
    help="Applies a non-linearity to every value. " + "; ".join(f"{k}: {v}" for k, v in FUNCTION_HELP.items()),
    params=(
        ParamSpec("function", "choice", "relu", "The non-linearity f.", choices=FUNCTIONS),
        ParamSpec("alpha", "float", 0.01, "Slope for z < 0 (leaky ReLU, PReLU's initial value) or ELU's α.",
                  min=0.0, max=10.0, enabled_when={"function": ("leaky_relu", "prelu", "elu")}),
        ParamSpec("pieces", "int", 2, "Maxout: number of inputs per output (k).", min=2, max=16,
                  enabled_when={"function": ("maxout",)}),
    ),
    shape=_activation_shape,
    forward=_activation_forward,
    backward=_activation_backward,
    weights=_activation_weights,
    init=lambda p, in_shapes, rng: ({"alpha": np.full(1, p["alpha"])} if p["function"] == "prelu" else {}),
    key_params=("function",),
    presets={
        "Sigmoid": {"function": "sigmoid"}, "Tanh": {"function": "tanh"},
        "Scaled tanh": {"function": "scaled_tanh"}, "ReLU": {"function": "relu"},
        "Leaky ReLU": {"function": "leaky_relu", "alpha": 0.01}, "PReLU": {"function": "prelu", "alpha": 0.25},
        "ELU": {"function": "elu", "alpha": 1.0}, "Softplus": {"function": "softplus"},
        "Hard tanh": {"function": "hard_tanh"}, "GELU": {"function": "gelu"},
        "Maxout": {"function": "maxout", "pieces": 2}, "Identity": {"function": "identity"},
    },
))
assert PRELU == CODES["prelu"]


def _softmax_forward(rt, xs):
    z = xs[0]
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    y = e / e.sum(axis=-1, keepdims=True)
    rt.cache["y"] = y
    return y


def _softmax_backward(rt, dy):
    """dz = y ⊙ (dy − Σ_j dy_j y_j): the softmax Jacobian applied to dy."""
    y = rt.cache["y"]
    return [y * (dy - (dy * y).sum(axis=-1, keepdims=True))]


register(LayerType(
    name="Softmax",
    category="io",
    help="Turns scores into probabilities over the last axis: softmax(z)_i = e^{z_i} / Σ_j e^{z_j}. "
         "Before a cross-entropy loss it is fused with the loss for numerical stability.",
    shape=lambda p, in_shapes: in_shapes[0],
    forward=_softmax_forward,
    backward=_softmax_backward,
))
