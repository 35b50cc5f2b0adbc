"""ONNX ``Conv``, ``MaxPool``, ``AveragePool``, ``GlobalAveragePool`` (and the spatial
``ReduceMean`` PyTorch writes for ``x.mean((2, 3))``) as the convolution family's layers.

(N, C, H, W) data becomes the 2-D layers, (N, C, L) the 1-D ones. ONNX pads each side on its
own (``pads`` = begin values, then end values, or ``auto_pad``); our layers pad symmetrically or
``"same"`` (stride 1, the odd extra zero at the end, which is ONNX's ``SAME_UPPER``), so other
paddings are refused unless the extra zeros at the end are never read. Weights keep their
layout: ``W`` (F, C, kh, kw) is ONNX's and PyTorch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.importers.onnx_ops import canonical, op
from engine.importers.onnx_values import Data, Value
from engine.layers.conv_geometry import AXIS_NAMES


def _spatial(view: Any, x: Data, what: str) -> int:
    if not x.is_canonical or len(x.shape) not in (2, 3):
        view.refuse(f"{what} needs (batch, channels, length) or (batch, channels, height, width) data, got "
                    f"{x.onnx_shape(1)}")
    return len(x.shape) - 1


def _ints(view: Any, name: str, rank: int, default: int) -> list[int]:
    value = view.attr(name)
    value = [default] * rank if value is None else [int(v) for v in value]
    if len(value) != rank:
        view.refuse(f"{name} has {len(value)} values for {rank} spatial axes")
    return value


def _auto_pads(view: Any, auto: str, sizes: list[int], spans: list[int], strides: list[int]) -> list[int]:
    """ONNX's pads for ``auto_pad``: SAME_* keeps ⌈I/S⌉ outputs, the odd extra zero at the end
    (UPPER) or the start (LOWER); VALID pads nothing."""
    if auto == "VALID":
        return [0] * (2 * len(sizes))
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        view.refuse(f"auto_pad = {auto} is not supported")
    totals = [max((-(-i // s) - 1) * s + t - i, 0) for i, t, s in zip(sizes, spans, strides, strict=True)]
    small, large = [t // 2 for t in totals], [t - t // 2 for t in totals]
    return small + large if auto == "SAME_UPPER" else large + small


def _out(size: int, before: int, after: int, span: int, stride: int) -> int:
    return (size + before + after - span) // stride + 1


def _padding(view: Any, sizes: list[int], kernels: list[int], strides: list[int], dilations: list[int],
             pool: bool) -> Any:
    """Our ``padding`` parameter for the node's pads / auto_pad: "valid", per-axis numbers or "same".

    Zeros added at the end that no window reaches (the last window ends before them) change
    nothing and are dropped, so ONNX's lopsided pads become equal ones when they can.
    """
    rank = len(kernels)
    spans = [d * (k - 1) + 1 for k, d in zip(kernels, dilations, strict=True)]
    auto = view.attr("auto_pad", "NOTSET")
    pads = _ints(view, "pads", 2 * rank, 0) if auto == "NOTSET" else _auto_pads(view, auto, sizes, spans, strides)
    before, after = pads[:rank], pads[rank:]
    same = [(t - 1) // 2 for t in spans], [(t - 1) - (t - 1) // 2 for t in spans]
    if not pool and before != after and all(s == 1 for s in strides) and (before, after) == same:
        return "same"  # an even kernel's: the odd zero at the end
    for axis, (b, a, i, t, s) in enumerate(zip(before, after, sizes, spans, strides, strict=True)):
        if a != b and not (a > b and _out(i, b, b, t, s) == _out(i, b, a, t, s)):
            given = f"auto_pad = {auto} gives pads {pads}" if auto != "NOTSET" else f"pads {pads}"
            view.refuse(f"{given}: they pad the two sides of the {AXIS_NAMES[rank][axis]} differently ({b} and {a}); "
                        "Backprop Studio pads both sides equally (or \"same\" with stride 1, the odd zero at the end)")
    return "valid" if not any(before) else before


def _check_ceil_mode(view: Any, sizes: list[int], kernels: list[int], strides: list[int], padding: Any) -> None:
    """ceil_mode = 1 computes what we compute when every axis divides exactly (⌈q⌉ = ⌊q⌋)."""
    pads = [0] * len(sizes) if padding == "valid" else padding
    for axis, (i, k, s, p) in enumerate(zip(sizes, kernels, strides, pads, strict=True)):
        if (i + 2 * p - k) % s:
            view.refuse(f"ceil_mode = 1 rounds the output size up, and the {AXIS_NAMES[len(sizes)][axis]} "
                        f"({i} + 2·{p} − {k} over stride {s}) does not divide; Backprop Studio's pooling rounds down "
                        "(export with ceil_mode=False)")


def _one(values: list[int], rank: int) -> Any:
    """A 1-D layer's integer parameters are single numbers."""
    return values[0] if rank == 1 else values


