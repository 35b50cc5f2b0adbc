"""Reshape layers: Flatten and Reshape. They move no values, only relabel the axes.

Forward and backward are reshapes of the batch array: ∂L/∂x is ∂L/∂y with x's shape.
"""

from __future__ import annotations

import math

from engine.errors import ShapeError
from engine.layers.base import LayerType, ParamSpec, register


def _to_out_shape(rt, xs):
    x = xs[0]
    rt.cache["in_shape"] = x.shape
    return x.reshape((x.shape[0],) + tuple(rt.out_shape))


def _to_in_shape(rt, dy):
    return [dy.reshape(rt.cache["in_shape"])]


# Exporters (engine/export): a reshape of the batch array that keeps the batch axis.
def _reshape_code(ctx, n):
    return f"{n.x[0]}.reshape({n.x[0]}.shape[0], {', '.join(str(v) for v in n.out_shape)})"


def _reshape_onnx(ctx, n):  # 0 keeps the batch size
    return ctx.op("Reshape", [n.x[0], ctx.const([0, *n.out_shape], "shape", "int64")])


register(LayerType(
    name="Flatten",
    per_example=True,
    category="reshape",
    help="Lays out every value of one example in a single row: (C, H, W) becomes (C·H·W,). "
         "Put it between image or sequence layers and a Dense layer, which needs flat features.",
    shape=lambda p, in_shapes: (math.prod(in_shapes[0]),),
    forward=_to_out_shape,
    backward=_to_in_shape,
    exporters={"onnx": lambda ctx, n: ctx.op("Flatten", [n.x[0]], axis=1),
               "torch": lambda ctx, n: ctx.module("nn.Flatten()"), "numpy": _reshape_code},
))


def _fmt(shape) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ("," if len(shape) == 1 else "") + ")"


def _suggest(target, total: int) -> str:
    """Shapes that would work: flat, or ``target`` with its last size inferred."""
    ideas = [(total,)]
    head = tuple(target[:-1])
    if head and -1 not in head and total % math.prod(head) == 0:
        ideas.append(head + (-1,))
    return " or ".join(_fmt(s) for s in ideas)


def _reshape_shape(p, in_shapes):
    target, src = tuple(p["shape"]), in_shapes[0]
    total = math.prod(src)
    if any(v == 0 or v < -1 for v in target):
        raise ShapeError(f"shape {_fmt(target)} has a size below 1; use sizes ≥ 1, or -1 for one "
                         f"size to be inferred")
    if target.count(-1) > 1:
        raise ShapeError(f"shape {_fmt(target)} has more than one -1; only one size can be inferred")
    known = math.prod(v for v in target if v != -1)
    if -1 in target:
        if total % known:
            raise ShapeError(
                f"cannot reshape {_fmt(src)} ({total} values) into {_fmt(target)}: the given sizes "
                f"multiply to {known}, which does not divide {total}; try {_suggest(target, total)}"
            )
        return tuple(total // known if v == -1 else v for v in target)
    if known != total:
        raise ShapeError(
            f"shape {_fmt(target)} holds {known} values but the input {_fmt(src)} holds {total}; "
            f"the sizes must multiply to {total}, e.g. {_suggest(target, total)}"
        )
    return target


register(LayerType(
    name="Reshape",
    per_example=True,
    category="reshape",
    help="Rearranges the values of one example into a new shape with the same number of "
         "values, e.g. (196,) into (4, 7, 7) to feed a convolution. One size may be -1: it "
         "is inferred from the others.",
    params=(
        ParamSpec("shape", "ints", (-1,), "New shape of one example (without the batch axis); "
                  "sizes ≥ 1, at most one -1 (inferred).", min=-1),
    ),
    shape=_reshape_shape,
    forward=_to_out_shape,
    backward=_to_in_shape,
    key_params=("shape",),
    exporters={"onnx": _reshape_onnx, "torch": lambda ctx, n: ctx.expr(_reshape_code(ctx, n)),
               "numpy": _reshape_code},
))
