"""Import an ONNX model (opset 13 and later) as a Backprop Studio graph with its weights.

The ONNX graph is read node by node in its topological order. Every tensor gets a value
(:mod:`engine.importers.onnx_values`): constants and batch-dependent shape tensors are
computed (with ONNX's reference implementation, at two probe batch sizes), the network's
data is followed through the layers it becomes, and each operator on the data is handed to
its handler (:data:`engine.importers.onnx_ops.OPS`), which adds layers or refuses the node
with the reason. Only nodes on the way to the graph's output are read. When every node is
read, the layers are put into a :class:`~engine.graph.Graph`, validated and compiled, and
the weights loaded: a :class:`~engine.modelfile.LoadedModel` like the one a ``.bpmodel``
gives. Nothing is returned, and nothing is left behind, when any node is refused.

A model exported by Backprop Studio comes back as it was: node ids from its tensor names,
the folded ``(x − mean)/std`` as the model file's preprocessing (the exact statistics from
the ``backprop.preprocessing`` metadata), and what ONNX cannot carry (initialisers, training
block, graph name) from the ``backprop.graph`` metadata. See docs/import.md.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from engine.errors import BackpropError, ImportModelError
from engine.export.common import INSTALL_EXPORT
from engine.graph import ID_PATTERN, Graph, PortRef
from engine.importers import onnx_elementwise as ew
from engine.importers.onnx_finish import build_loaded
from engine.importers.onnx_values import PROBES, Const, Data, Expr, Pending, Sym, Value

MIN_OPSET = 13
DEFAULT_DOMAINS = ("", "ai.onnx")
NEVER_FOLD = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
                        "Multinomial"})
FLOAT_TYPES = {1: "float32", 10: "float16", 11: "float64", 16: "bfloat16"}


def _import_onnx_package() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportModelError(f"importing ONNX models needs the 'onnx' package; {INSTALL_EXPORT}") from None
    return onnx


def read_onnx(path: str | Path) -> Any:
    """The checked ModelProto of ``path``, local functions inlined; ImportModelError if unusable."""
    onnx = _import_onnx_package()
    path = Path(path)
    where = path.name
    if not path.exists():
        raise ImportModelError(f"{path}: no such file")
    if path.is_dir():
        raise ImportModelError(f"{path}: is a folder; give the .onnx file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImportModelError(f"{path}: cannot read ({err.strerror or err})") from None
    if not data:
        raise ImportModelError(f"{where}: the file is empty")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf's DecodeError and friends: not an ONNX file, or cut short
        raise ImportModelError(f"{where}: not a readable ONNX model (truncated or not ONNX: "
                               f"{type(err).__name__})") from None
    if not model.HasField("graph") or not model.graph.node and not model.graph.output:
        raise ImportModelError(f"{where}: not an ONNX model (no graph in the file)")
    try:
        onnx.load_external_data_for_model(model, str(path.parent))
    except Exception as err:
        raise ImportModelError(f"{where}: its external weight data cannot be read ({err})") from None
    try:
        onnx.checker.check_model(model)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ImportModelError(f"{where}: not a valid ONNX model ({first})") from None
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    return model


def import_onnx(path: str | Path) -> Any:
    """Read the ONNX file at ``path`` into a LoadedModel (graph, compiled model with the
    file's weights, meta with its preprocessing); ImportModelError names what cannot be mapped."""
    model = read_onnx(path)
    importer = OnnxImporter(model, Path(path).name)
    try:
        return importer.run()
    except (ArithmeticError, AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
        # a structure the checker let through but no handler expects: say where, never a traceback
        where = f" at ONNX node '{importer.current}'" if importer.current else ""
        raise ImportModelError(f"{Path(path).name}: cannot import{where}: unexpected model structure "
                               f"({type(err).__name__}: {err})") from None


class NodeView:
    """One ONNX node as a handler sees it: values of its inputs, attributes, refusals.

    A handler reads the attributes it understands with :meth:`attr`; an attribute it did not
    read is refused after it returns, so an unsupported setting never passes silently.
    """

    def __init__(self, importer: "OnnxImporter", node: Any, values: list[Value | None]) -> None:
        onnx = importer.onnx
        self.imp, self.node, self.values = importer, node, values
        self.op = node.op_type
        self.name = node.name or (f"producing '{node.output[0]}'" if node.output else node.op_type)
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        self._read: set[str] = set()

    # -- reading ------------------------------------------------------------------------
    def attr(self, name: str, default: Any = None) -> Any:
        self._read.add(name)
        value = self.attrs.get(name, default)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, list):
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
        return value

    def ignore(self, *names: str) -> None:
        """Attributes that do not change what the network computes (a dropout seed)."""
        self._read.update(names)

    def value(self, i: int) -> Value | None:
        return self.values[i] if i < len(self.values) else None

    def data(self, i: int = 0) -> Data:
        """Input ``i`` as the network's data (an element-wise chain becomes its layer first)."""
        v = self.value(i)
        if isinstance(v, Expr):
            v = self.imp.materialise(v, self)
        if not isinstance(v, Data):
            self.refuse(f"input {i + 1} ('{self.node.input[i] if i < len(self.node.input) else ''}') must be "
                        "the network's data, but it is " + ("missing" if v is None else "a constant"))
        return v

    def const(self, i: int, what: str) -> np.ndarray:
        v = self.value(i)
        if not isinstance(v, Const):
            self.refuse(f"its {what} must be a constant (an initializer), but it "
                        + ("is missing" if v is None else "depends on the batch size" if isinstance(v, Sym)
                           else "is computed from the data"))
        return v.value

    def optional_const(self, i: int, what: str) -> np.ndarray | None:
        return None if self.value(i) is None else self.const(i, what)

    def output_used(self, i: int) -> bool:
        return i < len(self.node.output) and self.imp.is_used(self.node.output[i])

    def refuse(self, why: str) -> NoReturn:
        raise ImportModelError(f"cannot import ONNX node '{self.name}' ({self.op}): {why}", node=self.node.name)

    def check_attributes(self) -> None:
        unread = sorted(set(self.attrs) - self._read)
        if unread:
            self.refuse(f"attribute {', '.join(repr(a) for a in unread)} is not supported")

    # -- building -----------------------------------------------------------------------
    def layer(self, type_name: str, params: dict[str, Any], inputs: list[Data],
              weights: dict[str, np.ndarray] | None = None, buffers: dict[str, np.ndarray] | None = None,
              view: tuple[int | None, ...] | None = None, label_output: int = 0,
              soft: dict[str, Any] | None = None, label_node: Any = None) -> list[Data]:
        """Add one layer fed by ``inputs``; returns its output ports as Data (each seen
        through ``view`` for an element-wise layer, else in the port's own layout).

        ``soft`` parameters do not change what the imported network computes (PReLU's initial
        slope): a design in the file's metadata overrides them.
        """
        return self.imp.add_layer(self, type_name, params, inputs, weights or {}, buffers or {}, view,
                                  label_output, soft or {}, label_node)


class OnnxImporter:
    """Reads one ModelProto (see the module docstring)."""

    def __init__(self, model: Any, source: str) -> None:
        self.onnx = _import_onnx_package()
        self.model, self.source = model, source
        self.graph = model.graph
        self.opset = self._opset()
        self.values: dict[str, Value] = {}
        self.pending: dict[str, Pending] = {}
        self.producer: dict[PortRef, Pending] = {}
        self.shapes: dict[PortRef, tuple[int, ...]] = {}
        self.preprocessing: tuple[np.ndarray, np.ndarray] | None = None
        self.raw_input_used = False
        self.metadata = {p.key: p.value for p in model.metadata_props}
        self.labels: dict[str, int] = defaultdict(int)
        self.current = ""
        self.origin: dict[PortRef, Expr] = {}  # Activations made from element-wise chains, and the chain
        self.materialised: dict[int, Data] = {}  # id of an Expr → the layer it became (once per chain)

    # -- set-up --------------------------------------------------------------------------
    def _opset(self) -> int:
        versions = {o.domain: o.version for o in self.model.opset_import}
        version = next((versions[d] for d in DEFAULT_DOMAINS if d in versions), None)
        if version is None:
            raise ImportModelError(f"{self.source}: the model imports no standard ONNX opset")
        if version < MIN_OPSET:
            raise ImportModelError(f"{self.source}: opset {version} is older than {MIN_OPSET}, the oldest this "
                                   f"importer reads; export again with opset_version={MIN_OPSET} or later")
        return version

    def _input(self) -> Data:
        inits = {t.name for t in self.graph.initializer}
        inputs = [i for i in self.graph.input if i.name not in inits]
        if len(inputs) != 1:
            names = ", ".join(f"'{i.name}'" for i in inputs) or "none"
            raise ImportModelError(f"{self.source}: the model has {len(inputs)} inputs ({names}); Backprop Studio "
                                   "networks have exactly one")
        x = inputs[0]
        where = f"{self.source}: input '{x.name}'"
        tensor = x.type.tensor_type if x.type.HasField("tensor_type") else None
        if tensor is None or tensor.elem_type not in FLOAT_TYPES:
            raise ImportModelError(f"{where} is not a floating-point tensor; Backprop Studio networks take float "
                                   "features")
        if not tensor.HasField("shape") or len(tensor.shape.dim) < 2:
            raise ImportModelError(f"{where} needs a shape (batch, features…) with at least two axes; export with "
                                   "the input's shape")
        dims = list(tensor.shape.dim)
        shape = []
        for i, d in enumerate(dims[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                raise ImportModelError(f"{where} has no fixed size on axis {i} ({d.dim_param or 'unknown'}); "
                                       "export with fixed sizes for every axis but the batch")
            shape.append(int(d.dim_value))
        batch = dims[0]
        self.probes = (int(batch.dim_value),) * 2 if batch.HasField("dim_value") and batch.dim_value > 0 else PROBES
        self.input_name = x.name
        self.input_id = self._unique(_sanitise(x.name) or "x")
        inp = Pending(self.input_id, "Input", {"shape": list(shape)}, [], x.name, "input")
        self.pending[inp.id] = inp
        self.shapes[(inp.id, "out")] = tuple(shape)
        return Data.canonical((inp.id, "out"), tuple(shape))

    def _liveness(self, output: str) -> None:
        """Which nodes the output depends on, and which tensors those nodes read."""
        producer = {name: node for node in self.graph.node for name in node.output if name}
        self.live_nodes: set[int] = set()
        self.used: set[str] = {output}
        stack = [output]
        index = {id(n): i for i, n in enumerate(self.graph.node)}
        while stack:
            node = producer.get(stack.pop())
            if node is None or index[id(node)] in self.live_nodes:
                continue
            self.live_nodes.add(index[id(node)])
            for name in node.input:
                if name:
                    self.used.add(name)
                    stack.append(name)
        self.uses: dict[str, int] = defaultdict(int)
        for i in self.live_nodes:
            for name in self.graph.node[i].input:
                if name:
                    self.uses[name] += 1
        self.uses[output] += 1

    def is_used(self, tensor: str) -> bool:
        return tensor in self.used

    # -- the walk ------------------------------------------------------------------------
    def run(self) -> Any:
        if len(self.graph.output) != 1:
            raise ImportModelError(f"{self.source}: the model has {len(self.graph.output)} outputs ("
                                   + ", ".join(f"'{o.name}'" for o in self.graph.output)
                                   + "); Backprop Studio networks have exactly one")
        output = self.output_name = self.graph.output[0].name
        x = self._input()
        self.values[self.input_name] = x
        numpy_helper = self.onnx.numpy_helper
        for t in self.graph.initializer:
            if t.name != self.input_name:
                self.values[t.name] = Const(numpy_helper.to_array(t))
        self._liveness(output)
        from engine.importers import onnx_conv, onnx_recurrent  # noqa: F401  (register their operators)
        from engine.importers.onnx_ops import OPS

        for i, node in enumerate(self.graph.node):
            if i in self.live_nodes:
                self._visit(node, OPS)
        self.current = ""
        result = self.values.get(output)
        if result is None:
            raise ImportModelError(f"{self.source}: the output '{output}' is computed by no node")
        return build_loaded(self, result, output)

    def _visit(self, node: Any, ops: dict[str, Any]) -> None:
        self.current = node.name or node.op_type
        values: list[Value | None] = []
        for name in node.input:
            if not name:
                values.append(None)
            elif name not in self.values:
                raise ImportModelError(f"cannot import ONNX node '{node.name}' ({node.op_type}): its input "
                                       f"'{name}' is computed by no node before it (the graph is not in order "
                                       "or incomplete)", node=node.name)
            else:
                values.append(self.values[name])
        view = NodeView(self, node, values)
        if node.domain not in DEFAULT_DOMAINS:
            view.refuse(f"operators of the '{node.domain}' domain have no Backprop Studio equivalent")
        if self.input_name in node.input and node.op_type not in ew.ELEMENTWISE | {"Shape", "Size"}:
            self.raw_input_used = True
        if all(v is None or isinstance(v, (Const, Sym)) for v in values) and node.op_type not in NEVER_FOLD:
            outs = self._fold(view)
        else:
            handler = ops.get(node.op_type)
            if handler is None:
                view.refuse("Backprop Studio has no layer for this operator" if node.op_type not in NEVER_FOLD
                            else "random values have no Backprop Studio equivalent")
            outs = handler(view)
            view.check_attributes()
        for name, value in zip(node.output, outs, strict=False):
            if name and value is not None:
                self.values[name] = value

    def _fold(self, view: NodeView) -> list[Value]:
        """Compute a node whose inputs are all known, at each probe batch size."""
        from onnx.reference import ReferenceEvaluator

        onnx, helper, node = self.onnx, self.onnx.helper, view.node
        names = [n for n in node.input if n]
        batch_dependent = any(isinstance(v, Sym) for v in view.values)
        results: list[list[np.ndarray]] = []
        for k in range(len(self.probes) if batch_dependent else 1):
            feeds = {n: np.asarray(v.at(k)) for n, v in zip(node.input, view.values, strict=True) if n}
            graph = helper.make_graph(
                [node], "fold",
                [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(feeds[n].dtype), feeds[n].shape)
                 for n in dict.fromkeys(names)],
                [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output if o])
            proto = helper.make_model(graph, opset_imports=list(self.model.opset_import))
            try:
                results.append([np.asarray(r) for r in ReferenceEvaluator(proto).run(None, feeds)])
            except Exception as err:
                view.refuse(f"its constant inputs cannot be computed ({type(err).__name__}: {err})")
        out: list[Value] = []
        for i in range(len(results[0])):
            vals = [r[i] for r in results]
            same = all(v.shape == vals[0].shape and np.array_equal(v, vals[0]) for v in vals[1:])
            out.append(Const(vals[0]) if same else Sym(tuple(vals)))
        return out

    # -- layers --------------------------------------------------------------------------
    def add_layer(self, view: NodeView, type_name: str, params: dict[str, Any], inputs: list[Data],
                  weights: dict[str, np.ndarray], buffers: dict[str, np.ndarray],
                  keep_view: tuple[int | None, ...] | None, label_output: int, soft: dict[str, Any],
                  label_node: Any = None) -> list[Data]:
        from engine.layers import REGISTRY

        layer = REGISTRY[type_name]
        try:
            valid = layer.validate_params({**soft, **params}, where=type_name)
            in_shapes = [d.shape for d in inputs]
            ports = layer.port_shapes(valid, in_shapes)
        except BackpropError as err:
            view.refuse(str(err))
        expected = {**layer.weights(valid, in_shapes), **layer.buffers(valid, in_shapes)}
        arrays = {**weights, **buffers}
        for name, shape in expected.items():
            if name not in arrays or tuple(np.shape(arrays[name])) != tuple(shape):
                got = "missing" if name not in arrays else f"of shape {np.shape(arrays[name])}"
                view.refuse(f"its {type_name} weight '{name}' is {got}, the layer needs {tuple(shape)}")
        named = label_node if label_node is not None else view.node
        out_name = named.output[label_output] if len(named.output) > label_output else ""
        label = _label(named, out_name, type_name)
        node_id = self._unique(label)
        p = Pending(node_id, type_name, dict(params), [d.ref for d in inputs], view.name, view.op,
                    {k: np.asarray(v) for k, v in weights.items()}, {k: np.asarray(v) for k, v in buffers.items()},
                    label, dict(soft))
        self.pending[node_id] = p
        outs = []
        for port, shape in ports.items():
            self.producer[(node_id, port)] = p
            self.shapes[(node_id, port)] = tuple(shape)
            d = Data.canonical((node_id, port), shape)
            outs.append(d.with_view(keep_view) if keep_view is not None else d)
        return outs

    def ports_of(self, p: Pending) -> tuple[str, ...]:
        from engine.layers import REGISTRY

        layer = REGISTRY[p.type]
        return layer.output_ports(layer.validate_params({**p.soft, **p.params}))

    def materialise(self, expr: Expr, view: NodeView, refuse: bool = True) -> Data | None:
        """The layer an element-wise chain is: preprocessing on the input, or an Activation
        (named after the chain's last node). Without ``refuse``, None when it is neither."""
        if id(expr) in self.materialised:
            return self.materialised[id(expr)]
        base = expr.base
        if base.ref == (self.input_id, "out") and base.is_canonical:
            stats = ew.match_affine(expr.tree, base.shape)
            if stats is not None:
                if self.preprocessing is not None:
                    view.refuse("the input is normalised twice; Backprop Studio keeps one normalisation")
                self.preprocessing = stats
                self.materialised[id(expr)] = base
                return base
        match = ew.match_activation(expr.tree)
        if match is None:
            if not refuse:
                return None
            what = " → ".join(dict.fromkeys(expr.nodes)) or "it"
            view.refuse(f"the element-wise computation ({what}) is none of Backprop Studio's activations "
                        "(identity, sigmoid, tanh, scaled tanh, ReLU, leaky ReLU, ELU, softplus, hard tanh, GELU)"
                        + ("; normalising the input is recognised only directly after the input"
                           if ew.ops(expr.tree) <= ew.AFFINE_OPS else ""))
        function, alpha = match
        out = base
        if function != "identity":
            out = view.layer("Activation", {"function": function, "alpha": alpha}, [base], view=base.view,
                             label_node=expr.last)[0]
            self.origin[out.ref] = expr
        self.materialised[id(expr)] = out
        return out

    def _unique(self, label: str) -> str:
        label = label[:60]
        self.labels[label] += 1
        n = self.labels[label]
        candidate = label if n == 1 else f"{label}_{n}"
        while candidate in self.pending:
            self.labels[label] += 1
            candidate = f"{label}_{self.labels[label]}"
        return candidate

    def refuse(self, message: str) -> NoReturn:
        raise ImportModelError(f"{self.source}: {message}")

    def metadata_json(self, key: str) -> Any:
        try:
            return json.loads(self.metadata[key]) if key in self.metadata else None
        except ValueError:
            return None


# ---- names -----------------------------------------------------------------------------------
_GENERATED = re.compile(r"^(val|v)_?\d*$|_output_\d+$|^onnx::")


def _sanitise(name: str) -> str:
    """A valid node id from an ONNX name (invalid characters become _, not starting with a digit)."""
    out = re.sub(r"_{2,}", "_", re.sub(r"[^A-Za-z0-9_]+", "_", name)).strip("_")
    if out and not re.match(r"[A-Za-z_]", out):
        out = f"n_{out}"
    return out[:60]


def _label(node: Any, out_name: str, type_name: str) -> str:
    """A readable id for the layer an ONNX node becomes.

    The output tensor's name when it is a plain name (Backprop Studio's own exports name it
    after the node; PyTorch's dynamo exporter after the operation), else the node's path
    without its op type (PyTorch's ``/layer1/conv1/Conv`` → ``layer1_conv1``), else the layer type.
    """
    if out_name and ID_PATTERN.match(out_name) and not _GENERATED.search(out_name):
        return out_name
    parts = [p for p in re.split(r"[/.:]+", node.name or "") if p]
    if parts and re.sub(r"_\d+$", "", re.sub(r"^node_", "", parts[-1])) == node.op_type:
        parts = parts[:-1]
    label = _sanitise("_".join(parts))
    if label.startswith("node_"):
        label = label[5:]
    fallback = node.op_type.lower() if type_name == "Activation" else type_name.lower()
    if not label or label.startswith("n_"):
        label = fallback + (label[1:] if label.startswith("n_") else "")
    return label if ID_PATTERN.match(label) else fallback


__all__ = ["Graph", "ImportModelError", "NodeView", "OnnxImporter", "import_onnx", "read_onnx"]
