"""Input: where the dataset's features enter the network."""

from __future__ import annotations

from engine.layers.base import LayerType, ParamSpec, register


def _shape(p, in_shapes):
    return tuple(p["shape"])


# Exporters: the network's input passes through unchanged (see engine/export).
def _input_export(ctx, n):
    return n.x[0]


def _input_torch(ctx, n):
    return ctx.expr(n.x[0])


register(LayerType(
    name="Input",
    per_example=True,
    category="io",
    help="Feeds a batch of the dataset's features into the network. Its shape (without the "
         "batch axis) must match the data: (features,), (channels, height, width) or (time, features).",
    params=(ParamSpec("shape", "ints", (2,), "Shape of one example, without the batch axis."),),
    inputs=lambda p: (),
    shape=_shape,
    forward=lambda rt, xs: xs[0],
    backward=lambda rt, dy: [],
    key_params=("shape",),
    exporters={"onnx": _input_export, "torch": _input_torch, "numpy": _input_export},
))
