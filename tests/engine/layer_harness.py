"""The table every registered layer type is tested from, and the tools to run it.

Adding a layer type means adding here: its cases (parameters and input shapes), an
independent NumPy reference for its forward (textbook formulas, written without looking
at the engine's code path) and a hand formula for its parameter count. ``test_layers.py``
fails for any registered type missing from these tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.kernels.activations import reference_forward
from engine.layers import REGISTRY, NodeRuntime
from engine.layers.base import LayerType

Shape = tuple[int, ...]
SEED = 1234  # rt.rng is re-seeded with this before every forward: Dropout's mask is fixed


@dataclass(frozen=True)
class Case:
    """One layer configuration to test: type, parameters, per-example input shapes."""

    type: str
    params: dict[str, Any]
    in_shapes: tuple[Shape, ...]
    training: bool = False
    batch: int = 4
    kinks: tuple[float, ...] = ()  # inputs are kept away from these (non-differentiable points)
    distinct: bool = False  # inputs all distinct (maxout: no ties inside a group)
    random_buffers: bool = False  # evaluation-mode cases: non-trivial running statistics
    label: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        shapes = "+".join("x".join(map(str, s)) for s in self.in_shapes)
        extra = ",".join(f"{k}={'x'.join(map(str, v)) if isinstance(v, tuple) else v}"
                         for k, v in self.params.items())
        mode = "-train" if self.training else ""
        return f"{self.type}[{extra}]({shapes}){mode}{self.label}"

    @property
    def layer(self) -> LayerType:
        return REGISTRY[self.type]

    def p(self) -> dict[str, Any]:
        return self.layer.validate_params(self.params)


# ---- independent references (float64) -----------------------------------------------
def _ref_dense(p, xs, W, B, training, seed):
    y = np.einsum("...i,io->...o", xs[0], W["W"])
    return y + W["b"] if p["bias"] else y


def _ref_activation(p, xs, W, B, training, seed):
    x, fn = xs[0], p["function"]
    if fn == "maxout":
        k = p["pieces"]
        groups = [x[:, j * k:(j + 1) * k].max(axis=1) for j in range(x.shape[1] // k)]
        return np.stack(groups, axis=1)
    alpha = W["alpha"][0] if fn == "prelu" else p["alpha"]
    return reference_forward(fn, x, alpha)


def _ref_softmax(p, xs, W, B, training, seed):
    e = np.exp(xs[0])
    return e / e.sum(axis=-1, keepdims=True)


def _ref_dropout(p, xs, W, B, training, seed):
    x, rate = xs[0], p["rate"]
    if not training:
        return x.copy()
    keep = np.random.default_rng(seed).random(x.shape) < 1.0 - rate
    return np.where(keep, x / (1.0 - rate), 0.0)


def _feature_axis(x: np.ndarray) -> int:
    """Channels for (N, C, H, W), the last axis otherwise."""
    return 1 if x.ndim == 4 else x.ndim - 1


def _ref_batchnorm(p, xs, W, B, training, seed):
    x = xs[0]
    ax = _feature_axis(x)
    moved = np.moveaxis(x, ax, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    if training:
        mean, var = rows.mean(axis=0), rows.var(axis=0)
    else:
        mean, var = B["running_mean"], B["running_var"]
    out = W["gamma"] * (moved - mean) / np.sqrt(var + p["eps"]) + W["beta"]
    return np.moveaxis(out, -1, ax)


def _ref_add(p, xs, W, B, training, seed):
    return np.sum(np.stack(xs), axis=0)


def _ref_concat(p, xs, W, B, training, seed):
    rank = xs[0].ndim - 1
    ax = (p["axis"] % rank) + 1
    shape = list(xs[0].shape)
    shape[ax] = sum(x.shape[ax] for x in xs)
    out = np.zeros(shape)
    start = 0
    for x in xs:
        index = [slice(None)] * out.ndim
        index[ax] = slice(start, start + x.shape[ax])
        out[tuple(index)] = x
        start += x.shape[ax]
    return out


def _ref_flatten(p, xs, W, B, training, seed):
    return np.array([example.ravel() for example in xs[0]])


def _ref_reshape(p, xs, W, B, training, seed):
    x = xs[0]
    size = x[0].size
    target = list(p["shape"])
    if -1 in target:
        known = math.prod(v for v in target if v != -1)
        target[target.index(-1)] = size // known
    return np.array([example.reshape(target) for example in x])


def _ref_split(p, xs, W, B, training, seed):
    x = xs[0]
    ax = (p["axis"] % (x.ndim - 1)) + 1
    size = x.shape[ax] // p["parts"]
    outs = []
    for i in range(p["parts"]):
        index = [slice(None)] * x.ndim
        index[ax] = slice(i * size, (i + 1) * size)
        outs.append(x[tuple(index)].copy())
    return outs


def _side_padding(padding, kernel, dilation) -> list[tuple[int, int]]:
    """(before, after) zeros per spatial axis: "valid" none, "same" as PyTorch (total d·(k − 1),
    the odd one at the end), numbers on both sides."""
    if padding == "valid":
        return [(0, 0)] * len(kernel)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    return [(q, q) for q in padding]


def _as_pair(value, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * rank


def _padded(x: np.ndarray, pads: list[tuple[int, int]], fill: float) -> np.ndarray:
    (pt, pb), (pl, pr) = pads
    out = np.full(x.shape[:2] + (x.shape[2] + pt + pb, x.shape[3] + pl + pr), fill)
    out[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]] = x
    return out


def _ref_conv(p, xs, W, B, training, seed):
    """y[n, f, a, b] = b_f + Σ_{c,i,j} W[f, c, i, j]·x_pad[n, c, a·sh + i·dh, b·sw + j·dw], one
    output position at a time; a 1-D signal is an image of height 1."""
    x, w = xs[0], W["W"]
    one_d = x.ndim == 3
    rank = 1 if one_d else 2
    stride, dilation = _as_pair(p["stride"], rank), _as_pair(p["dilation"], rank)
    pads = _side_padding(p["padding"] if isinstance(p["padding"], str) else _as_pair(p["padding"], rank),
                         w.shape[2:], dilation)
    if one_d:
        x, w, stride, dilation, pads = x[:, :, None, :], w[:, :, None, :], (1, *stride), (1, *dilation), [(0, 0), *pads]
    xp = _padded(x, pads, 0.0)
    (sh, sw), (dh, dw), (kh, kw) = stride, dilation, w.shape[2:]
    ho, wo = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1, (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for a in range(ho):
        for b in range(wo):
            patch = xp[:, :, a * sh:a * sh + dh * (kh - 1) + 1:dh, b * sw:b * sw + dw * (kw - 1) + 1:dw]
            y[:, :, a, b] = np.einsum("ncij,fcij->nf", patch, w)
    if p["bias"]:
        y += W["b"][None, :, None, None]
    return y[:, :, 0, :] if one_d else y


def _ref_pool(kind: str):
    def reference(p, xs, W, B, training, seed):
        """Max (padding −∞) or mean (zero padding counted, divided by the window size) per window."""
        x = xs[0]
        one_d = x.ndim == 3
        rank = 1 if one_d else 2
        size = _as_pair(p["pool_size"], rank)
        stride = size if p["stride"] == "pool_size" else _as_pair(p["stride"], rank)
        pads = _side_padding(p["padding"] if p["padding"] == "valid" else _as_pair(p["padding"], rank),
                             size, (1,) * rank)
        if one_d:
            x, size, stride, pads = x[:, :, None, :], (1, *size), (1, *stride), [(0, 0), *pads]
        xp = _padded(x, pads, -np.inf if kind == "max" else 0.0)
        ho, wo = (xp.shape[2] - size[0]) // stride[0] + 1, (xp.shape[3] - size[1]) // stride[1] + 1
        y = np.zeros(x.shape[:2] + (ho, wo))
        for a in range(ho):
            for b in range(wo):
                window = xp[:, :, a * stride[0]:a * stride[0] + size[0], b * stride[1]:b * stride[1] + size[1]]
                y[:, :, a, b] = window.max(axis=(2, 3)) if kind == "max" else window.mean(axis=(2, 3))
        return y[:, :, 0, :] if one_d else y
    return reference


def _ref_global_average(p, xs, W, B, training, seed):
    x = xs[0]
    return np.array([[channel.mean() for channel in example] for example in x])


def _conv_count(p, s) -> int:
    kernel = math.prod(_as_pair(p["kernel_size"], len(s[0]) - 1))
    return p["filters"] * (s[0][0] * kernel + (1 if p["bias"] else 0))


def _ref_mixture(p, xs, W, B, training, seed):
    """Bishop's mixture density output, written from the formulas: per position, K mixing
    weights by softmax, K means as they are, K deviations σ_min + e^s or σ_min + log(1 + e^s)."""
    z, k = xs[0], p["components"]
    out = np.empty_like(z)
    for index in np.ndindex(z.shape[:-1]):
        a, m, s = z[index][:k], z[index][k:2 * k], z[index][2 * k:]
        weights = np.exp(a) / np.sum(np.exp(a))
        spread = np.exp(s) if p["sigma"] == "exp" else np.log(1.0 + np.exp(s))
        out[index] = np.concatenate([weights, m, p["min_sigma"] + spread])
    return out


# ---- recurrent layers: the textbook recurrences, one step at a time ---------------------
def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


_PHI = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "sigmoid": _sig}
RECURRENT = ("SimpleRNN", "LSTM", "GRU")


def run_recurrent(kind: str, p, x, W, frozen: dict | None = None):
    """Hidden states h_1..h_T of a SimpleRNN, LSTM (gates i, f, g, o) or GRU (r, z, n) from
    their defining equations, and the (h, c) entering every step. ``frozen[t]`` replaces the
    state entering step t (0-based) by a given constant: a detached state, as truncated BPTT."""
    N, T, _ = x.shape
    H, phi, bias = p["units"], _PHI[p["activation"]], p["bias"]

    def block(name, k):
        return W[name][..., k * H:(k + 1) * H]

    h, c = np.zeros((N, H)), np.zeros((N, H))
    hs, entering = [], []
    for t in range(T):
        if frozen is not None and t in frozen:
            h, c = frozen[t]
        entering.append((h.copy(), c.copy()))
        xt = x[:, t]
        if kind == "SimpleRNN":
            h = phi(xt @ W["Wx"] + h @ W["Wh"] + (W["b"] if bias else 0.0))
        elif kind == "LSTM":
            def gate(k, xt=xt, h=h):
                return xt @ block("Wx", k) + h @ block("Wh", k) + (block("b", k) if bias else 0.0)
            i, f, g, o = _sig(gate(0)), _sig(gate(1)), phi(gate(2)), _sig(gate(3))
            c = f * c + i * g
            h = o * phi(c)
        else:
            def xpart(k, xt=xt):
                return xt @ block("Wx", k) + (block("bx", k) if bias else 0.0)

            def hpart(k, v):
                return v @ block("Wh", k) + (block("bh", k) if bias else 0.0)
            r, z = _sig(xpart(0) + hpart(0, h)), _sig(xpart(1) + hpart(1, h))
            n = phi(xpart(2) + (r * hpart(2, h) if p["reset_after"] else hpart(2, r * h)))
            h = (1.0 - z) * n + z * h
        hs.append(h)
    return hs, entering


def recurrent_ports(p, hs):
    """(out, state): the sequence or the last state, and the last state."""
    seq = np.stack(hs, axis=1)
    return [seq if p["return_sequences"] else hs[-1].copy(), hs[-1].copy()]


def truncation_boundaries(T: int, k: int) -> list[int]:
    """Steps (0-based) whose entering state truncated BPTT detaches: blocks of k counted from the end."""
    return [t for t in range(1, T) if k > 0 and (T - t) % k == 0]


def _recurrent_reference(kind):
    def ref(p, xs, W, B, training, seed):
        return recurrent_ports(p, run_recurrent(kind, p, xs[0], W)[0])
    return ref


Reference = Callable[..., np.ndarray | list[np.ndarray]]
REFERENCES: dict[str, Reference] = {
    "Input": lambda p, xs, W, B, training, seed: xs[0].copy(),
    "Dense": _ref_dense,
    "Activation": _ref_activation,
    "Softmax": _ref_softmax,
    "Dropout": _ref_dropout,
    "BatchNorm": _ref_batchnorm,
    "Add": _ref_add,
    "Concat": _ref_concat,
    "Split": _ref_split,
    "Flatten": _ref_flatten,
    "Reshape": _ref_reshape,
    "Conv2D": _ref_conv,
    "Conv1D": _ref_conv,
    "MaxPool2D": _ref_pool("max"),
    "AvgPool2D": _ref_pool("avg"),
    "MaxPool1D": _ref_pool("max"),
    "AvgPool1D": _ref_pool("avg"),
    "GlobalAvgPool2D": _ref_global_average,
    "GlobalAvgPool1D": _ref_global_average,
    "MixtureDensity": _ref_mixture,
    **{kind: _recurrent_reference(kind) for kind in RECURRENT},
}

# ---- parameter counts by hand --------------------------------------------------------
PARAM_COUNTS: dict[str, Callable[[dict[str, Any], list[Shape]], int]] = {
    "Input": lambda p, s: 0,
    "Dense": lambda p, s: s[0][-1] * p["units"] + (p["units"] if p["bias"] else 0),
    "Activation": lambda p, s: 1 if p["function"] == "prelu" else 0,
    "Softmax": lambda p, s: 0,
    "Dropout": lambda p, s: 0,
    "BatchNorm": lambda p, s: 2 * (s[0][0] if len(s[0]) == 3 else s[0][-1]),
    "Add": lambda p, s: 0,
    "Concat": lambda p, s: 0,
    "Split": lambda p, s: 0,
    "Flatten": lambda p, s: 0,
    "Reshape": lambda p, s: 0,
    "Conv2D": _conv_count,
    "Conv1D": _conv_count,
    **{name: (lambda p, s: 0) for name in ("MaxPool2D", "AvgPool2D", "MaxPool1D", "AvgPool1D",
                                             "GlobalAvgPool2D", "GlobalAvgPool1D")},
    "MixtureDensity": lambda p, s: 0,
    "SimpleRNN": lambda p, s: s[0][1] * p["units"] + p["units"] ** 2 + (p["units"] if p["bias"] else 0),
    "LSTM": lambda p, s: 4 * (s[0][1] * p["units"] + p["units"] ** 2) + (4 * p["units"] if p["bias"] else 0),
    "GRU": lambda p, s: 3 * (s[0][1] * p["units"] + p["units"] ** 2) + (6 * p["units"] if p["bias"] else 0),
}


# ---- cases ---------------------------------------------------------------------------
def _activation_cases() -> list[Case]:
    layer = REGISTRY["Activation"]
    by_function = {}
    for name, params in layer.presets.items():
        by_function.setdefault(params["function"], []).append((name, dict(params)))
    cases = []
    for fn in layer.param_spec("function").choices:
        variants = by_function.get(fn, [("", {"function": fn})])
        for name, params in variants:
            kinks = {"relu": (0.0,), "leaky_relu": (0.0,), "prelu": (0.0,), "elu": (0.0,),
                     "hard_tanh": (-1.0, 1.0)}.get(fn, ())
            shape = (6,)
            cases.append(Case("Activation", params, (shape,), kinks=kinks, distinct=fn == "maxout",
                              label=f"-{name.replace(' ', '_')}" if name else ""))
    cases += [
        Case("Activation", {"function": "maxout", "pieces": 3}, ((6,),), distinct=True),
        Case("Activation", {"function": "tanh"}, ((3, 4),)),
        Case("Activation", {"function": "relu"}, ((2, 3, 3),), kinks=(0.0,)),
        Case("Activation", {"function": "elu", "alpha": 0.5}, ((5,),), kinks=(0.0,)),
    ]
    return cases


CASES: list[Case] = [
    Case("Input", {"shape": (3,)}, ((3,),)),
    Case("Input", {"shape": (2, 3, 3)}, ((2, 3, 3),)),
    Case("Dense", {"units": 4}, ((5,),)),
    Case("Dense", {"units": 3, "bias": False}, ((5,),)),
    Case("Dense", {"units": 4}, ((3, 5),)),
    *_activation_cases(),
    Case("Softmax", {}, ((5,),)),
    Case("Softmax", {}, ((3, 4),)),
    Case("Dropout", {"rate": 0.5}, ((8,),), training=True),
    Case("Dropout", {"rate": 0.3}, ((8,),)),
    Case("Dropout", {"rate": 0.25}, ((2, 3, 3),), training=True),
    Case("BatchNorm", {}, ((5,),), training=True, batch=6),
    Case("BatchNorm", {"eps": 1e-3}, ((3, 2, 2),), training=True, batch=3),
    Case("BatchNorm", {}, ((3, 4),), training=True, batch=3),
    Case("BatchNorm", {}, ((5,),), batch=6, random_buffers=True),
    Case("BatchNorm", {}, ((3, 2, 2),), batch=3, random_buffers=True),
    Case("Add", {}, ((5,), (5,))),
    Case("Add", {"inputs": 3}, ((2, 3, 3), (2, 3, 3), (2, 3, 3))),
    Case("Concat", {}, ((3,), (5,))),
    Case("Concat", {"inputs": 3}, ((2, 2, 3), (1, 2, 3), (3, 2, 3))),
    Case("Concat", {"axis": -1}, ((4, 2), (4, 3))),
    Case("Concat", {"axis": 2}, ((2, 3, 1), (2, 3, 2))),
    Case("Split", {}, ((6,),)),
    Case("Split", {"parts": 3, "axis": -1}, ((2, 6),)),
    Case("Split", {"parts": 2}, ((4, 3, 3),)),
    Case("Flatten", {}, ((2, 3, 4),)),
    Case("Flatten", {}, ((3, 4),)),
    Case("Flatten", {}, ((5,),)),
    Case("Reshape", {"shape": (2, 3, 4)}, ((24,),)),
    Case("Reshape", {"shape": (-1,)}, ((2, 3, 4),)),
    Case("Reshape", {"shape": (4, -1)}, ((3, 4),)),
    *[Case("Conv2D", params, (shape,)) for params, shape in [
        ({"filters": 3, "kernel_size": [3, 3]}, (2, 5, 6)),
        ({"filters": 2, "kernel_size": [3, 2], "stride": [2, 3], "padding": [1, 2]}, (2, 7, 8)),
        ({"filters": 2, "kernel_size": 3, "dilation": [2, 1], "bias": False}, (1, 7, 5)),
        ({"filters": 3, "kernel_size": [4, 3], "padding": "same"}, (2, 5, 5)),
        ({"filters": 4, "kernel_size": 1}, (3, 4, 4)),
        ({"filters": 2, "kernel_size": 2, "stride": 2, "dilation": 2, "padding": 1}, (1, 9, 9)),
    ]],
    *[Case("Conv1D", params, (shape,)) for params, shape in [
        ({"filters": 3, "kernel_size": 3}, (2, 9)),
        ({"filters": 2, "kernel_size": 4, "stride": 2, "padding": 1, "dilation": 2, "bias": False}, (3, 11)),
        ({"filters": 2, "kernel_size": 2, "padding": "same"}, (1, 6)),
    ]],
    *[Case(kind, params, (shape,), distinct=kind.startswith("Max")) for kind in ("MaxPool2D", "AvgPool2D")
      for params, shape in [
          ({}, (2, 4, 6)),
          ({"pool_size": 3, "stride": 2, "padding": 1}, (2, 7, 6)),
          ({"pool_size": [2, 3], "stride": [1, 2]}, (1, 5, 7)),
      ]],
    *[Case(kind, params, (shape,), distinct=kind.startswith("Max")) for kind in ("MaxPool1D", "AvgPool1D")
      for params, shape in [({}, (2, 8)), ({"pool_size": 3, "stride": 2, "padding": 1}, (2, 9))]],
    Case("GlobalAvgPool2D", {}, ((3, 4, 5),)),
    Case("GlobalAvgPool1D", {}, ((3, 7),)),
    Case("MixtureDensity", {"components": 3}, ((9,),)),
    Case("MixtureDensity", {"components": 2, "sigma": "softplus", "min_sigma": 0.1}, ((6,),)),
    Case("MixtureDensity", {"components": 1}, ((3,),)),
    Case("MixtureDensity", {"components": 2}, ((3, 6),)),
    Case("SimpleRNN", {"units": 4}, ((5, 3),)),
    Case("SimpleRNN", {"units": 3, "return_sequences": True}, ((6, 2),)),
    Case("SimpleRNN", {"units": 4, "activation": "relu", "recurrent_init": "identity", "recurrent_scale": 0.5},
         ((5, 3),)),
    Case("SimpleRNN", {"units": 3, "activation": "sigmoid", "bias": False, "return_sequences": True}, ((4, 2),)),
    Case("SimpleRNN", {"units": 3, "truncate": 3, "return_sequences": True}, ((8, 2),)),
    Case("SimpleRNN", {"units": 3, "truncate": 4}, ((9, 2),)),
    Case("SimpleRNN", {"units": 4}, ((20, 2),)),
    Case("LSTM", {"units": 3}, ((5, 2),)),
    Case("LSTM", {"units": 3, "return_sequences": True, "forget_bias": 2.0}, ((6, 3),)),
    Case("LSTM", {"units": 2, "bias": False}, ((4, 2),)),
    Case("LSTM", {"units": 3, "activation": "sigmoid", "return_sequences": True}, ((5, 2),)),
    Case("LSTM", {"units": 3, "activation": "relu"}, ((5, 2),)),
    Case("LSTM", {"units": 3, "truncate": 4, "return_sequences": True}, ((10, 2),)),
    Case("LSTM", {"units": 3}, ((20, 2),)),
    Case("GRU", {"units": 3}, ((5, 2),)),
    Case("GRU", {"units": 3, "reset_after": False, "return_sequences": True}, ((6, 3),)),
    Case("GRU", {"units": 2, "bias": False, "reset_after": False}, ((4, 2),)),
    Case("GRU", {"units": 3, "bias": False}, ((4, 2),)),
    Case("GRU", {"units": 3, "activation": "sigmoid"}, ((5, 2),)),
    Case("GRU", {"units": 3, "truncate": 3, "return_sequences": True, "reset_after": False}, ((8, 2),)),
    Case("GRU", {"units": 3, "truncate": 2}, ((7, 2),)),
    Case("GRU", {"units": 3, "return_sequences": True}, ((20, 2),)),
]


# ---- running a case ------------------------------------------------------------------
class Recording(dict):
    """A dict that remembers which keys were read (which weights the forward used)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            self.read.add(key)
        return super().get(key, default)


