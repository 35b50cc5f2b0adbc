"""The last step of an ONNX import: the layers found become a Graph, a Model and its meta.

Layers that do not lead to the output are dropped; the graph is validated (a problem names
the ONNX node the layer came from), compiled in float32 and given the file's weights. What
ONNX cannot carry comes from Backprop Studio's own metadata when the file has it (the
``backprop.graph`` design: name, training block, parameters such as initialisers; the exact
``backprop.preprocessing`` statistics), otherwise from defaults suited to the output.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import BackpropError, ImportModelError
from engine.graph import DEFAULT_TRAINING, Edge, Graph, PortRef
from engine.importers.onnx_values import Const, Data, Expr, Pending, Sym, Value

if TYPE_CHECKING:
    from engine.importers.onnx import OnnxImporter

FINISHERS: list[Callable[["OnnxImporter", PortRef], PortRef]] = []
"""Operator families' last look at the layers before the graph is built (a recurrent layer
whose sequence nobody reads returns its last state instead); each may move the output."""

GENERIC_GRAPH_NAMES = ("", "main_graph", "torch_jit", "torch-jit-export")


def build_loaded(imp: "OnnxImporter", result: Value, output: str) -> Any:
    from engine.compiler import compile_graph
    from engine.modelfile import LoadedModel

    out_ref = _output_ref(imp, result, output)
    for finish in FINISHERS:
        out_ref = finish(imp, out_ref)
    out_ref = _primary(imp, out_ref, output)
    kept = reachable(imp, out_ref[0])
    ids = _final_ids(kept)
    design = _metadata_graph(imp)
    graph = _graph(imp, kept, ids, design)
    if imp.preprocessing is not None and imp.raw_input_used:
        imp.refuse(f"the input '{imp.input_name}' is used both normalised and as it is; Backprop Studio "
                   "normalises the input once, for the whole network")
    try:
        model = compile_graph(graph, dtype=np.float32, seed=0)
        model.load_state_dict({f"{ids[p.id]}.{k}": np.asarray(v, np.float32)
                               for p in kept for k, v in {**p.weights, **p.buffers}.items()})
    except BackpropError as err:
        source = next((p.source for p in kept if ids[p.id] == err.node), imp.source)
        raise ImportModelError(f"{imp.source}: the imported network does not compile ({source}: {err})") from None
    _check_output_shape(imp, model)
    return LoadedModel(model.graph, model, _meta(imp, graph, design))


# ---- the output ------------------------------------------------------------------------------
def _output_ref(imp: "OnnxImporter", result: Value, output: str) -> PortRef:
    from engine.importers.onnx import NodeView

    producer = next((n for n in imp.graph.node if output in n.output), None)
    if isinstance(result, Expr):
        result = imp.materialise(result, NodeView(imp, producer, []))
    if isinstance(result, (Const, Sym)) or not isinstance(result, Data):
        imp.refuse(f"the output '{output}' does not depend on the input")
    if result.ref[0] == imp.input_id:
        imp.refuse(f"the output '{output}' is the input itself: there is no layer to import")
    if not result.is_canonical:
        if not result.in_order or result.view[0] != 0:
            imp.refuse(f"the output '{output}' has the batch on another axis than the first (axes {result.view}); "
                       "Backprop Studio networks put one example per row")
        shape = result.onnx_shape(1)[1:]
        result = NodeView(imp, producer, []).layer("Reshape", {"shape": list(shape)}, [result])[0]
    return result.ref


def _primary(imp: "OnnxImporter", ref: PortRef, output: str) -> PortRef:
    """The network's output is a layer's first port: another port gets an identity Activation."""
    from engine.importers.onnx import NodeView

    p = imp.pending[ref[0]]
    if ref[1] == imp.ports_of(p)[0]:
        return ref
    producer = next((n for n in imp.graph.node if output in n.output), None)
    data = Data.canonical(ref, imp.shapes[ref])
    return NodeView(imp, producer, []).layer("Activation", {"function": "identity"}, [data])[0].ref


def reachable(imp: "OnnxImporter", output_id: str) -> list[Pending]:
    """The layers the output depends on, in the order they were found (a topological order)."""
    keep, stack = set(), [output_id]
    while stack:
        nid = stack.pop()
        if nid in keep:
            continue
        keep.add(nid)
        stack.extend(src for src, _ in imp.pending[nid].inputs)
    keep.add(imp.input_id)
    return [p for p in imp.pending.values() if p.id in keep]


# ---- the graph -------------------------------------------------------------------------------
def _metadata_graph(imp: "OnnxImporter") -> Graph | None:
    text = imp.metadata.get("backprop.graph")
    if not text:
        return None
    try:
        return Graph.from_json(text, source="backprop.graph")
    except BackpropError:
        return None


def _final_ids(kept: list[Pending]) -> dict[str, str]:
    """Each kept layer's node id: its label, numbered when taken (layers dropped on the way,
    such as the Split a MixtureDensity was recognised from, leave their names free)."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    for p in kept:
        candidate, i = p.label, 1
        while candidate in used:
            i += 1
            candidate = f"{p.label}_{i}"
        used.add(candidate)
        ids[p.id] = candidate
    return ids


