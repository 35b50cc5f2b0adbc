"""Element-wise ONNX computations, told apart by their values.

Exporters spell one activation in many ways: PyTorch's exact GELU is ``Div → Erf → Add →
Mul → Mul`` (or a single ``Gelu`` from opset 20), LeCun's scaled tanh is ``Mul → Tanh → Mul``,
a hard tanh is ``Clip(−1, 1)``. Rather than one pattern per spelling, an element-wise chain
on one tensor is collected as an expression tree (:class:`~engine.importers.onnx_values.Expr`),
evaluated in float64 on a grid of probe values and compared with the training kernels' own
curves (:func:`engine.layers.activations.activation_curve`); the chain is the activation whose
curve it reproduces to 1e-6. The same trees give the input normalisation our exporter folds
in, ``(x − mean)/std``, read back as an affine map, and a mixture density layer's σ branch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import erf

from engine.importers.onnx_values import f32
from engine.layers.activations import activation_curve

GRID = np.concatenate([np.linspace(-6.0, 6.0, 241), [-40.0, -15.0, -9.0, 9.0, 15.0, 40.0]])
MATCH_RTOL = 1e-6


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _elu(x: np.ndarray, a: dict) -> np.ndarray:
    alpha = a.get("alpha", 1.0)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _gelu(x: np.ndarray, a: dict) -> np.ndarray:
    if a.get("approximate", "none") == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


UNARY: dict[str, Callable[[np.ndarray, dict], np.ndarray]] = {
    "Identity": lambda x, a: x,
    "Relu": lambda x, a: np.maximum(x, 0.0),
    "Sigmoid": lambda x, a: _sigmoid(x),
    "Tanh": lambda x, a: np.tanh(x),
    "Softplus": lambda x, a: np.logaddexp(0.0, x),
    "Softsign": lambda x, a: x / (1.0 + np.abs(x)),
    "LeakyRelu": lambda x, a: np.where(x > 0, x, a.get("alpha", 0.01) * x),
    "Elu": _elu,
    "Selu": lambda x, a: a.get("gamma", 1.0507009873554805) * _elu(x, {"alpha": a.get("alpha", 1.6732632423543772)}),
    "HardSigmoid": lambda x, a: np.clip(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0.0, 1.0),
    "Gelu": _gelu,
    "Erf": lambda x, a: erf(x),
    "Exp": lambda x, a: np.exp(np.minimum(x, 700.0)),
    "Log": lambda x, a: np.log(np.maximum(x, 1e-300)),
    "Neg": lambda x, a: -x,
    "Abs": lambda x, a: np.abs(x),
    "Sqrt": lambda x, a: np.sqrt(np.maximum(x, 0.0)),
    "Reciprocal": lambda x, a: 1.0 / x,
}
BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power,
    "Max": np.maximum, "Min": np.minimum, "Greater": np.greater, "Less": np.less,
    "GreaterOrEqual": np.greater_equal, "LessOrEqual": np.less_equal,
}
ELEMENTWISE = frozenset(UNARY) | frozenset(BINARY) | {"Clip", "Where"}
"""ONNX operators an expression tree may contain."""
AFFINE_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Neg", "Identity"})

#: Single operators that are one of our activations as they stand: ONNX op → (function, alpha attribute).
DIRECT = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softplus": "softplus", "Identity": "identity",
          "LeakyRelu": "leaky_relu", "Elu": "elu"}
#: Activations without a parameter, and those whose α is read off the curve (f(−1)).
FIXED = ("identity", "relu", "sigmoid", "tanh", "scaled_tanh", "softplus", "hard_tanh", "gelu")
WITH_ALPHA = {"leaky_relu": lambda f_minus_one: -f_minus_one, "elu": lambda f_minus_one: f_minus_one / math.expm1(-1.0)}


def evaluate(tree: Any, x: np.ndarray) -> np.ndarray:
    """The tree's value for leaf values ``x`` (float64, NumPy broadcasting as ONNX does)."""
    if isinstance(tree, str):
        return x
    if isinstance(tree, np.ndarray):
        return tree.astype(np.float64)
    if tree is None:
        return None  # an omitted optional input (Clip without a bound)
    op, attrs, children = tree
    args = [evaluate(c, x) for c in children]
    if op in UNARY:
        return UNARY[op](args[0], attrs)
    if op in BINARY:
        return BINARY[op](args[0], args[1])
    if op == "Where":  # PyTorch's softplus: where(x > 20, x, log(1 + e^x))
        return np.where(args[0], args[1], args[2])
    if op == "Clip":
        lo, hi = (args + [None, None])[1:3]
        return np.clip(args[0], -np.inf if lo is None else lo, np.inf if hi is None else hi)
    raise KeyError(op)


