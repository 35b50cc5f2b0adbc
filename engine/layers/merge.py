"""Merge and split layers: Add (residual / skip connections), Concat (joining branches)
and Split (one input cut into several outputs, Concat's inverse).

Add and Concat have ``inputs`` input ports named ``in0``, ``in1``, … so several branches of
the graph can meet. Backward splits the gradient again: Add hands every input the same
∂L/∂y, Concat hands each input its own slice of it. Split has ``parts`` output ports
``out0``, ``out1``, …; its backward joins the gradients arriving at them (zeros for a port
nothing reads).
"""

from __future__ import annotations

import numpy as np

from engine.errors import ShapeError
from engine.layers.base import LayerType, ParamSpec, register


def _ports(p) -> tuple[str, ...]:
    return tuple(f"in{i}" for i in range(p["inputs"]))


def _inputs_param(what: str) -> ParamSpec:
    return ParamSpec("inputs", "int", 2, f"Number of input ports (branches to {what}).", min=2, max=8)


# ---- Add ----------------------------------------------------------------------------
def _add_fix(first, other, port: str) -> str:
    """How to make the branch on ``port`` produce ``first``'s shape."""
    if len(first) in (1, 2) and len(other) == len(first) and other[:-1] == first[:-1]:
        return f"insert a Dense({first[-1]}) on input '{port}'"
    if len(first) == 1:
        return f"insert a Flatten and a Dense({first[0]}) on input '{port}'"
    return f"change the layers feeding '{port}' so they output {first}, or use Concat to join them instead"


def _add_shape(p, in_shapes):
    first = in_shapes[0]
    for i, shape in enumerate(in_shapes[1:], start=1):
        if shape != first:
            raise ShapeError(
                f"input shapes {first} (in0) and {shape} (in{i}) differ; Add needs equal shapes: "
                + _add_fix(first, shape, f"in{i}")
            )
    return first


def _add_forward(rt, xs):
    """y = x₀ + x₁ + … (element-wise)."""
    y = xs[0] + xs[1]
    for x in xs[2:]:
        y += x
    return y


def _add_backward(rt, dy):
    """∂L/∂xᵢ = ∂L/∂y for every input (each input gets its own array)."""
    return [dy] + [dy.copy() for _ in range(rt.p["inputs"] - 1)]


def _add_onnx(ctx, n):
    y = n.x[0]
    for x in n.x[1:]:
        y = ctx.op("Add", [y, x])
    return y


def _add_code(ctx, n):
    return " + ".join(n.x)


register(LayerType(
    name="Add",
    per_example=True,
    category="merge",
    help="Adds its inputs element by element (all must have the same shape). Used for residual "
         "(skip) connections y = x + f(x): the gradient flows unchanged along the skip path, so "
         "very deep networks still receive a useful gradient (He et al. 2016).",
    params=(_inputs_param("add"),),
    inputs=_ports,
    shape=_add_shape,
    forward=_add_forward,
    backward=_add_backward,
    key_params=("inputs",),
    exporters={"onnx": _add_onnx, "torch": lambda ctx, n: ctx.expr(_add_code(ctx, n)),
               "numpy": _add_code},
))


# ---- Concat -------------------------------------------------------------------------
def _concat_axis(p, shape) -> int:
    """The per-example axis (negative counts from the end), checked against the rank."""
    rank, axis = len(shape), p["axis"]
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < rank:
        raise ShapeError(
            f"axis {axis} does not exist for inputs of shape {shape} ({rank} axes); "
            f"use 0 to {rank - 1} (or -{rank} to -1)"
        )
    return a


def _concat_shape(p, in_shapes):
    first = in_shapes[0]
    for i, shape in enumerate(in_shapes[1:], start=1):
        if len(shape) != len(first):
            raise ShapeError(
                f"input 'in{i}' has shape {shape} but 'in0' has {first}: Concat needs inputs with the "
                f"same number of axes; insert a Flatten on the branches to join them as flat vectors"
            )
    a = _concat_axis(p, first)
    for i, shape in enumerate(in_shapes[1:], start=1):
        bad = [d for d in range(len(first)) if d != a and shape[d] != first[d]]
        if bad:
            d = bad[0]
            only_d = all(s[:d] + s[d + 1:] == first[:d] + first[d + 1:] for s in in_shapes)
            hint = (f"; to join them along axis {d} instead, set axis to {d}" if len(bad) == 1 and only_d
                    else "; change the branches so those sizes agree")
            raise ShapeError(
                f"joining along axis {a} needs every other axis to match, but input 'in{i}' has shape "
                f"{shape} and 'in0' has {first} (axis {d}: {shape[d]} vs {first[d]}){hint}"
            )
    return first[:a] + (sum(s[a] for s in in_shapes),) + first[a + 1:]