def _graph(imp: "OnnxImporter", kept: list[Pending], ids: dict[str, str], design: Graph | None) -> Graph:
    name = imp.graph.name if imp.graph.name not in GENERIC_GRAPH_NAMES else Path(imp.source).stem
    graph = Graph(design.name if design else name)
    graph.description = design.description if design else (imp.graph.doc_string or "")
    for p in kept:
        nid = ids[p.id]
        params = {**p.soft, **p.params}
        if design is not None and nid in design.nodes and design.nodes[nid].type == p.type:
            params = _with_design(p, dict(design.nodes[nid].params), imp.shapes[p.inputs[0]] if p.inputs else ())
        try:
            graph.add_node(p.type, params, nid)
        except BackpropError as err:
            raise ImportModelError(f"cannot import ONNX node '{p.source}' ({p.op}): {err}", node=p.source) from None
    for p in kept:
        ports = graph.nodes[ids[p.id]].input_ports()
        for (src, sport), port in zip(p.inputs, ports, strict=True):
            graph.edges.append(Edge(ids[src], sport, ids[p.id], port))
    problems = graph.problems(require_loss=False)
    if problems:
        first = problems[0]
        where = next((p.source for p in kept if ids[p.id] == first.node), imp.source)
        raise ImportModelError(f"{imp.source}: the imported network is not valid at '{where}': {first.message}")
    graph.training = copy.deepcopy(design.training) if design else _training(graph)
    return graph


def _with_design(p: Pending, design: dict[str, Any], in_shape: tuple[int, ...]) -> dict[str, Any]:
    """The design's parameters with what the ONNX file says on top, keeping the design's
    spelling where both mean the same: an axis −1 or its positive number, a Reshape's −1 or
    the size it resolves to, a convolution's "same" or the equal padding it is for an odd kernel."""
    params = dict(design)
    for key, value in p.params.items():
        mine = design.get(key)
        if key == "padding" and mine == "same" and _same_shapes(p, {**design, **p.params}, params, in_shape):
            continue
        if key == "axis" and isinstance(mine, int) and in_shape and mine % len(in_shape) == value % len(in_shape):
            continue
        if key == "shape" and p.type == "Reshape" and mine is not None and _resolved(mine, in_shape) == tuple(value):
            continue
        params[key] = value
    return params


def _same_shapes(p: Pending, a: dict[str, Any], b: dict[str, Any], in_shape: tuple[int, ...]) -> bool:
    from engine.layers import REGISTRY

    layer = REGISTRY[p.type]
    try:
        return layer.port_shapes(layer.validate_params(a), [in_shape]) == \
            layer.port_shapes(layer.validate_params(b), [in_shape])
    except BackpropError:
        return False


def _resolved(shape: Any, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    from engine.layers import REGISTRY

    try:
        return tuple(REGISTRY["Reshape"].shape({"shape": tuple(shape)}, [in_shape]))
    except BackpropError:
        return ()


def _training(graph: Graph) -> dict[str, Any]:
    """A training block for a model from elsewhere: a loss that fits its output, the rest default."""
    out = graph.nodes[graph.output_nodes()[0]]
    loss = "cross_entropy" if out.type == "Softmax" else "mdn_nll" if out.type == "MixtureDensity" else "mse"
    block = copy.deepcopy(DEFAULT_TRAINING)
    block.update({"loss": loss, "batch_size": 32, "epochs": 10,
                  "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}})
    return block


def _check_output_shape(imp: "OnnxImporter", model: Any) -> None:
    """The file's declared output shape (where fixed) must be what the imported network computes."""
    tensor = imp.graph.output[0].type.tensor_type
    if not tensor.HasField("shape"):
        return
    declared = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim][1:]
    ours = list(model.output_shape)
    if len(declared) != len(ours) or any(d is not None and d != o for d, o in zip(declared, ours, strict=False)):
        imp.refuse(f"the imported network outputs examples of shape {tuple(ours)} but the file declares "
                   f"{tuple(declared)}")


# ---- meta ------------------------------------------------------------------------------------
def _meta(imp: "OnnxImporter", graph: Graph, design: Graph | None) -> dict[str, Any]:
    out = graph.nodes[graph.output_nodes()[0]]
    task = imp.metadata.get("backprop.task") or ("classification" if out.type == "Softmax" else "regression")
    classes = imp.metadata_json("backprop.class_names")
    producer = " ".join(v for v in (imp.model.producer_name, imp.model.producer_version) if v)
    return {
        "task": task,
        "dataset": {"class_names": classes if isinstance(classes, list) else []},
        "preprocessing": {"normalise": _normalise(imp)},
        "training": copy.deepcopy(graph.training),
        "imported_from": {"format": "onnx", "file": imp.source, "producer": producer, "opset": imp.opset,
                          "design_from_metadata": design is not None},
    }


def _normalise(imp: "OnnxImporter") -> dict[str, Any] | None:
    """The normalisation found after the input; the exact statistics of Backprop Studio's
    metadata when they are the ones folded into the graph (as float32)."""
    if imp.preprocessing is None:
        return None
    mean, std = (np.float32(a).astype(np.float64) for a in imp.preprocessing)
    stored = (imp.metadata_json("backprop.preprocessing") or {}).get("normalise") if isinstance(
        imp.metadata_json("backprop.preprocessing"), dict) else None
    if isinstance(stored, dict):
        try:
            m, s = np.asarray(stored["mean"], np.float64), np.asarray(stored["std"], np.float64)
            if m.shape == mean.shape and s.shape == std.shape and np.array_equal(np.float32(m), np.float32(mean)) \
                    and np.array_equal(np.float32(s), np.float32(std)):
                return {"mean": stored["mean"], "std": stored["std"]}
        except (KeyError, TypeError, ValueError):
            pass
    return {"mean": mean.tolist(), "std": std.tolist()}
