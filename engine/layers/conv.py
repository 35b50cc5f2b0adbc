"""Convolution and pooling: Conv2D, Conv1D, MaxPool2D/1D, AvgPool2D/1D, GlobalAvgPool2D/1D.

Examples are (C, H, W) images or (C, L) signals (no batch axis); a 1-D layer runs as a 2-D
one on an image of height 1, so both share the kernels of :mod:`engine.kernels.conv`
(im2col + one BLAS GEMM per pass, window loops for the pools). The size arithmetic, its
warnings and the shape errors live in :mod:`engine.layers.conv_geometry`; the exporters in
:mod:`engine.layers.conv_export`.

Weights are ``W`` (F, C, kh, kw) — (F, C, k) in 1-D — and ``b`` (F,), as in PyTorch and
ONNX; initialisers see fan_in = C·kh·kw and fan_out = F·kh·kw.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from engine.init import INITIALISERS, initialise
from engine.kernels.conv import (
    avg_pool_backward,
    avg_pool_forward,
    conv_backward_blocks,
    conv_forward_blocks,
    max_pool_backward,
    max_pool_forward,
    strip_shape,
)
from engine.kernels.strided_gemm import ONE_BLAS_THREAD
from engine.layers import conv_export as export
from engine.layers.base import LayerType, ParamSpec, register
from engine.layers.batch_halves import halves, run_parts
from engine.layers.conv_geometry import (
    Arithmetic,
    as_2d,
    check_rank,
    conv_weights_formula,
    output_shape,
    resolve,
)

ARITHMETIC_HELP = (
    "Output size per axis: I₂ = ⌊(I − F + 2P)/S⌋ + 1, where I is the input size, F = d·(k − 1) + 1 the "
    "span of the (dilated) window, P the padding and S the stride; e.g. a 28×28 input, 5×5 window, "
    "padding 2, stride 1: (28 − 5 + 2·2)/1 + 1 = 28. The division should be exact: (32 − 5)/2 + 1 = "
    "14.5 drops the last row, and the node shows a warning saying which padding or stride divides."
)


@dataclass(frozen=True)
class Plan:
    """A node's geometry as the kernels take it: a (C, H, W) input (1-D: H = 1), F outputs."""

    c: int
    h: int
    w: int
    f: int
    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pl: int
    ho: int
    wo: int

    @property
    def window(self) -> int:
        return self.c * self.kh * self.kw

    @property
    def positions(self) -> int:
        return self.ho * self.wo

    @property
    def pool_args(self) -> tuple[int, int, int, int, int, int]:
        return self.kh, self.kw, self.sh, self.sw, self.pt, self.pl

    @property
    def conv_args(self) -> tuple[int, ...]:
        return self.kh, self.kw, self.sh, self.sw, self.dh, self.dw, self.pt, self.pl, self.ho, self.wo


def _axes(layer: str, rank: int, pool: bool):
    return lambda p, shape: resolve(layer, p, shape, rank, pool)


def make_plan(layer: str, p, in_shape) -> Plan:
    """The kernel geometry of a ``layer`` node with parameters ``p`` on examples of ``in_shape``."""
    spec = SPECS[layer]
    axes = spec.axes(p, in_shape)
    height, width = as_2d(axes)
    f = p["filters"] if spec.conv else in_shape[0]
    return Plan(in_shape[0], height.size, width.size, f, height.kernel, width.kernel, height.stride,
                width.stride, height.dilation, width.dilation, height.before, width.before, height.out, width.out)


def plan_of(rt) -> Plan:
    """The node's :class:`Plan`, computed once per runtime (its input shape never changes)."""
    plan = rt.cache.get("plan")
    if plan is None:
        plan = rt.cache["plan"] = make_plan(rt.type.name, rt.p, tuple(rt.in_shapes[0]))
    return plan