def make_runtime(case: Case, dtype: Any = np.float64, seed: int = 0) -> NodeRuntime:
    """A NodeRuntime as the compiler would build it, with slightly jittered initial weights.

    The jitter (0.1·N(0,1)) keeps e.g. BatchNorm's γ = 1, β = 0 from hiding a missing term.
    """
    layer, p, in_shapes = case.layer, case.p(), list(case.in_shapes)
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    rt = NodeRuntime("n", layer, p, in_shapes, tuple(layer.shape(p, in_shapes)), dtype)
    shapes = layer.weights(p, in_shapes)
    init = layer.init(p, in_shapes, rng) if layer.init is not None else {}
    assert set(init) == set(shapes), f"{case.id}: init gives {set(init)}, weights declares {set(shapes)}"
    rt.W = Recording({k: (np.asarray(v, np.float64) + 0.1 * rng.normal(size=shapes[k])).astype(dtype)
                      for k, v in init.items()})
    rt.G = {k: np.zeros(s, dtype) for k, s in shapes.items()}
    buffers = layer.init_buffers(p, in_shapes) if layer.init_buffers is not None else {}
    assert set(buffers) == set(layer.buffers(p, in_shapes))
    rt.B = {k: np.array(v, dtype) for k, v in buffers.items()}
    if case.random_buffers:
        for k, v in rt.B.items():
            v[...] = rng.uniform(0.5, 2.0, v.shape) if "var" in k else rng.normal(size=v.shape)
    rt.training = case.training
    return rt


