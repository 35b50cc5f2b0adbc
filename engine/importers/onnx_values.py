"""What an ONNX tensor is while a model is being imported, and the layers it becomes.

Every tensor name of the ONNX graph gets one of four values:

- :class:`Const`: known numbers (initializers, ``Constant`` nodes, anything computed from them).
- :class:`Sym`: small integer tensors that depend on the batch size, such as the
  ``Shape → Gather → Unsqueeze → Concat`` chains PyTorch builds for ``Reshape`` targets and
  zero initial states. They are evaluated for two probe batch sizes (:data:`PROBES`), so a
  size that follows the batch is told apart from a fixed one without symbolic algebra.
- :class:`Data`: the network's data. It names the Backprop Studio port ``ref`` that computes
  it and how the ONNX tensor is laid out relative to that port's batch ``(N, *shape)``: its
  :attr:`Data.view` gives, per ONNX axis, the port's axis (0 is the batch) or ``None`` for an
  inserted size-1 axis. A recurrent operator's time-major (T, N, F) input is the view
  ``(1, 0, 2)`` of an (N, T, F) port, its (T, 1, N, H) output the view ``(1, None, 0, 2)``.
  Element-wise layers keep a view; layers that need the port's own layout check for it.
- :class:`Expr`: an element-wise computation on one Data tensor not yet matched to a layer
  (``x·0.5·(1 + erf(x/√2))`` is GELU, ``(x − mean)/std`` on the input is preprocessing).

The layers found so far are :class:`Pending` nodes; the graph is built from them only when
every ONNX node has been read, so a refused node leaves nothing behind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.graph import PortRef

PROBES = (2, 3)
"""Batch sizes at which batch-dependent shape tensors are evaluated (a fixed batch B uses (B, B))."""

View = tuple[int | None, ...]


def f32(value: float) -> float:
    """The shortest decimal that is the same float32: ONNX stores attributes and weights in
    float32, so ε = 1e-5 arrives as 9.99999974e-06 and goes back into the graph as 1e-05."""
    return float(np.format_float_positional(np.float32(value), unique=True, trim="0"))


@dataclass(frozen=True)
class Const:
    """A tensor of known values."""

    value: np.ndarray

    def at(self, k: int) -> np.ndarray:
        return self.value


@dataclass(frozen=True)
class Sym:
    """A tensor whose values depend on the batch size: its values at each probe batch size."""

    values: tuple[np.ndarray, ...]

    def at(self, k: int) -> np.ndarray:
        return self.values[k]


@dataclass(frozen=True)
class Data:
    """The network's data: port ``ref`` (per-example ``shape``), seen through ``view``."""

    ref: PortRef
    shape: tuple[int, ...]
    view: View

    @staticmethod
    def canonical(ref: PortRef, shape: tuple[int, ...]) -> "Data":
        return Data(ref, tuple(shape), tuple(range(len(shape) + 1)))

    @property
    def is_canonical(self) -> bool:
        """The ONNX tensor is the port's batch itself, (N, *shape)."""
        return self.view == tuple(range(len(self.shape) + 1))

    @property
    def in_order(self) -> bool:
        """The port's axes appear in their own order (size-1 axes may be inserted)."""
        return [a for a in self.view if a is not None] == list(range(len(self.shape) + 1))

    def dim(self, axis: int | None, n: int) -> int:
        return n if axis == 0 else 1 if axis is None else self.shape[axis - 1]

    def onnx_shape(self, n: int) -> tuple[int, ...]:
        """The ONNX tensor's shape for a batch of ``n``."""
        return tuple(self.dim(a, n) for a in self.view)

    def axis(self, onnx_axis: int) -> int | None:
        """The port's axis that ONNX axis ``onnx_axis`` (negative counts from the end) shows."""
        rank = len(self.view)
        a = onnx_axis + rank if onnx_axis < 0 else onnx_axis
        if not 0 <= a < rank:
            raise IndexError(onnx_axis)
        return self.view[a]

    def with_view(self, view: View) -> "Data":
        return Data(self.ref, self.shape, tuple(view))


@dataclass
class Expr:
    """An element-wise function of one Data tensor: ``tree`` over the leaf ``"x"``.

    A tree is ``"x"``, a constant array, or ``(op_type, attributes, children)``. ``nodes``
    are the ONNX node names it was built from (for messages).
    """

    base: Data
    tree: Any
    nodes: list[str] = field(default_factory=list)
    last: Any = None  # the ONNX node that computed it (its layer is named after it)


Value = Const | Sym | Data | Expr


@dataclass
class Pending:
    """A layer found in the ONNX graph, not yet in a Graph."""

    id: str
    type: str
    params: dict[str, Any]
    inputs: list[PortRef]
    source: str  # the ONNX node it came from (messages)
    op: str
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    buffers: dict[str, np.ndarray] = field(default_factory=dict)
    label: str = ""  # the wanted node id; the final id is given among the layers kept
    soft: dict[str, Any] = field(default_factory=dict)  # parameters a design in the metadata overrides

    def __post_init__(self) -> None:
        self.label = self.label or self.id


def view_reshape(data: Data, targets: list[tuple[int, ...]], probes: tuple[int, ...]) -> Data | None:
    """``data`` reshaped to ``targets`` (its ONNX shape at each probe) by inserting or removing
    size-1 axes only, or None when the reshape moves values between axes.

    Removing or inserting size-1 axes keeps the row-major order of the values, whatever the
    view, so the port's axes are matched to the target's in order, by their size at every
    probe; target axes of size 1 left over are inserted axes.
    """
    real = [a for a in data.view if a is not None]
    out: list[int | None] = []
    i = 0
    for dims in zip(*targets, strict=True):
        if i < len(real) and all(data.dim(real[i], n) == dims[k] for k, n in enumerate(probes)):
            out.append(real[i])
            i += 1
        elif all(v == 1 for v in dims):
            out.append(None)
        else:
            return None
    return data.with_view(tuple(out)) if i == len(real) else None


def per_example_target(data: Data, targets: list[tuple[int, ...]], probes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The per-example shape of a reshape that keeps the batch on axis 0, or None if it does not."""
    if not data.in_order or any(not t or t[0] != n for t, n in zip(targets, probes, strict=True)):
        return None
    rest = {tuple(t[1:]) for t in targets}
    if len(rest) != 1:
        return None
    (shape,) = rest
    if not shape or any(v < 1 for v in shape) or math.prod(shape) != math.prod(data.shape):
        return None
    return shape


def resolve_reshape(in_shape: tuple[int, ...], target: np.ndarray, allowzero: bool) -> tuple[int, ...]:
    """ONNX Reshape's target with 0 (copy the input's size, unless ``allowzero``) and −1 resolved."""
    dims = [int(v) for v in np.asarray(target).reshape(-1)]
    out = [in_shape[i] if v == 0 and not allowzero and i < len(in_shape) else v for i, v in enumerate(dims)]
    if out.count(-1) > 1:
        raise ValueError("more than one -1 in the target shape")
    if -1 in out:
        known = math.prod(v for v in out if v != -1)
        total = math.prod(in_shape)
        if known == 0 or total % known:
            raise ValueError(f"cannot reshape {in_shape} into {tuple(dims)}")
        out[out.index(-1)] = total // known
    if math.prod(out) != math.prod(in_shape):
        raise ValueError(f"cannot reshape {in_shape} into {tuple(dims)}")
    return tuple(out)
