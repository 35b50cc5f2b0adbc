"""ONNX operators on the network's data and the layers they become (the MLP family).

Each handler takes a :class:`~engine.importers.onnx.NodeView` and returns one value per
ONNX output. It reads the attributes it understands (any other is refused), checks what it
needs (constant weights, the data in the layout the layer computes in) and adds layers with
``view.layer(...)``, or refuses with the reason. Operators whose inputs are all known never
reach a handler: they are computed (see :mod:`engine.importers.onnx`). Convolution and
recurrent operators are in their own modules; all register into :data:`OPS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.importers import onnx_elementwise as ew
from engine.importers.onnx_values import (
    Const,
    Data,
    Expr,
    Sym,
    Value,
    f32,
    per_example_target,
    resolve_reshape,
    view_reshape,
)

Handler = Callable[[Any], list[Value | None]]
OPS: dict[str, Handler] = {}
GATHER_PICKS: list[Callable[[Any, Data, int, np.ndarray], Data | None]] = []
"""Gathers that are a port of a layer (a recurrent layer's last step is its state port)."""
IDENTITY_CLAIMS: list[Callable[[Any, Data], Data | None]] = []
"""Identities that are a port of a layer (an exported recurrent layer's ``out`` = its state)."""


def op(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for the ONNX operators ``names``."""
    def register(fn: Handler) -> Handler:
        for name in names:
            if name in OPS:
                raise ValueError(f"ONNX operator {name} has two handlers")
            OPS[name] = fn
        return fn
    return register


def probes(view: Any) -> tuple[int, ...]:
    return view.imp.probes


# ---- element-wise chains -----------------------------------------------------------------------
ATTRIBUTES = {"LeakyRelu": ("alpha",), "Elu": ("alpha",), "Selu": ("alpha", "gamma"), "HardSigmoid": ("alpha", "beta"),
              "Gelu": ("approximate",)}
ACTIVATION_OPS = frozenset({"Relu", "Sigmoid", "Tanh", "Softplus", "LeakyRelu", "Elu", "Gelu", "Clip"})
"""Operators that are a layer of their own when applied directly to the data."""


def _base(value: Value) -> Data | None:
    return value if isinstance(value, Data) else value.base if isinstance(value, Expr) else None


def _lifted(view: Any, values: list[Value | None]) -> list[Value | None]:
    """The operands with an Activation the importer made from an element-wise chain taken back
    to that chain, when the operands otherwise stand on different tensors: PyTorch's softplus
    is where(x > 20, x, softplus(x)), one chain on x."""
    bases = {_base(v) for v in values if isinstance(v, (Data, Expr))}
    if len(bases) < 2:
        return values
    origin = view.imp.origin

    def lift(v: Value | None) -> Value | None:
        b = _base(v) if v is not None else None
        if b is None or b.ref not in origin or origin[b.ref].base.view != b.view:
            return v
        chain = origin[b.ref]
        if isinstance(v, Data):
            return chain
        return Expr(chain.base, ew.substitute(v.tree, chain.tree), chain.nodes + v.nodes, v.last)
    return [lift(v) for v in values]


def elementwise(view: Any) -> list[Value | None]:
    """Extend (or start) the element-wise expression on one data tensor; an activation operator
    applied to the data itself becomes its Activation layer at once."""
    trees: list[Any] = []
    base: Data | None = None
    nodes: list[str] = []
    for v in _lifted(view, view.values):
        if v is None:
            trees.append(None)
        elif isinstance(v, Sym):
            view.refuse("it combines the data with a tensor that depends on the batch size")
        elif isinstance(v, Const):
            trees.append(np.asarray(v.value))
        else:
            b = _base(v)
            if base is not None and b != base:
                view.refuse("it combines two branches of the network element by element; Backprop Studio joins "
                            "branches with Add or Concat only")
            base = b
            trees.append("x" if isinstance(v, Data) else v.tree)
            nodes += [] if isinstance(v, Data) else v.nodes
    assert base is not None
    shape = base.onnx_shape(probes(view)[0])
    for c in trees:
        if isinstance(c, np.ndarray) and np.broadcast_shapes(c.shape, shape) != shape:
            view.refuse(f"its constant of shape {c.shape} makes the data larger ({shape} → "
                        f"{np.broadcast_shapes(c.shape, shape)})")
    allowed = ATTRIBUTES.get(view.op, ())
    attrs = {k: view.attr(k) for k in allowed if k in view.attrs}
    if view.op == "Gelu" and attrs.get("approximate", "none") != "none":
        view.refuse("the tanh approximation of GELU differs from Backprop Studio's exact GELU (z·Φ(z)); "
                    "export with approximate='none'")
    first = view.value(0)
    if view.op in ACTIVATION_OPS and isinstance(first, Expr):
        # an activation after a chain that is a layer by itself (x·1 before ELU): two layers
        done = view.imp.materialise(first, view, refuse=False)
        if done is not None:
            return elementwise_on(view, done, trees)
    expr = Expr(base, (view.op, attrs, trees), nodes + [view.name], view.node)
    if view.op in ACTIVATION_OPS and isinstance(first, Data):
        return [view.imp.materialise(expr, view)]
    return [expr]


def elementwise_on(view: Any, x: Data, trees: list[Any]) -> list[Value | None]:
    """The activation operator of ``view`` applied to ``x`` (its first operand) as a layer."""
    attrs = {k: view.attrs[k] for k in ATTRIBUTES.get(view.op, ()) if k in view.attrs}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    expr = Expr(x, (view.op, attrs, ["x", *trees[1:]]), [view.name], view.node)
    return [view.imp.materialise(expr, view)]


for _name in sorted(ew.ELEMENTWISE - {"Add", "Identity"}):
    OPS[_name] = elementwise


@op("Identity")
def _identity(view: Any) -> list[Value | None]:
    """An identity Activation layer, except where an exporter only renames a tensor: the
    graph's output taken from one port of a layer with several, or the element-wise chains."""
    x = view.value(0)
    if not isinstance(x, Data) or not x.is_canonical:
        return [x]
    for claim in IDENTITY_CLAIMS:
        claimed = claim(view, x)
        if claimed is not None:
            return [claimed]
    producer = view.imp.producer.get(x.ref)
    if view.node.output[0] == view.imp.output_name and producer is not None \
            and len(view.imp.ports_of(producer)) > 1:
        return [x]
    return view.layer("Activation", {"function": "identity"}, [x])


@op("Transpose")
def _transpose(view: Any) -> list[Value | None]:
    """The same port seen with its axes permuted; layers check the layout they need."""
    x = view.value(0)
    if isinstance(x, Expr):
        x = view.data(0)
    perm = view.attr("perm") or list(range(len(x.view)))[::-1]
    return [x.with_view(tuple(x.view[p] for p in perm))]


@op("Cast")
def _cast(view: Any) -> list[Value | None]:
    if view.attr("to") not in (1, 10, 11, 16):
        view.refuse("the network's data can only be cast to a floating-point type")
    view.ignore("saturate", "round_mode")
    return [view.value(0)]


@op("CastLike")
def _cast_like(view: Any) -> list[Value | None]:
    """A constant cast like the data (the dynamo exporter's scalars) is that constant in float32;
    the data cast like anything floating stays as it is."""
    v, like = view.value(0), view.value(1)
    view.ignore("saturate", "round_mode")
    if isinstance(v, Const):
        return [Const(np.asarray(v.value, np.float32))]
    if isinstance(like, Const) and np.asarray(like.value).dtype.kind != "f":
        view.refuse("the network's data can only be cast to a floating-point type")
    return [v]


@op("PRelu")
def _prelu(view: Any) -> list[Value | None]:
    x = view.data(0)
    slope = view.const(1, "slope")
    if slope.size < 1 or not np.all(slope == slope.reshape(-1)[0]):
        view.refuse(f"it learns {slope.size} different slopes; Backprop Studio's PReLU learns one slope for all units")
    alpha = float(slope.reshape(-1)[0])
    return view.layer("Activation", {"function": "prelu"}, [x], {"alpha": np.array([alpha])}, view=x.view,
                      soft={"alpha": min(max(f32(alpha), 0.0), 10.0)})


# ---- Add: residual joins, biases, or arithmetic ------------------------------------------------
@op("Add", "Sum")
def _add(view: Any) -> list[Value | None]:
    values = view.values
    flowing = [v for v in values if isinstance(v, (Data, Expr))]
    if view.op == "Add" and len(flowing) == 1:
        bias = _dense_bias(view)
        return bias if bias is not None else elementwise(view)
    lifted = [v for v in _lifted(view, flowing)]
    if any(isinstance(v, Expr) for v in lifted) and len({_base(v) for v in lifted}) == 1 and view.op == "Add":
        return elementwise(view)
    if len(flowing) != len(values):
        view.refuse("it adds constants to a join of branches; Backprop Studio's Add joins branches only")
    inputs = [view.data(i) for i in range(len(values))]
    first = inputs[0]
    for i, d in enumerate(inputs[1:], start=2):
        if d.view != first.view or d.shape != first.shape:
            view.refuse(f"input {i} has shape {d.onnx_shape(1)[1:]} but input 1 has {first.onnx_shape(1)[1:]}; "
                        "Backprop Studio's Add needs equal shapes (no broadcasting)")
    joined = _extend_add(view, inputs)
    if joined is not None:
        return joined
    if len(inputs) > 8:
        view.refuse(f"it adds {len(inputs)} tensors; Backprop Studio's Add takes at most 8")
    return view.layer("Add", {"inputs": len(inputs)}, inputs, view=first.view)


def _extend_add(view: Any, inputs: list[Data]) -> list[Value | None] | None:
    """x₀ + x₁ + x₂ exported as a chain of Adds comes back as one Add with three inputs."""
    imp = view.imp
    prev = imp.producer.get(inputs[0].ref)
    if prev is None or prev.type != "Add" or prev.op not in ("Add", "Sum") or len(inputs) != 2 \
            or imp.uses[view.node.input[0]] != 1 or prev.params["inputs"] >= 8:
        return None
    prev.params["inputs"] += 1
    prev.inputs.append(inputs[1].ref)
    return [inputs[0]]


def _dense_bias(view: Any) -> list[Value | None] | None:
    """MatMul + Add: a Dense without bias whose only reader adds a vector is a Dense with bias."""
    i = 0 if isinstance(view.value(0), Data) else 1
    x, c = view.value(i), view.value(1 - i)
    if not isinstance(x, Data) or not isinstance(c, Const) or not x.is_canonical:
        return None
    dense = view.imp.producer.get(x.ref)
    if dense is None or dense.type != "Dense" or dense.params.get("bias", True) or dense.op != "MatMul" \
            or view.imp.uses[view.node.input[i]] != 1:
        return None
    units = dense.params["units"]
    if c.value.size != units or c.value.shape[-1] != units:
        return None
    dense.params["bias"] = True
    dense.weights["b"] = np.asarray(c.value, np.float64).reshape(units)
    dense.source = view.name
    return [x]


# ---- Dense -------------------------------------------------------------------------------------
@op("Gemm")
def _gemm(view: Any) -> list[Value | None]:
    x = canonical(view, view.data(0))
    if view.attr("transA", 0):
        view.refuse("transA = 1 transposes the data; Dense computes x·W with one example per row")
    if not x.is_canonical or len(x.shape) != 1:
        view.refuse(f"Gemm needs flat (batch, features) data, got {x.onnx_shape(1)}")
    B = np.asarray(view.const(1, "weight (input B)"), np.float64)
    if B.ndim != 2:
        view.refuse(f"its weight has {B.ndim} axes; Gemm's B is a matrix")
    W = (B.T if view.attr("transB", 0) else B) * float(view.attr("alpha", 1.0))
    if W.shape[0] != x.shape[0]:
        view.refuse(f"its weight is {W.shape[0]}×{W.shape[1]} for {x.shape[0]} input features")
    units = W.shape[1]
    weights = {"W": W}
    C = view.optional_const(2, "bias (input C)")
    beta = float(view.attr("beta", 1.0))
    if C is not None:
        if C.size not in (1, units) or (C.ndim == 2 and C.shape[0] != 1) or C.ndim > 2:
            view.refuse(f"its bias of shape {C.shape} is not one value per unit ({units})")
        weights["b"] = np.broadcast_to(np.asarray(C, np.float64).reshape(-1), (units,)) * beta
    return view.layer("Dense", {"units": units, "bias": C is not None}, [x], weights)


@op("MatMul")
def _matmul(view: Any) -> list[Value | None]:
    if not isinstance(view.value(0), (Data, Expr)):
        view.refuse("the data is its right-hand operand; Dense computes x·W with the data on the left")
    x = canonical(view, view.data(0))
    if isinstance(view.value(1), (Data, Expr)):
        view.refuse("it multiplies two tensors computed from the data (attention-like); Backprop Studio's "
                    "Dense multiplies the data by learned weights")
    W = np.asarray(view.const(1, "weight"), np.float64)
    if W.ndim != 2:
        view.refuse(f"its weight has {W.ndim} axes; Dense has a (inputs, units) matrix")
    if not x.is_canonical or len(x.shape) not in (1, 2) or W.shape[0] != x.shape[-1]:
        view.refuse(f"a {W.shape[0]}×{W.shape[1]} weight does not fit data of shape {x.onnx_shape(1)}; Dense reads "
                    "(batch, features) or (batch, time, features)")
    return view.layer("Dense", {"units": W.shape[1], "bias": False}, [x], {"W": W})


# ---- Softmax, BatchNorm, Dropout ---------------------------------------------------------------
@op("Softmax")
def _softmax(view: Any) -> list[Value | None]:
    x = view.data(0)
    axis = view.attr("axis", -1)
    if x.axis(axis) != len(x.shape):
        view.refuse(f"it normalises axis {axis}; Backprop Studio's Softmax works over the last axis of an example")
    return view.layer("Softmax", {}, [x], view=x.view)


def _bn_feature_axis(rank: int) -> int:
    """The batch array's axis whose values BatchNorm normalises separately: features of (F,)
    and (T, F), channels of (C, H, W)."""
    return 2 if rank == 2 else 1


@op("BatchNormalization")
def _batch_norm(view: Any) -> list[Value | None]:
    x = view.data(0)
    gamma, beta, mean, var = (np.asarray(view.const(i, what), np.float64).reshape(-1)
                              for i, what in ((1, "scale"), (2, "bias"), (3, "running mean"), (4, "running variance")))
    if view.attr("training_mode", 0):
        view.refuse("training_mode = 1 normalises with the batch's statistics when predicting; export in eval mode")
    if any(view.output_used(i) for i in (1, 2)):
        view.refuse("its running mean and variance outputs are used; they exist only in training mode")
    eps, momentum = f32(view.attr("epsilon", 1e-5)), f32(view.attr("momentum", 0.9))
    if len(x.shape) not in (1, 2, 3) or x.axis(1) != _bn_feature_axis(len(x.shape)) or x.axis(0) != 0:
        want = {1: "(batch, features)", 2: "(batch, features, time), the features of a (time, features) sequence",
                3: "(batch, channels, height, width)"}.get(len(x.shape), "")
        view.refuse(f"it normalises axis 1 of data laid out as {x.onnx_shape(1)}; Backprop Studio's BatchNorm "
                    f"normalises per feature of {want}")
    return view.layer("BatchNorm", {"eps": eps, "momentum": f32(1.0 - momentum)}, [x],
                      {"gamma": gamma, "beta": beta}, {"running_mean": mean, "running_var": var}, view=x.view)


@op("Dropout")
def _dropout(view: Any) -> list[Value | None]:
    x = view.data(0)
    ratio = view.optional_const(1, "ratio")
    training = view.optional_const(2, "training_mode")
    view.ignore("seed")
    if training is not None and bool(np.asarray(training).reshape(-1)[0]):
        view.refuse("training_mode = true drops values when predicting; export in eval mode")
    if view.output_used(1):
        view.refuse("its mask output is used; Backprop Studio's Dropout has no mask output")
    rate = 0.5 if ratio is None else f32(np.asarray(ratio).reshape(-1)[0])
    return view.layer("Dropout", {"rate": rate}, [x], view=x.view)


# ---- shapes ------------------------------------------------------------------------------------
@op("Shape", "Size")
def _shape(view: Any) -> list[Value | None]:
    base = _base(view.value(0))
    if view.op == "Size":
        vals = [np.array(math.prod(base.onnx_shape(n)), np.int64) for n in probes(view)]
    else:
        start, end = view.attr("start", 0), view.attr("end", None)
        vals = [np.array(base.onnx_shape(n), np.int64)[start:end] for n in probes(view)]
    same = all(np.array_equal(v, vals[0]) for v in vals)
    return [Const(vals[0]) if same else Sym(tuple(vals))]


def reshape(view: Any, x: Data, targets: list[tuple[int, ...]], layer: str | None) -> list[Value | None]:
    """``x`` reshaped to the ONNX shapes ``targets`` (one per probe).

    An explicit ``layer`` ("Flatten", "Reshape": the ONNX operator) of the port's own data
    becomes that layer, as Backprop Studio exports them; otherwise (Squeeze, Unsqueeze, or data
    seen through a view) the same port seen with size-1 axes added or removed where that is
    all it does, else a Reshape layer keeping the batch on axis 0.
    """
    shape = per_example_target(x, targets, probes(view))
    if layer is None or not x.is_canonical or shape is None:
        same = view_reshape(x, targets, probes(view))
        if same is not None:
            return [same]
    if shape is None:
        view.refuse(f"it reshapes {x.onnx_shape(probes(view)[0])} into {targets[0]} (at batch size "
                    f"{probes(view)[0]}), which mixes examples or transposed axes; Backprop Studio reshapes each "
                    "example on its own")
    if layer == "Flatten" and len(shape) == 1:
        return view.layer("Flatten", {}, [x])
    return view.layer("Reshape", {"shape": list(shape)}, [x])


def canonical(view: Any, x: Data) -> Data:
    """``x`` as its port's own batch: data seen with size-1 axes inserted (PyTorch's
    ``unsqueeze`` before a convolution) gets the Reshape layer that makes those axes real."""
    if x.is_canonical or not x.in_order or x.view[0] != 0:
        return x
    return view.layer("Reshape", {"shape": list(x.onnx_shape(1)[1:])}, [x])[0]


def _targets(view: Any, x: Data, fn: Callable[[tuple[int, ...], int], tuple[int, ...]]) -> list[tuple[int, ...]]:
    try:
        return [tuple(int(v) for v in fn(x.onnx_shape(n), k)) for k, n in enumerate(probes(view))]
    except (ValueError, IndexError) as err:
        view.refuse(f"its target shape does not fit the data: {err}")


@op("Flatten")
def _flatten(view: Any) -> list[Value | None]:
    x = view.data(0)
    axis = view.attr("axis", 1)
    targets = _targets(view, x, lambda s, k: (math.prod(s[:axis]), math.prod(s[axis:])))
    return reshape(view, x, targets, "Flatten")


@op("Reshape")
def _reshape(view: Any) -> list[Value | None]:
    x = view.data(0)
    target = view.value(1)
    if not isinstance(target, (Const, Sym)):
        view.refuse("its target shape is computed from the data's values")
    allowzero = bool(view.attr("allowzero", 0))
    return reshape(view, x, _targets(view, x, lambda s, k: resolve_reshape(s, target.at(k), allowzero)), "Reshape")


def _axes(view: Any, rank: int) -> list[int] | None:
    axes = view.value(1)
    if axes is None:
        return None
    if not isinstance(axes, Const):
        view.refuse("its axes must be constants")
    return sorted(int(a) % rank for a in np.asarray(axes.value).reshape(-1))


@op("Squeeze")
def _squeeze(view: Any) -> list[Value | None]:
    x = view.data(0)
    rank = len(x.view)
    axes = _axes(view, rank)

    def target(s, k):
        drop = axes if axes is not None else [i for i, d in enumerate(s) if d == 1]
        if any(s[a] != 1 for a in drop):
            raise ValueError(f"axis of size {max(s[a] for a in drop)} cannot be squeezed")
        return tuple(d for i, d in enumerate(s) if i not in drop)
    return reshape(view, x, _targets(view, x, target), None)


@op("Unsqueeze")
def _unsqueeze(view: Any) -> list[Value | None]:
    x = view.data(0)
    axes = _axes(view, len(x.view) + len(np.asarray(view.const(1, "axes")).reshape(-1)))

    def target(s, k):
        out = list(s)
        for a in axes:
            out.insert(a, 1)
        return tuple(out)
    return reshape(view, x, _targets(view, x, target), None)


@op("Gather")
def _gather(view: Any) -> list[Value | None]:
    x = view.data(0)
    index = view.const(1, "index")
    axis = view.attr("axis", 0)
    rank = len(x.view)
    a = axis % rank
    if index.ndim == 0 and x.view[a] is None and int(index) in (0, -1):
        return [x.with_view(x.view[:a] + x.view[a + 1:])]
    for pick in GATHER_PICKS:
        picked = pick(view, x, a, index)
        if picked is not None:
            return [picked]
    view.refuse("it picks positions out of the data; Backprop Studio has no layer that selects elements")


# ---- joins and splits --------------------------------------------------------------------------
def _join_axis(view: Any, x: Data, axis: int) -> int:
    a = x.axis(axis)
    if a is None or a == 0:
        view.refuse(f"it works along axis {axis}, which is " + ("the batch" if a == 0 else "an added axis of size 1"))
    return a - 1


@op("Concat")
def _concat(view: Any) -> list[Value | None]:
    from engine.importers.onnx_patterns import mixture_density

    mixture = mixture_density(view)
    if mixture is not None:
        return mixture
    if any(not isinstance(v, (Data, Expr)) for v in view.values):
        view.refuse("it joins the data with constants; Backprop Studio's Concat joins branches of the network")
    inputs = [view.data(i) for i in range(len(view.values))]
    first = inputs[0]
    if any(d.view != first.view or len(d.shape) != len(first.shape) for d in inputs[1:]):
        view.refuse("its inputs are laid out differently")
    if not 2 <= len(inputs) <= 8:
        view.refuse(f"it joins {len(inputs)} tensors; Backprop Studio's Concat joins 2 to 8")
    axis = _join_axis(view, first, view.attr("axis"))
    return view.layer("Concat", {"inputs": len(inputs), "axis": axis}, inputs, view=first.view)


@op("Split")
def _split(view: Any) -> list[Value | None]:
    x = view.data(0)
    axis = _join_axis(view, x, view.attr("axis", 0))
    size = x.shape[axis]
    k = len(view.node.output)
    sizes = view.optional_const(1, "split sizes")
    if view.attr("num_outputs") not in (None, k):
        view.refuse("num_outputs does not match its outputs")
    sizes = [size // k] * k if sizes is None else [int(s) for s in np.asarray(sizes).reshape(-1)]
    if len(set(sizes)) != 1 or sum(sizes) != size or not 2 <= k <= 8:
        view.refuse(f"it cuts {size} values into parts of {sizes}; Backprop Studio's Split cuts 2 to 8 equal parts")
    return view.layer("Split", {"parts": k, "axis": axis}, [x], view=x.view)


@op("ReduceMax")
def _reduce_max(view: Any) -> list[Value | None]:
    from engine.importers.onnx_patterns import maxout

    return maxout(view)