@op("Conv")
def _conv(view: Any) -> list[Value | None]:
    x = canonical(view, view.data(0))
    rank = _spatial(view, x, "Conv")
    W = np.asarray(view.const(1, "weight W"), np.float64)
    if view.attr("group", 1) != 1:
        view.refuse(f"group = {view.attr('group')} (grouped or depthwise convolution) has no Backprop Studio layer")
    if W.ndim != rank + 2 or W.shape[1] != x.shape[0]:
        view.refuse(f"its weight of shape {W.shape} does not fit {x.shape[0]} input channels")
    kernels = list(W.shape[2:])
    if view.attr("kernel_shape") is not None and list(view.attr("kernel_shape")) != kernels:
        view.refuse(f"kernel_shape {view.attr('kernel_shape')} differs from its weight's {kernels}")
    strides, dilations = _ints(view, "strides", rank, 1), _ints(view, "dilations", rank, 1)
    padding = _padding(view, list(x.shape[1:]), kernels, strides, dilations, pool=False)
    weights = {"W": W}
    b = view.optional_const(2, "bias B")
    if b is not None:
        weights["b"] = np.asarray(b, np.float64).reshape(-1)
    params = {"filters": W.shape[0], "kernel_size": _one(kernels, rank), "stride": _one(strides, rank),
              "dilation": _one(dilations, rank), "padding": padding, "bias": b is not None}
    return view.layer(f"Conv{rank}D", params, [x], weights)


def _pool(view: Any, kind: str) -> list[Value | None]:
    x = canonical(view, view.data(0))
    rank = _spatial(view, x, view.op)
    kernels = [int(k) for k in view.attr("kernel_shape")]
    strides = _ints(view, "strides", rank, 1)
    if any(d != 1 for d in _ints(view, "dilations", rank, 1)):
        view.refuse("dilated pooling has no Backprop Studio layer")
    padding = _padding(view, list(x.shape[1:]), kernels, strides, [1] * rank, pool=True)
    if view.attr("ceil_mode", 0):
        _check_ceil_mode(view, list(x.shape[1:]), kernels, strides, padding)
    if kind == "max":
        view.ignore("storage_order")  # only the Indices output depends on it
        if view.output_used(1):
            view.refuse("its Indices output is used; Backprop Studio's MaxPool has no such output")
    elif padding != "valid" and not view.attr("count_include_pad", 0):
        view.refuse("count_include_pad = 0 leaves the padding out of the mean; Backprop Studio's AvgPool "
                    "counts it (PyTorch's default)")
    else:
        view.attr("count_include_pad")
    stride: Any = "pool_size" if strides == kernels else strides
    params = {"pool_size": _one(kernels, rank), "stride": stride, "padding": padding}
    return view.layer(f"{'Max' if kind == 'max' else 'Avg'}Pool{rank}D", params, [x])


@op("MaxPool")
def _max_pool(view: Any) -> list[Value | None]:
    return _pool(view, "max")


@op("AveragePool")
def _average_pool(view: Any) -> list[Value | None]:
    return _pool(view, "avg")


def _global_average(view: Any, x: Data, keepdims: bool) -> list[Value | None]:
    rank = _spatial(view, x, "global average pooling")
    (out,) = view.layer(f"GlobalAvgPool{rank}D", {}, [x])
    return [out.with_view((0, 1) + (None,) * rank) if keepdims else out]


@op("GlobalAveragePool")
def _global_average_pool(view: Any) -> list[Value | None]:
    return _global_average(view, canonical(view, view.data(0)), keepdims=True)


@op("ReduceMean")
def _reduce_mean(view: Any) -> list[Value | None]:
    x = view.data(0)
    axes = view.attr("axes")
    if axes is None and view.value(1) is not None:
        axes = [int(a) for a in np.asarray(view.const(1, "axes")).reshape(-1)]
    keepdims = bool(view.attr("keepdims", 1))
    view.attr("noop_with_empty_axes", 0)
    rank = len(x.view)
    if not x.is_canonical or axes is None or sorted(a % rank for a in axes) != list(range(2, rank)):
        view.refuse("only the mean over every spatial axis of (batch, channels, …) data (global average "
                    "pooling) has a Backprop Studio layer")
    return _global_average(view, x, keepdims)
