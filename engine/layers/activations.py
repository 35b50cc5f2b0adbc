"""Activation (element-wise non-linearities, PReLU's learned slope, maxout) and Softmax."""

from __future__ import annotations

import numpy as np

from engine.errors import ExportError, ShapeError
from engine.kernels.activations import CODES, PRELU, act_backward, act_forward
from engine.kernels.mlp import ACT
from engine.layers.base import FusedOp, LayerType, ParamSpec, register

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
#: Functions without flat tails whose units can still stop learning: activation statistics
#: report their dead fraction (:func:`dead_fraction`).
RECTIFIERS = ("relu", "leaky_relu", "prelu", "elu", "softplus", "maxout")
#: A unit is dead for a batch when its slope f'(z) stays below this for every example.
DEAD_SLOPE = 1e-3


def _slope_from_output(fn: str, y: np.ndarray, alpha: float) -> np.ndarray:
    """f'(z) of the rectifier family, recovered from the output y = f(z).

    ReLU: 1 if y > 0 else 0; leaky ReLU/PReLU: 1 or α; ELU: 1 or y + α (= αe^z);
    softplus: σ(z) = 1 − e^−y.
    """
    if fn == "relu":
        return (y > 0).astype(np.float64)
    if fn in ("leaky_relu", "prelu"):
        return np.where(y > 0, 1.0, alpha)
    if fn == "elu":
        return np.where(y > 0, 1.0, y + alpha)
    return -np.expm1(-np.asarray(y, np.float64))  # softplus


def dead_fraction(rt, y: np.ndarray) -> float | None:
    """The share of units (or maxout pieces) that pass no gradient for the whole batch.

    A unit is dead when its slope f'(z) < :data:`DEAD_SLOPE` for every example: ReLU units
    that are 0 everywhere; leaky ReLU/PReLU only if α itself is that small; ELU and softplus
    units driven far into their negative side. A maxout unit always passes its gradient, but
    to one piece: the dead share is that of pieces winning for no example of the batch.
    ``None`` when the layer's last forward left nothing to measure.
    """
    fn = rt.p["function"]
    n = len(y)
    if fn == "maxout":
        idx = rt.cache.get("idx")
        if idx is None or len(idx) != n:
            return None
        k = rt.p["pieces"]
        won = np.zeros((idx.shape[1], k), bool)
        won[np.arange(idx.shape[1])[None, :].repeat(n, 0), idx] = True
        return float(1.0 - won.mean())
    alpha = float(rt.W["alpha"][0]) if fn == "prelu" else float(rt.p["alpha"])
    slope = _slope_from_output(fn, y.reshape(n, -1), alpha)
    return float(np.mean(np.all(slope < DEAD_SLOPE, axis=0)))


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


def _activation_fuse(rt):
    """Element-wise functions are ops of the fused chain kernel (maxout is not element-wise)."""
    fn = rt.p["function"]
    if fn not in CODES:
        return None
    return FusedOp(ACT, code=CODES[fn], weight="alpha" if fn == "prelu" else None, alpha=float(rt.p["alpha"]))


def _activation_weights(p, in_shapes):
    return {"alpha": (1,)} if p["function"] == "prelu" else {}


# ---- exporters (engine/export): one small emitter per format -------------------------
_ONNX_OPS = {"identity": "Identity", "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
             "softplus": "Softplus"}


