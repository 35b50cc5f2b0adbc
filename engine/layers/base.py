"""The layer declaration: one object per layer type drives everything else.

A :class:`LayerType` states its parameters (:class:`ParamSpec`), its input ports, its shape
rule, the shapes of its weights, their initialisation, and its forward and backward. The
palette, the inspector, validation, the summary table, the compiler, the exporters and the
docs all read these declarations from :data:`REGISTRY`; nothing else knows about layer
types. Shapes never include the batch axis: ``(F,)`` features, ``(C, H, W)`` images,
``(T, F)`` sequences.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import GraphError, ParamError

Shape = tuple[int, ...]
Params = Mapping[str, Any]

PARAM_KINDS = ("int", "float", "bool", "choice", "ints", "choice_or_ints", "str")
Bound = float | tuple[float, ...] | None


def _bound_at(bound: Bound, i: int) -> float | None:
    """Element ``i``'s bound: a tuple gives one bound per element, a number one for all."""
    if isinstance(bound, tuple):
        return bound[i] if i < len(bound) else bound[-1]
    return bound


@dataclass(frozen=True)
class ParamSpec:
    """One layer parameter: its kind, default, allowed values and help text.

    Kinds: ``int``, ``float`` (``min``/``max``), ``bool``, ``choice`` (``choices``), ``str``,
    ``ints`` (a list of integers: ``length`` fixes how many, ``min``/``max`` bound each
    element, as one number or one per element; default lower bound 1), and
    ``choice_or_ints`` (one of ``choices`` *or* such a list, e.g. a convolution's padding
    ``"valid"``, ``"same"`` or ``[ph, pw]``). With a fixed ``length``, a single integer is
    accepted and repeated (``3`` → ``(3, 3)``), as Keras and PyTorch accept.

    ``enabled_when`` maps another parameter's name to the values for which this one
    matters (the inspector greys it out otherwise), e.g. ``{"function": ("leaky_relu",)}``.
    ``labels`` names the elements of a fixed-length list (``("height", "width")``) for the
    inspector and messages.
    """

    name: str
    kind: str
    default: Any
    help: str
    min: Bound = None
    max: Bound = None
    choices: tuple[str, ...] = ()
    enabled_when: Mapping[str, tuple[Any, ...]] | None = None
    log_scale: bool = False
    length: int | None = None
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in PARAM_KINDS:
            raise ValueError(f"parameter {self.name!r}: unknown kind {self.kind!r}")
        if self.kind == "choice_or_ints" and not self.choices:
            raise ValueError(f"parameter {self.name!r}: choice_or_ints needs choices")
        if self.labels and self.length is not None and len(self.labels) != self.length:
            raise ValueError(f"parameter {self.name!r}: {len(self.labels)} labels for length {self.length}")

    @property
    def is_list(self) -> bool:
        """Whether the value is (or may be) a list of integers."""
        return self.kind in ("ints", "choice_or_ints")

    def element_range(self, i: int) -> tuple[int, int | None]:
        """Inclusive (lower, upper) bound of list element ``i`` (upper None: unbounded)."""
        lo, hi = _bound_at(self.min, i), _bound_at(self.max, i)
        return (1 if lo is None else int(lo)), (None if hi is None else int(hi))

    def _describe_ints(self) -> str:
        count = f"{self.length} integers" if self.length else "a list of integers"
        bounds = {self.element_range(i) for i in range(self.length or 1)}
        if bounds == {(1, None)}:
            return f"{self.length} positive integers" if self.length else "a list of positive integers"
        if len(bounds) == 1:
            lo, hi = next(iter(bounds))
            each = f"each ≥ {lo}" if hi is None else f"each in [{lo}, {hi}]"
        else:
            parts = []
            for i in range(self.length or 1):
                lo, hi = self.element_range(i)
                name = self.labels[i] if self.labels else f"#{i + 1}"
                parts.append(f"{name} ≥ {lo}" if hi is None else f"{name} in [{lo}, {hi}]")
            each = ", ".join(parts)
        return f"{count} ({each})"

    def describe_range(self) -> str:
        """Human text of what is allowed, used in error messages and tooltips."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return "a text"
        if self.kind == "ints":
            return self._describe_ints()
        if self.kind == "choice_or_ints":
            return "one of " + ", ".join(f'"{c}"' for c in self.choices) + " or " + self._describe_ints()
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "inf" if self.max is None else f"{self.max:g}"
        return f"a{'n integer' if self.kind == 'int' else ' number'} in [{lo}, {hi}]"

    def coerce(self, value: Any, where: str = "") -> Any:
        """Return ``value`` converted to this parameter's kind, or raise ParamError.

        Accepts what JSON gives (lists for tuples, ints for floats) and refuses
        everything else with a message naming the parameter and what is allowed.
        """
        prefix = f"{where}: " if where else ""
        bad = ParamError(
            f"{prefix}parameter '{self.name}' = {value!r} is invalid; expected "
            f"{self.describe_range()}"
        )
        kind = self.kind
        if kind == "bool":
            if isinstance(value, bool):
                return value
            raise bad
        if kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise bad
        if kind == "str":
            if isinstance(value, str):
                return value
            raise bad
        if kind == "choice_or_ints" and isinstance(value, str):
            if value in self.choices:
                return value
            raise bad
        if self.is_list:
            return self._coerce_ints(value, bad)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise bad
        if kind == "int":
            if isinstance(value, (float, np.floating)):
                if not float(value).is_integer():
                    raise bad
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise bad
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise bad
        return value

    def _coerce_ints(self, value: Any, bad: ParamError) -> tuple[int, ...]:
        def is_int(v: Any) -> bool:
            return not isinstance(v, bool) and isinstance(v, (int, np.integer))

        if self.length is not None and is_int(value):
            value = [value] * self.length
        if not isinstance(value, (list, tuple)) or not value:
            raise bad
        if self.length is not None and len(value) != self.length:
            raise bad
        out = []
        for i, v in enumerate(value):
            if not is_int(v):
                raise bad
            lo, hi = self.element_range(i)
            if int(v) < lo or (hi is not None and int(v) > hi):
                raise bad
            out.append(int(v))
        return tuple(out)

    def to_json(self, value: Any) -> Any:
        """The JSON form of a coerced value (tuples become lists)."""
        return list(value) if isinstance(value, tuple) else value

    def is_enabled(self, params: Params) -> bool:
        """Whether this parameter matters given the others (for the inspector)."""
        if not self.enabled_when:
            return True
        return all(params.get(k) in vs for k, vs in self.enabled_when.items())


@dataclass
class NodeRuntime:
    """What a compiled node carries between forward and backward.

    - ``W``/``G`` are views into the model's flat parameter and gradient buffers (the
      optimizer updates everything in one kernel call).
    - ``B`` holds the layer's persistent non-trained state (BatchNorm running statistics):
      views into the model's flat state store, so one snapshot covers parameters and state
      and the model file saves them as ``<node>.<name>``.
    - ``scratch`` holds transient per-batch arrays the layer declared (``LayerType.scratch``),
      allocated once per batch size by the model and reused every step.
    - ``cache`` is whatever forward keeps for backward (references, not copies).
    - ``out_shapes`` is the shape per output port; ``out_shape`` the primary port's.
    """

    id: str
    type: "LayerType"
    p: dict[str, Any]
    in_shapes: list[Shape]
    out_shape: Shape
    dtype: np.dtype
    W: dict[str, np.ndarray] = field(default_factory=dict)
    G: dict[str, np.ndarray] = field(default_factory=dict)
    B: dict[str, np.ndarray] = field(default_factory=dict)
    scratch: dict[str, np.ndarray] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    training: bool = False
    rng: np.random.Generator | None = None
    need_input_grad: bool = True  # False when every input is data: backward may skip ∂L/∂x
    out_shapes: dict[str, Shape] = field(default_factory=dict)


@dataclass(frozen=True)
class FusedOp:
    """A node's row in the op table of the fused whole-step kernel (engine/kernels/mlp.py).

    ``kind`` is the kernel's op kind (``DENSE`` or ``ACT``); ``code`` an activation code;
    ``weight``/``bias`` name the tensors of ``rt.W`` the op reads (Dense ``W``/``b``, PReLU's
    learned ``alpha`` as ``weight``); ``alpha`` is a fixed slope (leaky ReLU, ELU).
    """

    kind: int
    code: int = 0
    weight: str | None = None
    bias: str | None = None
    alpha: float = 0.0


def _no_weights(p: Params, in_shapes: list[Shape]) -> dict[str, Shape]:
    return {}


def _absorbed_by_none(p: Params) -> tuple[str, ...]:
    return ()


def _single_input(p: Params) -> tuple[str, ...]:
    return ("in",)


@dataclass(frozen=True)
class LayerType:
    """Declaration of a layer type. See the module docstring.

    - ``shape(p, in_shapes) -> out_shape`` raises ShapeError saying how to fix a mismatch.
      A layer with several output ports returns one shape per port, in declared order.
    - ``weights(p, in_shapes) -> {name: shape}`` trainable tensors (counted, decayed if in
      ``decay``), ``buffers`` likewise for persistent non-trained state (the model's state
      store) with ``init_buffers`` values.
    - ``init(p, in_shapes, rng) -> {name: float64 array}`` initial trainable values.
    - ``forward(rt, xs) -> y`` with ``xs`` the list of input batches (batch axis first); a
      layer with several output ports returns a tuple with one batch per port.
    - ``backward(rt, dy) -> [dx per input]``, writing parameter gradients into ``rt.G``. A
      layer with several output ports receives a tuple with one ∂L/∂y per port, ``None``
      for a port that receives no gradient (unconnected, or not on the way to the loss).
    - ``scratch(p, in_shapes, n) -> {name: shape}`` transient arrays for a batch of ``n``
      (im2col columns, BPTT caches), allocated by the model once per batch size into
      ``rt.scratch`` in the model's dtype.
    - ``min_batch``: the smallest training batch the layer accepts (BatchNorm needs 2 to
      have a variance); the trainer drops a smaller last batch and refuses a smaller
      ``batch_size``.
    - ``presets`` are named parameter sets the palette offers as separate entries.
    - ``exporters`` maps a format name ("onnx", "torch", "numpy") to its exporter. For a
      layer with several outputs the exporter returns one result per port (ONNX: a list of
      tensor names; NumPy and PyTorch: an expression or module whose value is a tuple).
    - ``outputs`` names the output ports (a tuple, or a function of the parameters like
      ``inputs``); the first is the primary port, ``"out"`` for single-output layers.
    - ``warnings(p, in_shapes) -> [message]``: things that work but are probably not meant
      (a stride that does not divide the input: rows are dropped). Shape inference reports
      them beside the problems (``ShapeReport.warnings``); they never stop training.
    - ``arithmetic(p, in_shapes)``: the layer's size arithmetic for the inspector (for
      convolution and pooling an :class:`engine.layers.conv_geometry.Arithmetic`).
    - ``fuse(rt) -> FusedOp | None``: how the node runs inside the fused whole-step kernel
      of a plain chain (engine/fused.py), or None when it cannot with these parameters;
      a layer type without ``fuse`` keeps its graph on the general path.
    - ``absorbed_by(p)``: the losses that, when this layer is the graph's output, compute
      themselves on its input instead (Softmax into cross-entropy, sigmoid into BCE with
      logits): the numerically stable form, identical in the fused and general paths.
    - ``per_example``: each example's outputs and gradients depend only on that example and
      the weights, and training draws no random numbers and updates no state (not Dropout,
      BatchNorm, or a recurrent layer, whose through-time norms sum over the batch). A
      training step of a graph of such layers may run the two halves of its batch through
      the whole graph at once on two threads (engine/compiler.py, ``Model._halves_step``).
    """

    name: str
    category: str
    help: str
    shape: Callable[[Params, list[Shape]], Any]
    forward: Callable[[NodeRuntime, list[np.ndarray]], Any]
    backward: Callable[[NodeRuntime, Any], list[np.ndarray | None]]
    params: tuple[ParamSpec, ...] = ()
    inputs: Callable[[Params], tuple[str, ...]] = _single_input
    weights: Callable[[Params, list[Shape]], dict[str, Shape]] = _no_weights
    init: Callable[[Params, list[Shape], np.random.Generator], dict[str, np.ndarray]] | None = None
    buffers: Callable[[Params, list[Shape]], dict[str, Shape]] = _no_weights
    init_buffers: Callable[[Params, list[Shape]], dict[str, np.ndarray]] | None = None
    decay: tuple[str, ...] = ()
    key_params: tuple[str, ...] = ()
    presets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exporters: dict[str, Callable[..., Any]] = field(default_factory=dict)
    outputs: tuple[str, ...] | Callable[[Params], tuple[str, ...]] = ("out",)
    scratch: Callable[[Params, list[Shape], int], dict[str, Shape]] | None = None
    min_batch: int = 1
    warnings: Callable[[Params, list[Shape]], list[str]] | None = None
    arithmetic: Callable[[Params, list[Shape]], Any] | None = None
    fuse: Callable[[NodeRuntime], FusedOp | None] | None = None
    absorbed_by: Callable[[Params], tuple[str, ...]] = _absorbed_by_none
    per_example: bool = False

    # -- ports ------------------------------------------------------------------------
    def output_ports(self, p: Params) -> tuple[str, ...]:
        """Names of the output ports for parameters ``p``; the first is the primary one."""
        return self.outputs(p) if callable(self.outputs) else tuple(self.outputs)

    def port_shapes(self, p: Params, in_shapes: list[Shape]) -> dict[str, Shape]:
        """``{port: shape}`` of every output port.

        ``shape`` returns one shape for a single-output layer and a sequence of shapes, one
        per output port in declared order, for a layer with several outputs.
        """
        names = self.output_ports(p)
        result = self.shape(p, in_shapes)
        if len(names) == 1:
            return {names[0]: tuple(int(v) for v in result)}  # type: ignore[union-attr]
        shapes = [tuple(int(v) for v in s) for s in result]  # type: ignore[union-attr]
        if len(shapes) != len(names):
            raise ValueError(f"{self.name}: shape() gave {len(shapes)} shapes for ports {names}")
        return dict(zip(names, shapes, strict=True))

    # -- parameters -------------------------------------------------------------------
    def param_spec(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise ParamError(
            f"{self.name} has no parameter '{name}'; it has "
            + (", ".join(s.name for s in self.params) or "none")
        )

    def default_params(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.params}

    def validate_params(self, given: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Defaults overlaid with ``given``, each value coerced; unknown names refused."""
        if not isinstance(given, Mapping):
            raise ParamError(f"{where}: 'params' must be an object, got {type(given).__name__}")
        out = self.default_params()
        for name, value in given.items():
            spec = self.param_spec(name) if name in out else None
            if spec is None:
                known = ", ".join(s.name for s in self.params) or "none"
                raise ParamError(f"{where}: {self.name} has no parameter '{name}' (it has {known})")
            out[name] = spec.coerce(value, where)
        return out

    def params_to_json(self, p: Params) -> dict[str, Any]:
        return {s.name: s.to_json(p[s.name]) for s in self.params if s.name in p}

    # -- shapes and counts ------------------------------------------------------------
    def param_count(self, p: Params, in_shapes: list[Shape]) -> int:
        return int(sum(math.prod(s) for s in self.weights(p, in_shapes).values()))

    def summary_text(self, p: Params) -> str:
        """Short text of the key parameters, e.g. ``units=32`` (canvas and summary)."""
        return ", ".join(f"{k}={_fmt(p.get(k))}" for k in self.key_params if k in p)