def sample_inputs(case: Case, dtype: Any = np.float64, seed: int = 1) -> list[np.ndarray]:
    """Random batches, kept ≥ 0.2 away from the case's kinks (or all distinct for maxout)."""
    rng = np.random.default_rng(seed)
    xs = []
    for shape in case.in_shapes:
        full = (case.batch,) + tuple(shape)
        if case.distinct:
            n = math.prod(full)
            x = (rng.permutation(n) - n / 2) * 0.1 + rng.uniform(-0.01, 0.01, n)
            x = x.reshape(full)
        else:
            x = rng.normal(size=full)
            for k in case.kinks:
                near = np.abs(x - k) < 0.2
                x[near] = k + np.where(x[near] >= k, 0.2, -0.2) + (x[near] - k)
        xs.append(x.astype(dtype))
    return xs


def forward(rt: NodeRuntime, xs: list[np.ndarray], seed: int = SEED) -> np.ndarray:
    """One forward with a freshly seeded rng, checking that the inputs are left untouched."""
    rt.rng = np.random.default_rng(seed)
    before = [x.copy() for x in xs]
    y = rt.type.forward(rt, xs)
    for x, b in zip(xs, before, strict=True):
        np.testing.assert_array_equal(x, b, err_msg="forward modified its input in place")
    return y