def substitute(tree: Any, leaf: Any) -> Any:
    """``tree`` with its leaf ``"x"`` replaced by ``leaf`` (a chain on a chain's result)."""
    if isinstance(tree, str):
        return leaf
    if isinstance(tree, tuple):
        op, attrs, children = tree
        return (op, attrs, [substitute(c, leaf) for c in children])
    return tree


def constants(tree: Any) -> list[np.ndarray]:
    """Every constant array of the tree."""
    if isinstance(tree, np.ndarray):
        return [tree]
    if isinstance(tree, tuple):
        return [c for child in tree[2] for c in constants(child)]
    return []


def ops(tree: Any) -> set[str]:
    if isinstance(tree, tuple):
        return {tree[0]}.union(*(ops(c) for c in tree[2]))
    return set()


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(got)) and np.all(np.abs(got - want) <= MATCH_RTOL * np.maximum(1.0, np.abs(want))))


def match_activation(tree: Any) -> tuple[str, float] | None:
    """(function, α) of the Activation the scalar element-wise tree computes, or None."""
    if any(c.size != 1 for c in constants(tree)):
        return None
    if isinstance(tree, tuple) and tree[0] in DIRECT and tree[2] == ["x"]:
        function = DIRECT[tree[0]]
        alpha = tree[1].get("alpha", {"leaky_relu": 0.01, "elu": 1.0}.get(function, 0.01))
        return function, f32(alpha)
    with np.errstate(all="ignore"):
        f = evaluate(tree, GRID)
    f = np.broadcast_to(f, GRID.shape)
    for function in FIXED:
        if _close(f, activation_curve(function, GRID)[0]):
            return function, 0.01
    f_minus_one = float(evaluate(tree, np.array([-1.0]))[0])
    for function, alpha_of in WITH_ALPHA.items():
        alpha = alpha_of(f_minus_one)
        if 0.0 <= alpha <= 10.0 and _close(f, activation_curve(function, GRID, alpha)[0]):
            return function, f32(alpha)
    return None


def match_affine(tree: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, std) with tree(x) = (x − mean)/std and std > 0, or None.

    The statistics take the broadcast shape of the tree's constants within one example
    (per feature (F,), per channel (C, 1, 1)), as the model file stores them.
    """
    if not ops(tree) <= AFFINE_OPS:
        return None
    rank = len(shape)
    parts = []
    for c in constants(tree):
        lead = c.shape[:max(0, c.ndim - rank)]
        if any(d != 1 for d in lead):
            return None
        parts.append(c.shape[len(lead):])
    try:
        stat = np.broadcast_shapes(*parts) if parts else (1,)
        np.broadcast_shapes(stat, shape)
    except ValueError:
        return None
    stat = stat or (1,)
    with np.errstate(all="ignore"):
        f0, f1, f_far = (np.broadcast_to(evaluate(tree, np.full(stat, v)), stat) for v in (0.0, 1.0, -2.5))
    slope = f1 - f0
    if not np.all(np.isfinite(slope)) or not np.all(slope > 0):
        return None
    if not _close(f_far, f0 - 2.5 * slope):
        return None
    std = 1.0 / slope
    return -f0 * std, std


def match_mixture_sigma(tree: Any) -> tuple[str, float] | None:
    """("exp" | "softplus", σ_min) for a tree computing σ_min + exp(s) or σ_min + softplus(s)."""
    if any(c.size != 1 for c in constants(tree)):
        return None
    with np.errstate(all="ignore"):
        f = np.broadcast_to(evaluate(tree, GRID[:241]), (241,))
    for kind, curve in (("exp", np.exp(GRID[:241])), ("softplus", np.logaddexp(0.0, GRID[:241]))):
        floor = float(f[120] - curve[120])
        if 0.0 <= floor <= 10.0 and _close(f, curve + floor):
            return kind, f32(floor)
    return None