def _activation_onnx(ctx, n):
    fn, x, a = n.p["function"], n.x[0], n.p["alpha"]
    if fn in _ONNX_OPS:
        return ctx.op(_ONNX_OPS[fn], [x])
    if fn == "leaky_relu":
        return ctx.op("LeakyRelu", [x], alpha=a)
    if fn == "elu":
        return ctx.op("Elu", [x], alpha=a)
    if fn == "prelu":
        return ctx.op("PRelu", [x, ctx.weight("alpha")])
    if fn == "hard_tanh":
        return ctx.op("Clip", [x, ctx.const(-1.0, "min"), ctx.const(1.0, "max")])
    if fn == "scaled_tanh":  # 1.7159·tanh(2z/3)
        t = ctx.op("Tanh", [ctx.op("Mul", [x, ctx.const(2.0 / 3.0, "b")])])
        return ctx.op("Mul", [t, ctx.const(1.7159, "a")])
    if fn == "gelu":  # z·Φ(z) = 0.5·z·(1 + erf(z/√2)); the Gelu op needs opset 20
        erf = ctx.op("Erf", [ctx.op("Mul", [x, ctx.const(0.5 ** 0.5, "inv_sqrt2")])])
        half = ctx.op("Mul", [x, ctx.const(0.5, "half")])
        return ctx.op("Mul", [half, ctx.op("Add", [erf, ctx.const(1.0, "one")])])
    if fn == "maxout":  # (N, F) → (N, F/k, k) → max over the last axis
        k, f = n.p["pieces"], n.in_shapes[0][0]
        groups = ctx.op("Reshape", [x, ctx.const([-1, f // k, k], "groups", "int64")])
        return ctx.op("ReduceMax", [groups], axes=[2], keepdims=0)
    raise ExportError(f"activation '{fn}' has no ONNX form")


_TORCH_MODULES = {"identity": "nn.Identity()", "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()",
                  "relu": "nn.ReLU()", "softplus": "nn.Softplus()", "hard_tanh": "nn.Hardtanh()",
                  "gelu": "nn.GELU()"}
_TORCH_HELPERS = {
    "ScaledTanh": '''class ScaledTanh(nn.Module):
    """LeCun's scaled tanh: f(z) = 1.7159·tanh(2z/3)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(z * (2.0 / 3.0))
''',
    "Maxout": '''class Maxout(nn.Module):
    """Maxout: the maximum over groups of k consecutive inputs (outputs = inputs / k)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(z.shape[0], -1, self.k).amax(dim=2)
''',
}


def _activation_torch(ctx, n):
    fn, a = n.p["function"], float(n.p["alpha"])
    if fn in _TORCH_MODULES:
        return ctx.module(_TORCH_MODULES[fn])
    if fn == "leaky_relu":
        return ctx.module(f"nn.LeakyReLU({a!r})")
    if fn == "elu":
        return ctx.module(f"nn.ELU({a!r})")
    if fn == "prelu":
        return ctx.module("nn.PReLU(num_parameters=1)", {"weight": ("alpha", n.W["alpha"])})
    if fn == "scaled_tanh":
        ctx.helper("ScaledTanh", _TORCH_HELPERS["ScaledTanh"])
        return ctx.module("ScaledTanh()")
    if fn == "maxout":
        ctx.helper("Maxout", _TORCH_HELPERS["Maxout"])
        return ctx.module(f"Maxout({n.p['pieces']})")
    raise ExportError(f"activation '{fn}' has no PyTorch form")


_NUMPY_HELPERS = {
    "sigmoid": '''def sigmoid(z):
    """σ(z) = 1/(1 + e^−z), evaluated without overflow."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
''',
    "scaled_tanh": '''def scaled_tanh(z):
    """LeCun's 1.7159·tanh(2z/3)."""
    return 1.7159 * np.tanh(z * (2.0 / 3.0))
''',
    "relu": '''def relu(z):
    return np.maximum(z, 0)
''',
    "leaky_relu": '''def leaky_relu(z, alpha):
    """z if z > 0 else αz (also PReLU, with its learned α)."""
    return np.where(z > 0, z, alpha * z)
''',
    "elu": '''def elu(z, alpha):
    """z if z > 0 else α(e^z − 1)."""
    return np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0)))
''',
    "softplus": '''def softplus(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^−|z|), without overflow."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
''',
    "hard_tanh": '''def hard_tanh(z):
    return np.clip(z, -1.0, 1.0)
''',
    "gelu": '''def gelu(z):
    """z·Φ(z) = 0.5·z·(1 + erf(z/√2)), the exact form (math.erf, element by element)."""
    erf = np.vectorize(math.erf, otypes=[np.float64])(z / math.sqrt(2.0))
    return (0.5 * z * (1.0 + erf)).astype(z.dtype)
''',
    "maxout": '''def maxout(z, k):
    """The maximum over groups of k consecutive inputs."""
    return z.reshape(z.shape[0], -1, k).max(axis=2)
''',
}


def _activation_numpy(ctx, n):
    fn, x = n.p["function"], n.x[0]
    if fn == "identity":
        return x
    if fn == "tanh":
        return f"np.tanh({x})"
    helper = "leaky_relu" if fn == "prelu" else fn
    if helper not in _NUMPY_HELPERS:
        raise ExportError(f"activation '{fn}' has no NumPy form")
    ctx.helper(helper, _NUMPY_HELPERS[helper], imports=("math",) if fn == "gelu" else ())
    if fn in ("leaky_relu", "elu"):
        return f"{helper}({x}, {float(n.p['alpha'])!r})"
    if fn == "prelu":
        return f"{helper}({x}, {ctx.weight('alpha')})"
    if fn == "maxout":
        return f"maxout({x}, {n.p['pieces']})"
    return f"{helper}({x})"


register(LayerType(
    name="Activation",
    per_example=True,
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
    exporters={"onnx": _activation_onnx, "torch": _activation_torch, "numpy": _activation_numpy},
    fuse=_activation_fuse,
    absorbed_by=lambda p: ("bce_logits",) if p["function"] == "sigmoid" else (),
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


_NUMPY_SOFTMAX = '''def softmax(z):
    """e^z_i / Σ_j e^z_j over the last axis (shifted by the maximum, so it cannot overflow)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
'''


def _softmax_numpy(ctx, n):
    ctx.helper("softmax", _NUMPY_SOFTMAX)
    return f"softmax({n.x[0]})"


register(LayerType(
    name="Softmax",
    per_example=True,
    category="io",
    help="Turns scores into probabilities over the last axis: softmax(z)_i = e^{z_i} / Σ_j e^{z_j}. "
         "Before a cross-entropy loss it is fused with the loss for numerical stability.",
    shape=lambda p, in_shapes: in_shapes[0],
    forward=_softmax_forward,
    backward=_softmax_backward,
    exporters={"onnx": lambda ctx, n: ctx.op("Softmax", [n.x[0]], axis=-1),
               "torch": lambda ctx, n: ctx.module("nn.Softmax(dim=-1)"),
               "numpy": _softmax_numpy},
    absorbed_by=lambda p: ("cross_entropy",),
))


def activation_curve(function: str, z: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(f(z), f'(z)) of an element-wise activation, from the training kernels themselves.

    For plotting the shapes a lesson compares (the flat tails of σ and tanh, ReLU's dead
    half, the slopes α of leaky ReLU and ELU). Maxout is not element-wise and has no curve.
    """
    if function not in CODES:
        raise ValueError(f"'{function}' is not an element-wise activation; curves exist for {', '.join(CODES)}")
    z = np.ascontiguousarray(z, dtype=np.float64).reshape(-1)
    y, dz = np.empty_like(z), np.empty_like(z)
    act_forward(CODES[function], z, y, alpha)
    act_backward(CODES[function], z, y, np.ones_like(z), dz, alpha)
    return y, dz