def reference(case: Case, rt: NodeRuntime, xs: list[np.ndarray], training: bool | None = None) -> np.ndarray:
    """The harness's own forward for this case, in float64 (a list for several outputs)."""
    W = {k: np.asarray(v, np.float64) for k, v in dict(rt.W).items()}
    B = {k: np.asarray(v, np.float64) for k, v in rt.B.items()}
    xs64 = [np.asarray(x, np.float64) for x in xs]
    mode = case.training if training is None else training
    return REFERENCES[case.type](rt.p, xs64, W, B, mode, SEED)


def output_ports(rt: NodeRuntime) -> tuple[str, ...]:
    return rt.type.output_ports(rt.p)


def as_ports(rt: NodeRuntime, y) -> list[np.ndarray]:
    """A layer's forward result as one array per output port."""
    ports = output_ports(rt)
    ys = [y] if len(ports) == 1 else list(y)
    assert len(ys) == len(ports), f"forward gave {len(ys)} outputs for ports {ports}"
    return ys


def forward_ports(rt: NodeRuntime, xs: list[np.ndarray], seed: int = SEED) -> list[np.ndarray]:
    """:func:`forward`, one array per output port."""
    return as_ports(rt, forward(rt, xs, seed))


def reference_ports(case: Case, rt: NodeRuntime, xs: list[np.ndarray]) -> list[np.ndarray]:
    return as_ports(rt, reference(case, rt, xs))


