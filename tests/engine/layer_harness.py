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
    "MixtureDensity": _ref_mixture,
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
    "MixtureDensity": lambda p, s: 0,
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
    Case("MixtureDensity", {"components": 3}, ((9,),)),
    Case("MixtureDensity", {"components": 2, "sigma": "softplus", "min_sigma": 0.1}, ((6,),)),
    Case("MixtureDensity", {"components": 1}, ((3,),)),
    Case("MixtureDensity", {"components": 2}, ((3, 6),)),
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