def _concat_forward(rt, xs):
    """y = [x₀, x₁, …] stacked along the chosen per-example axis."""
    a = _concat_axis(rt.p, xs[0].shape[1:]) + 1
    rt.cache["bounds"] = np.cumsum([x.shape[a] for x in xs])[:-1]
    rt.cache["axis"] = a
    return np.concatenate(xs, axis=a)


def _concat_backward(rt, dy):
    """∂L/∂xᵢ is the slice of ∂L/∂y that xᵢ filled (copied to a contiguous array)."""
    parts = np.split(dy, rt.cache["bounds"], axis=rt.cache["axis"])
    return [np.ascontiguousarray(part) for part in parts]


def _concat_batch_axis(n) -> int:
    """The axis to join along in a batch array (the per-example axis + 1)."""
    return _concat_axis(n.p, n.in_shapes[0]) + 1


def _concat_torch(ctx, n):
    return ctx.expr(f"torch.cat([{', '.join(n.x)}], dim={_concat_batch_axis(n)})")


def _concat_numpy(ctx, n):
    return f"np.concatenate([{', '.join(n.x)}], axis={_concat_batch_axis(n)})"


register(LayerType(
    name="Concat",
    per_example=True,
    category="merge",
    help="Joins its inputs side by side along one axis (features by default), e.g. (32,) and "
         "(16,) give (48,). All other axes must match. Use it to combine branches that look at "
         "the data differently while keeping every branch's values apart (unlike Add).",
    params=(
        _inputs_param("join"),
        ParamSpec("axis", "int", 0, "Axis of one example to join along: 0 is the first "
                  "(features for (F,), channels for (C, H, W), time for (T, F)); -1 the last.",
                  min=-3, max=2),
    ),
    inputs=_ports,
    shape=_concat_shape,
    forward=_concat_forward,
    backward=_concat_backward,
    key_params=("inputs", "axis"),
    exporters={"onnx": lambda ctx, n: ctx.op("Concat", list(n.x), axis=_concat_batch_axis(n)),
               "torch": _concat_torch, "numpy": _concat_numpy},
))


# ---- Split --------------------------------------------------------------------------
def _split_ports(p) -> tuple[str, ...]:
    return tuple(f"out{i}" for i in range(p["parts"]))


def _split_shape(p, in_shapes):
    shape = in_shapes[0]
    a = _concat_axis(p, shape)
    k = p["parts"]
    if shape[a] % k:
        lower, upper = shape[a] // k * k, (shape[a] // k + 1) * k
        raise ShapeError(
            f"splitting axis {a} of size {shape[a]} into {k} equal parts needs a size divisible by {k}; "
            f"make the input {lower or k} or {upper} along that axis, or change 'parts'"
        )
    part = shape[:a] + (shape[a] // k,) + shape[a + 1:]
    return [part] * k


def _split_forward(rt, xs):
    """(y₀, y₁, …) = the input cut into ``parts`` equal consecutive slices along the axis."""
    a = _concat_axis(rt.p, xs[0].shape[1:]) + 1
    rt.cache["axis"] = a
    return tuple(np.split(xs[0], rt.p["parts"], axis=a))


def _split_backward(rt, dys):
    """∂L/∂x = [∂L/∂y₀, ∂L/∂y₁, …] joined along the axis (zeros where no gradient came)."""
    like = next(d for d in dys if d is not None)
    parts = [d if d is not None else np.zeros(like.shape, like.dtype) for d in dys]
    return [np.concatenate(parts, axis=rt.cache["axis"])]


def _split_onnx(ctx, n):
    k = n.p["parts"]
    size = n.in_shapes[0][_concat_axis(n.p, n.in_shapes[0])] // k
    sizes = ctx.const([size] * k, "split", "int64")
    return ctx.op_n("Split", [n.x[0], sizes], k, axis=_concat_batch_axis(n))


def _split_torch(ctx, n):
    return ctx.expr(f"torch.chunk({n.x[0]}, {n.p['parts']}, dim={_concat_batch_axis(n)})")


def _split_numpy(ctx, n):
    return f"np.split({n.x[0]}, {n.p['parts']}, axis={_concat_batch_axis(n)})"


register(LayerType(
    name="Split",
    per_example=True,
    category="merge",
    help="Cuts its input into equal consecutive parts along one axis (features by default), "
         "one output port per part, e.g. (48,) into (24,) and (24,): the inverse of Concat. "
         "Each part can feed a different branch or head.",
    params=(
        ParamSpec("parts", "int", 2, "Number of equal parts (output ports out0, out1, …).", min=2, max=8),
        ParamSpec("axis", "int", 0, "Axis of one example to cut: 0 is the first (features for (F,), "
                  "channels for (C, H, W), time for (T, F)); -1 the last.", min=-3, max=2),
    ),
    outputs=_split_ports,
    shape=_split_shape,
    forward=_split_forward,
    backward=_split_backward,
    key_params=("parts", "axis"),
    exporters={"onnx": _split_onnx, "torch": _split_torch, "numpy": _split_numpy},
))