def _buffer(rt, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The model's scratch array ``name`` (allocated once per batch size), or a fresh one when
    the runtime has none (a node run outside a model, as the tests do)."""
    buf = rt.scratch.get(name)
    if buf is None or buf.shape != shape or buf.dtype != rt.dtype:
        buf = np.empty(shape, rt.dtype)
    return buf


def _images(rt, x: np.ndarray, plan: Plan) -> np.ndarray:
    """The batch as a C-contiguous (N, C, H, W) array of the model's dtype (a view if it can be)."""
    return np.ascontiguousarray(x, dtype=rt.dtype).reshape(len(x), plan.c, plan.h, plan.w)


# ---- convolution ------------------------------------------------------------------------
def _conv_shape(layer: str):
    return lambda p, in_shapes: output_shape(p["filters"], SPECS[layer].axes(p, in_shapes[0]))


def _conv_weights(p, in_shapes):
    kernel = p["kernel_size"] if isinstance(p["kernel_size"], tuple) else (p["kernel_size"],)
    out = {"W": (p["filters"], in_shapes[0][0], *kernel)}
    if p["bias"]:
        out["b"] = (p["filters"],)
    return out


def _conv_init(p, in_shapes, rng):
    shape = _conv_weights(p, in_shapes)["W"]
    area = math.prod(shape[2:])
    out = {"W": initialise(p["init"], shape, shape[1] * area, shape[0] * area, rng, p["init_scale"])}
    if p["bias"]:
        out["b"] = np.zeros(p["filters"])
    return out


COLUMN_BLOCK_BYTES = 512 * 1024
"""At most this many bytes of im2col columns per block of images: a block's columns are written
by im2col and read at once by its GEMM while they are still in the core's L2 cache (measured on
W4's first convolution, 1 BLAS thread: 0.80 ms for its forward on the whole batch of 64, 0.48 ms
in blocks of 8 images, 612 KiB; blocks of 1.2 MiB and more were as slow as the whole batch)."""


STRIP_RUN = 256
"""Output positions Ho·Wo from which a convolution with a vertical stride of 1 computes ∂L/∂W
from the strips in place rather than from a copy of its columns (measured on W4: runs of 784
gain 30 %, runs of 100 lose 50 %; engine/kernels/conv.py, weight_gradient_from_strips)."""


def _block_images(plan: Plan) -> int:
    """Images per block: as many as have float32 columns within :data:`COLUMN_BLOCK_BYTES`
    (float64 ones take twice that; the scratch is sized without knowing the model's dtype)."""
    return max(1, COLUMN_BLOCK_BYTES // (plan.window * plan.positions * 4))


def _parts(plan: Plan, n: int) -> list[tuple[int, int]]:
    """The parts [a, b) of a batch of ``n``: its halves (:func:`halves`, run on two threads at
    once) when BLAS may use two threads, else the whole batch. Every convolution splits: on
    W4 (2-vCPU AMD EPYC, 2 threads, in process) a step took 9.2 ms with only the 16-filter
    convolution split and 7.0 ms with both (the 6-filter one's thin GEMM is the costlier
    half of its pass); on an Intel Xeon the two were level within noise (3.98 and 3.66 ms)."""
    return halves(n)


def _part_scratch(plan: Plan, m: int) -> dict[str, tuple[int, ...]]:
    """A part of ``m`` images: one block's columns (overwritten by its ∂L/∂cols in backward),
    GEMM result (also its transposed ∂L/∂y) and strips (vertical stride 1), ∂L/∂Wᵀ and ∂L/∂b.
    Backward recomputes each block's columns from the images rather than keeping every
    block's from forward: on W4 (1 thread, AMD EPYC) a step took 5.8–6.0 ms against 6.8 ms,
    the kept columns (5 MiB for the first convolution) having gone out to memory by then."""
    per = min(_block_images(plan), max(m, 1))
    strip = math.prod(strip_shape(plan.c, per, plan.kh, plan.kw, plan.dh, plan.ho, plan.wo)) if plan.sh == 1 else 0
    return {"cols": (plan.window * per * plan.positions,), "rows": (plan.f * per * plan.positions,),
            "strip": (strip,), "dWt": (plan.window, plan.f), "db": (plan.f,)}


def _conv_scratch(layer: str):
    def scratch(p, in_shapes, n):
        """Per batch of n, for each part of the batch (one, or two halves run on two threads)
        the arrays of :func:`_part_scratch`."""
        plan = make_plan(layer, p, tuple(in_shapes[0]))
        return {f"{k}:{name}": shape for k, (a, b) in enumerate(_parts(plan, n))
                for name, shape in _part_scratch(plan, b - a).items()}
    return scratch


Part = tuple[int, int, dict[str, np.ndarray]]


def _conv_parts(rt, plan: Plan, n: int) -> list[Part]:
    """(first image, end image, scratch arrays) of every part of a batch of ``n``."""
    return [(a, b, {name: _buffer(rt, f"{k}:{name}", shape) for name, shape in _part_scratch(plan, b - a).items()})
            for k, (a, b) in enumerate(_parts(plan, n))]


def _conv_forward(rt, xs):
    """y = W₂·im2col(x) + b, laid out back into (N, F, Ho, Wo), in blocks of images whose
    columns stay in cache, one kernel call per part (engine/kernels/conv.py,
    conv_forward_blocks); the halves of a large batch on two threads (:func:`_parts`,
    engine/layers/batch_halves.py)."""
    plan = plan_of(rt)
    x = _images(rt, xs[0], plan)
    n = len(x)
    w2 = rt.W["W"].reshape(plan.f, plan.window)
    bias = rt.W["b"] if "b" in rt.W else np.empty(0, rt.dtype)
    y = np.empty((n, plan.f, plan.positions), rt.dtype)
    parts = _conv_parts(rt, plan, n)
    per = _block_images(plan)
    with ONE_BLAS_THREAD:
        run_parts([functools.partial(conv_forward_blocks, x[a:b], w2, bias, *plan.conv_args, per, s["cols"],
                                     s["rows"], s["strip"], y[a:b]) for a, b, s in parts], hold_numpy_blas=False)
    rt.cache["parts"], rt.cache["n"], rt.cache["x"] = parts, n, x
    return y.reshape((n,) + tuple(rt.out_shape))


def _conv_backward(rt, dy):
    """∂L/∂W₂ = ΔY·colsᵀ, ∂L/∂b = Σ ΔY, ∂L/∂x = col2im(W₂ᵀ·ΔY) (ΔY: ∂L/∂y as (F, m·Ho·Wo)),
    block by block, one kernel call per part (conv_backward_blocks); the parts' ∂L/∂W and
    ∂L/∂b are summed.

    Each block's columns are rebuilt from the images forward kept (:func:`_part_scratch`
    says why) and overwritten by ∂L/∂cols once ∂L/∂W is done: one backward per forward, as
    the model runs them.
    """
    plan, parts, n = plan_of(rt), rt.cache["parts"], rt.cache["n"]
    delta = np.ascontiguousarray(dy, dtype=rt.dtype).reshape(n, plan.f, plan.positions)
    w2 = rt.W["W"].reshape(plan.f, plan.window)
    has_bias = "b" in rt.G
    need_dx = bool(rt.need_input_grad)
    dx = np.empty((n, plan.c, plan.h, plan.w) if need_dx else (n, 0, 0, 0), rt.dtype)
    per = _block_images(plan)
    x = rt.cache["x"]
    from_strips = plan.sh == 1 and plan.positions >= STRIP_RUN

    with ONE_BLAS_THREAD:
        run_parts([functools.partial(conv_backward_blocks, delta[a:b], w2, *plan.conv_args, per, s["cols"], s["rows"],
                                     s["strip"], s["dWt"], has_bias, s["db"], need_dx, dx[a:b], x[a:b], from_strips)
                   for a, b, s in parts], hold_numpy_blas=False)
    rt.G["W"].reshape(plan.f, plan.window)[...] = sum(s["dWt"] for _, _, s in parts).T
    if has_bias:
        rt.G["b"][...] = sum(s["db"] for _, _, s in parts)
    if not need_dx:
        return [None]
    return [dx.reshape((n,) + tuple(rt.in_shapes[0]))]


def _conv_arithmetic(layer: str):
    def arithmetic(p, in_shapes):
        axes = SPECS[layer].axes(p, in_shapes[0])
        kernel = tuple(a.kernel for a in axes)
        count, text = conv_weights_formula(kernel, in_shapes[0][0], p["filters"], p["bias"])
        return Arithmetic(layer, tuple(in_shapes[0]), output_shape(p["filters"], axes), axes, count, text)
    return arithmetic


def _window_warnings(layer: str):
    """The warning of every axis whose size division is not exact (rows are dropped)."""
    return lambda p, in_shapes: [a.advice() for a in SPECS[layer].axes(p, in_shapes[0]) if not a.exact]


# ---- pooling ----------------------------------------------------------------------------
def _max_pool_forward(rt, xs):
    """y = the maximum of each window; the position of each maximum is kept for backward.
    The whole batch on one thread: pooling only moves data, and its halves on two threads
    made W4 slower (2-vCPU Intel Xeon: 4.65 ms a step with every convolution and pool split,
    3.70 ms with one convolution only; each handoff to the helper thread costs ~80 µs)."""
    plan = plan_of(rt)
    x = _images(rt, xs[0], plan)
    n = len(x)
    y = np.empty((n, plan.c, plan.ho, plan.wo), rt.dtype)
    argmax = np.empty(y.shape, np.int32)
    max_pool_forward(x, *plan.pool_args, y, argmax)
    rt.cache["argmax"], rt.cache["n"] = argmax, n
    return y.reshape((n,) + tuple(rt.out_shape))


def _max_pool_backward(rt, dy):
    """∂L/∂y of each window goes to the (first) pixel that held its maximum."""
    plan, argmax, n = plan_of(rt), rt.cache["argmax"], rt.cache["n"]
    dx = np.empty((n, plan.c, plan.h, plan.w), rt.dtype)
    delta = np.ascontiguousarray(dy, dtype=rt.dtype).reshape(argmax.shape)
    max_pool_backward(delta, argmax, dx)
    return [dx.reshape((n,) + tuple(rt.in_shapes[0]))]


def _avg_pool_forward(rt, xs):
    """y = the mean of each window (padding counted as zeros)."""
    plan = plan_of(rt)
    x = _images(rt, xs[0], plan)
    y = np.empty((len(x), plan.c, plan.ho, plan.wo), rt.dtype)
    avg_pool_forward(x, *plan.pool_args, y)
    rt.cache["n"] = len(x)
    return y.reshape((len(x),) + tuple(rt.out_shape))


def _avg_pool_backward(rt, dy):
    """∂L/∂y of each window is shared equally by its kh·kw positions (padding included)."""
    plan, n = plan_of(rt), rt.cache["n"]
    dx = np.empty((n, plan.c, plan.h, plan.w), rt.dtype)
    delta = np.ascontiguousarray(dy, dtype=rt.dtype).reshape(n, plan.c, plan.ho, plan.wo)
    avg_pool_backward(delta, *plan.pool_args, dx)
    return [dx.reshape((n,) + tuple(rt.in_shapes[0]))]


def _pool_shape(layer: str):
    return lambda p, in_shapes: output_shape(in_shapes[0][0], SPECS[layer].axes(p, in_shapes[0]))


def _pool_arithmetic(layer: str):
    def arithmetic(p, in_shapes):
        axes = SPECS[layer].axes(p, in_shapes[0])
        return Arithmetic(layer, tuple(in_shapes[0]), output_shape(in_shapes[0][0], axes), axes, 0, "")
    return arithmetic


# ---- global average pooling -------------------------------------------------------------
def _global_shape(rank: int, layer: str):
    def shape(p, in_shapes):
        check_rank(layer, in_shapes[0], rank)
        return (in_shapes[0][0],)
    return shape


def _global_forward(rt, xs):
    """y[n, c] = mean over every position of x[n, c]."""
    x = xs[0]
    flat = x.reshape(len(x), x.shape[1], -1)
    rt.cache["positions"] = flat.shape[2]
    return flat.mean(axis=2, dtype=np.float64).astype(rt.dtype)


def _global_backward(rt, dy):
    """∂L/∂x[n, c, …] = ∂L/∂y[n, c] / (number of positions)."""
    positions = rt.cache["positions"]
    dx = np.empty((len(dy), dy.shape[1], positions), rt.dtype)
    dx[...] = (dy / positions)[:, :, None]
    return [dx.reshape((len(dy),) + tuple(rt.in_shapes[0]))]


# ---- declarations -----------------------------------------------------------------------
@dataclass(frozen=True)
class Spec:
    axes: object
    conv: bool


SPECS = {
    "Conv2D": Spec(_axes("Conv2D", 2, False), True),
    "Conv1D": Spec(_axes("Conv1D", 1, False), True),
    "MaxPool2D": Spec(_axes("MaxPool2D", 2, True), False),
    "AvgPool2D": Spec(_axes("AvgPool2D", 2, True), False),
    "MaxPool1D": Spec(_axes("MaxPool1D", 1, True), False),
    "AvgPool1D": Spec(_axes("AvgPool1D", 1, True), False),
}

_HW = ("height", "width")


def _conv_params(rank: int) -> tuple[ParamSpec, ...]:
    two = rank == 2
    kernel = ParamSpec("kernel_size", "ints", (3, 3), "Kernel height and width (kh, kw); one number "
                       "gives a square kernel.", length=2, min=1, max=64, labels=_HW) if two else \
        ParamSpec("kernel_size", "int", 3, "Kernel length k.", min=1, max=256)
    stride = ParamSpec("stride", "ints", (1, 1), "Step S between neighbouring windows, per axis; S > 1 "
                       "shrinks the output about S times.", length=2, min=1, max=64, labels=_HW) if two else \
        ParamSpec("stride", "int", 1, "Step S between neighbouring windows.", min=1, max=256)
    dilation = ParamSpec("dilation", "ints", (1, 1), "Spacing d between kernel taps: the kernel spans "
                         "d·(k − 1) + 1 inputs (atrous convolution).", length=2, min=1, max=32, labels=_HW) if two \
        else ParamSpec("dilation", "int", 1, "Spacing d between kernel taps: the kernel spans d·(k − 1) + 1 "
                       "inputs.", min=1, max=64)
    padding = ParamSpec(
        "padding", "choice_or_ints", "valid",
        "Zeros added around the input: \"valid\" (none), \"same\" (stride 1 only, as PyTorch: the output keeps "
        "the input size; an even kernel pads one more at the end) or " + ("[ph, pw] on each side." if two else
                                                                          "p on each side."),
        choices=("valid", "same"), length=rank, min=0, max=64, labels=_HW if two else ("length",))
    return (
        ParamSpec("filters", "int", 8, "Number of filters F = output channels; each learns one kernel "
                  "over all input channels.", min=1, max=4096),
        kernel, stride, padding, dilation,
        ParamSpec("bias", "bool", True, "Add a learned bias b_f to each filter's output."),
        ParamSpec("init", "choice", "he_uniform",
                  "How W is initialised (fan_in = C·kh·kw, fan_out = F·kh·kw). "
                  + "; ".join(f"{k}: {v[0]}" for k, v in INITIALISERS.items()), choices=tuple(INITIALISERS)),
        ParamSpec("init_scale", "float", 0.01, "σ for 'normal', a for 'uniform' initialisation.",
                  min=0.0, max=100.0, enabled_when={"init": ("normal", "uniform")}),
    )


def _pool_params(rank: int) -> tuple[ParamSpec, ...]:
    two = rank == 2
    labels = _HW if two else ("length",)
    size = ParamSpec("pool_size", "ints", (2, 2), "Window height and width; one number gives a square "
                     "window.", length=2, min=1, max=64, labels=_HW) if two else \
        ParamSpec("pool_size", "int", 2, "Window length.", min=1, max=256)
    return (
        size,
        ParamSpec("stride", "choice_or_ints", "pool_size", "Step between windows: \"pool_size\" (windows side by "
                  "side, no overlap) or numbers per axis.", choices=("pool_size",), length=rank, min=1, max=64,
                  labels=labels),
        ParamSpec("padding", "choice_or_ints", "valid", "Padding on each side: \"valid\" (none) or numbers, at "
                  "most half the window.", choices=("valid",), length=rank, min=0, max=32, labels=labels),
    )


def _conv_type(rank: int) -> LayerType:
    name = f"Conv{rank}D"
    image = "(C, H, W) image" if rank == 2 else "(C, L) signal"
    window = "kh×kw" if rank == 2 else "k"
    help_text = (
        f"Slides F learned kernels of size C×{window} over a {image}: every output value is a weighted sum of "
        f"one window of the input plus a bias, and the same kernel is used at every position (weight sharing), "
        f"so the layer has (" + ("kh·kw" if rank == 2 else "k") + "·C + 1)·F weights, e.g. "
        + ("(5·5·1 + 1)·6 = 156 for 6 filters of 5×5 on a grey image" if rank == 2 else
           "(5·1 + 1)·6 = 36 for 6 filters of length 5 on a one-channel signal")
        + f". {ARITHMETIC_HELP} A {'1×1' if rank == 2 else 'size-1'} convolution mixes channels at every "
        f"position. W has shape (F, C, {'kh, kw' if rank == 2 else 'k'}) and b (F,), as in PyTorch and ONNX."
    )
    return LayerType(
        name=name, category="conv", per_example=True, help=help_text, params=_conv_params(rank),
        shape=_conv_shape(name), forward=_conv_forward, backward=_conv_backward,
        weights=_conv_weights, init=_conv_init, decay=("W",), scratch=_conv_scratch(name),
        key_params=("filters", "kernel_size", "stride", "padding"),
        warnings=_window_warnings(name), arithmetic=_conv_arithmetic(name),
        exporters=export.conv_exporters(rank),
    )


def _pool_type(kind: str, rank: int) -> LayerType:
    name = f"{'Max' if kind == 'max' else 'Avg'}Pool{rank}D"
    what = ("the largest value of each window (padding counts as −∞); its gradient goes only to that value"
            if kind == "max" else
            "the mean of each window (padding counts as zeros in the mean); its gradient is shared equally")
    help_text = (f"Keeps {what}, per channel, with no weights: it shrinks the {'image' if rank == 2 else 'signal'} "
                 f"(2×2 windows side by side halve height and width) and makes the features tolerate small "
                 f"shifts. {ARITHMETIC_HELP}")
    forward, backward = (_max_pool_forward, _max_pool_backward) if kind == "max" else \
        (_avg_pool_forward, _avg_pool_backward)
    return LayerType(
        name=name, category="conv", per_example=True, help=help_text, params=_pool_params(rank),
        shape=_pool_shape(name), forward=forward, backward=backward,
        key_params=("pool_size", "stride"), warnings=_window_warnings(name), arithmetic=_pool_arithmetic(name),
        exporters=export.pool_exporters(kind, rank),
    )


def _global_type(rank: int) -> LayerType:
    name = f"GlobalAvgPool{rank}D"
    shape = "(C, H, W) → (C,)" if rank == 2 else "(C, L) → (C,)"
    return LayerType(
        name=name, category="conv", per_example=True,
        help=f"Averages every channel over all its positions, {shape}: one number per feature map, ready for a "
             f"Dense classifier without a Flatten, whatever the input size (Lin et al. 2014; ResNet's head).",
        shape=_global_shape(rank, name), forward=_global_forward, backward=_global_backward,
        exporters=export.global_exporters(rank),
    )


for _layer in (_conv_type(2), _conv_type(1), _pool_type("max", 2), _pool_type("avg", 2), _global_type(2),
               _pool_type("max", 1), _pool_type("avg", 1), _global_type(1)):
    register(_layer)
