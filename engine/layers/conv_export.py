"""Exporters of the convolution family (engine/layers/conv.py) to ONNX, PyTorch and NumPy.

Padding is exported exactly as the engine computes it: ONNX gets explicit ``pads``
(begin values, then end values), PyTorch gets ``padding="same"`` for "same" (the same
rule: stride 1, the odd extra zero at the end) and numbers otherwise; average pooling
counts the padding in its mean (``count_include_pad``) in every format.
"""

from __future__ import annotations

from typing import Any

from engine.layers.conv_geometry import Axis, pads_4, resolve

_RANK = {"Conv2D": 2, "Conv1D": 1, "MaxPool2D": 2, "AvgPool2D": 2, "MaxPool1D": 1, "AvgPool1D": 1}


def node_axes(n: Any) -> tuple[Axis, ...]:
    """The resolved axes of an exported node (its parameters were valid when it compiled)."""
    rank = _RANK[n.type]
    return resolve(n.type, n.p, tuple(n.in_shapes[0]), rank, pool=not n.type.startswith("Conv"))


def _onnx_window(axes: tuple[Axis, ...]) -> dict[str, list[int]]:
    return {"kernel_shape": [a.kernel for a in axes], "strides": [a.stride for a in axes],
            "pads": [a.before for a in axes] + [a.after for a in axes]}


def _tuple(values: list[int]) -> str:
    return repr(values[0]) if len(values) == 1 else repr(tuple(values))


# ---- NumPy helpers (written into the exported model.py) ------------------------------------
_NUMPY_CONV = '''def conv2d(x, w, b, stride, dilation, pads):
    """Cross-correlation as in PyTorch and ONNX: y[n, f, a, c] = b_f + Σ w[f, k, i, j] ·
    x_pad[n, k, a·sh + i·dh, c·sw + j·dw], x zero-padded by pads = (top, bottom, left, right)."""
    (sh, sw), (dh, dw) = stride, dilation
    kh, kw = w.shape[2], w.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(y if b is None else y + b[None, :, None, None])
'''

_NUMPY_POOL = '''def pool2d(x, kind, size, stride, pads):
    """Max (padding −∞) or mean (padding 0, counted) over each window of x (N, C, H, W)."""
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, size, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]
    return win.max(axis=(4, 5)) if kind == "max" else win.mean(axis=(4, 5), dtype=x.dtype)
'''


def _numpy_2d_args(axes: tuple[Axis, ...]) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    """(stride, dilation, pads) of the 2-D helper; a 1-D layer is an image of height 1."""
    if len(axes) == 1:
        (a,) = axes
        return (1, a.stride), (1, a.dilation), pads_4(axes)
    return (axes[0].stride, axes[1].stride), (axes[0].dilation, axes[1].dilation), pads_4(axes)


# ---- convolution -------------------------------------------------------------------------
def conv_exporters(rank: int) -> dict[str, Any]:
    def onnx(ctx, n):
        axes = node_axes(n)
        inputs = [n.x[0], ctx.weight("W")] + ([ctx.weight("b")] if "b" in n.W else [])
        return ctx.op("Conv", inputs, dilations=[a.dilation for a in axes], **_onnx_window(axes))

    def torch(ctx, n):
        axes = node_axes(n)
        f, c = n.W["W"].shape[:2]
        padding = "'same'" if n.p["padding"] == "same" else _tuple([a.before for a in axes])
        code = (f"nn.Conv{rank}d({c}, {f}, kernel_size={_tuple([a.kernel for a in axes])}, "
                f"stride={_tuple([a.stride for a in axes])}, padding={padding}, "
                f"dilation={_tuple([a.dilation for a in axes])}, bias={'b' in n.W})")
        state = {"weight": ("W", n.W["W"])}
        if "b" in n.W:
            state["bias"] = ("b", n.W["b"])
        return ctx.module(code, state)

    def numpy(ctx, n):
        ctx.helper("conv2d", _NUMPY_CONV)
        stride, dilation, pads = _numpy_2d_args(node_axes(n))
        bias = ctx.weight("b") if "b" in n.W else "None"
        if rank == 2:
            return f"conv2d({n.x[0]}, {ctx.weight('W')}, {bias}, {stride}, {dilation}, {pads})"
        return (f"conv2d({n.x[0]}[:, :, None, :], {ctx.weight('W')}[:, :, None, :], {bias}, {stride}, "
                f"{dilation}, {pads})[:, :, 0, :]")

    return {"onnx": onnx, "torch": torch, "numpy": numpy}


# ---- pooling -----------------------------------------------------------------------------
def pool_exporters(kind: str, rank: int) -> dict[str, Any]:
    def onnx(ctx, n):
        axes = node_axes(n)
        if kind == "max":
            return ctx.op("MaxPool", [n.x[0]], **_onnx_window(axes))
        return ctx.op("AveragePool", [n.x[0]], count_include_pad=1, **_onnx_window(axes))

    def torch(ctx, n):
        axes = node_axes(n)
        cls = f"nn.{'Max' if kind == 'max' else 'Avg'}Pool{rank}d"
        extra = "" if kind == "max" else ", count_include_pad=True"
        return ctx.module(f"{cls}(kernel_size={_tuple([a.kernel for a in axes])}, "
                          f"stride={_tuple([a.stride for a in axes])}, "
                          f"padding={_tuple([a.before for a in axes])}{extra})")

    def numpy(ctx, n):
        ctx.helper("pool2d", _NUMPY_POOL)
        axes = node_axes(n)
        stride, _, pads = _numpy_2d_args(axes)
        size = (1, axes[0].kernel) if rank == 1 else (axes[0].kernel, axes[1].kernel)
        call = f"pool2d({n.x[0]}{'[:, :, None, :]' if rank == 1 else ''}, {kind!r}, {size}, {stride}, {pads})"
        return call + ("[:, :, 0, :]" if rank == 1 else "")

    return {"onnx": onnx, "torch": torch, "numpy": numpy}


def global_exporters(rank: int) -> dict[str, Any]:
    dims = (2, 3) if rank == 2 else (2,)

    def onnx(ctx, n):
        return ctx.op("Flatten", [ctx.op("GlobalAveragePool", [n.x[0]])], axis=1)

    def torch(ctx, n):
        return ctx.expr(f"{n.x[0]}.mean(dim={dims if rank == 2 else 2})")

    def numpy(ctx, n):
        return f"{n.x[0]}.mean(axis={dims if rank == 2 else 2}, dtype={n.x[0]}.dtype)"

    return {"onnx": onnx, "torch": torch, "numpy": numpy}