def _fmt(value: Any) -> str:
    if isinstance(value, tuple):
        return "×".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class Registry(dict[str, LayerType]):
    """Layer types by name; refuses duplicates so one name means one declaration."""

    def register(self, layer: LayerType) -> LayerType:
        if layer.name in self:
            raise ValueError(f"layer type {layer.name!r} registered twice")
        self[layer.name] = layer
        return layer

    def get_type(self, name: Any, where: str = "") -> LayerType:
        if not isinstance(name, str) or name not in self:
            prefix = f"{where}: " if where else ""
            raise GraphError(
                f"{prefix}unknown layer type {name!r}; known types: {', '.join(sorted(self))}"
            )
        return self[name]

    def categories(self) -> dict[str, list[LayerType]]:
        """Layer types grouped by category, in registration order (the palette)."""
        out: dict[str, list[LayerType]] = {}
        for layer in self.values():
            out.setdefault(layer.category, []).append(layer)
        return out


REGISTRY = Registry()
register = REGISTRY.register

CATEGORY_TITLES = {
    "io": "Input / output",
    "dense": "Dense",
    "activation": "Activations",
    "regularisation": "Regularisation",
    "merge": "Merge and split",
    "reshape": "Reshape",
    "conv": "Convolution",
    "recurrent": "Recurrent",
}
