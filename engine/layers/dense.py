"""Dense (fully connected): y = x W + b, applied to the last axis.

W has shape (in, out) and b shape (out,) (the model file contract). Backward:
∂L/∂W = xᵀ δ, ∂L/∂b = Σ_batch δ, ∂L/∂x = δ Wᵀ. The matrix products go through NumPy's
BLAS, which releases the GIL, into preallocated gradient views.
"""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError
from engine.init import INITIALISERS, initialise
from engine.kernels.mlp import DENSE
from engine.layers.base import FusedOp, LayerType, ParamSpec, register


def _dense_shape(p, in_shapes):
    (shape,) = in_shapes
    if len(shape) not in (1, 2):
        raise ShapeError(
            f"Dense needs a (features,) or (time, features) input, got {shape}; insert a Flatten before it"
        )
    return shape[:-1] + (p["units"],)


def _dense_weights(p, in_shapes):
    fan_in = in_shapes[0][-1]
    out = {"W": (fan_in, p["units"])}
    if p["bias"]:
        out["b"] = (p["units"],)
    return out


def _dense_init(p, in_shapes, rng):
    fan_in, units = in_shapes[0][-1], p["units"]
    out = {"W": initialise(p["init"], (fan_in, units), fan_in, units, rng, p["init_scale"])}
    if p["bias"]:
        out["b"] = np.zeros(units)
    return out


def _flat2d(x):
    return x if x.ndim == 2 else x.reshape(-1, x.shape[-1])


def _dense_forward(rt, xs):
    x = xs[0]
    x2 = _flat2d(x)
    rt.cache["x"] = x2
    y = x2 @ rt.W["W"]
    if "b" in rt.W:
        y += rt.W["b"]
    return y if x.ndim == 2 else y.reshape(x.shape[:-1] + (y.shape[-1],))


def _dense_backward(rt, dy):
    x2 = rt.cache["x"]
    d2 = _flat2d(dy)
    np.matmul(x2.T, d2, out=rt.G["W"])
    if "b" in rt.G:
        np.sum(d2, axis=0, out=rt.G["b"])
    if not rt.need_input_grad:
        return [None]
    dx = d2 @ rt.W["W"].T
    return [dx if dy.ndim == 2 else dx.reshape(dy.shape[:-1] + (dx.shape[-1],))]


def _dense_fuse(rt):
    """A (features,) Dense is one op of the fused chain kernel: y = x W (+ b)."""
    if len(rt.in_shapes[0]) != 1:
        return None
    return FusedOp(DENSE, weight="W", bias="b" if "b" in rt.W else None)


# ---- exporters (engine/export): W is (in, out); PyTorch's Linear keeps weight = Wᵀ ------------
def _dense_onnx(ctx, n):
    y = ctx.op("MatMul", [n.x[0], ctx.weight("W")])
    return ctx.op("Add", [y, ctx.weight("b")]) if "b" in n.W else y


def _dense_torch(ctx, n):
    fan_in, units = n.W["W"].shape
    state = {"weight": ("W", n.W["W"].T)}
    if "b" in n.W:
        state["bias"] = ("b", n.W["b"])
    return ctx.module(f"nn.Linear({fan_in}, {units}, bias={'b' in n.W})", state)


def _dense_numpy(ctx, n):
    y = f"{n.x[0]} @ {ctx.weight('W')}"
    return f"{y} + {ctx.weight('b')}" if "b" in n.W else y


register(LayerType(
    name="Dense",
    per_example=True,
    category="dense",
    help="Fully connected layer y = xW + b: every output unit sees every input. "
         "Applied to the last axis of (features,) or (time, features) inputs.",
    params=(
        ParamSpec("units", "int", 32, "Number of output units.", min=1, max=65536),
        ParamSpec("bias", "bool", True, "Add a learned bias b."),
        ParamSpec("init", "choice", "xavier_uniform",
                  "How W is initialised. " + "; ".join(f"{k}: {v[0]}" for k, v in INITIALISERS.items()),
                  choices=tuple(INITIALISERS)),
        ParamSpec("init_scale", "float", 0.01, "σ for 'normal', a for 'uniform' initialisation.",
                  min=0.0, max=100.0, enabled_when={"init": ("normal", "uniform")}),
    ),
    shape=_dense_shape,
    forward=_dense_forward,
    backward=_dense_backward,
    weights=_dense_weights,
    init=_dense_init,
    decay=("W",),
    key_params=("units",),
    exporters={"onnx": _dense_onnx, "torch": _dense_torch, "numpy": _dense_numpy},
    fuse=_dense_fuse,
))