def backward_ports(rt: NodeRuntime, gs: list[np.ndarray | None]) -> list[np.ndarray | None]:
    """Backward with one upstream gradient per output port (a bare array for one port)."""
    return rt.type.backward(rt, gs[0] if len(gs) == 1 else tuple(gs))


def finite_difference(f: Callable[[], float], arr: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of f with respect to every element of ``arr`` (perturbed in place)."""
    grad = np.zeros(arr.shape)
    flat, gflat = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def gradient_target(case: Case, rt: NodeRuntime, xs: list[np.ndarray]) -> Callable[[], list[np.ndarray]]:
    """The function whose finite differences backward must equal: the layer's own forward, or,
    for truncated BPTT, the textbook recurrence with the state entering every block boundary
    held at its present value (computed now, before anything is perturbed)."""
    p = rt.p
    if case.type not in RECURRENT or not p["truncate"]:
        return lambda: forward_ports(rt, xs)
    x = np.asarray(xs[0], np.float64)
    _, entering = run_recurrent(case.type, p, x, dict(rt.W))
    frozen = {t: entering[t] for t in truncation_boundaries(x.shape[1], p["truncate"])}
    assert frozen, f"{case.id}: the truncation length cuts nothing"
    return lambda: recurrent_ports(p, run_recurrent(case.type, p, xs[0], dict(rt.W), frozen)[0])
