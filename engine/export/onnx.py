"""ONNX export: one ONNX graph, built node by node by the layers' own exporters.

The file uses opset :data:`OPSET` (IR version 8, readable by every current runtime and by
Netron) and float32. Its input is named after the graph's Input node and its output after
the output node; every node's last tensor carries the node's id, and every weight is an
initializer named as in the model file (``h1.W``). The model file's input normalisation is
folded into the graph as ``(x − mean) / std`` right after the input, so the ONNX model takes
raw features exactly like ``backprop predict``; it is also recorded in the metadata
(``backprop.preprocessing``) together with the graph JSON (``backprop.graph``).

A layer's ONNX exporter is ``fn(ctx, node) -> tensor name`` and builds with
:class:`OnnxContext`: ``ctx.op(op_type, inputs, **attributes)``, ``ctx.weight(name)``,
``ctx.const(value, hint)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import engine
from engine.errors import ExportError
from engine.export.common import INSTALL_EXPORT, ExportNode, export_nodes, normalisation, run_exporter
from engine.graph import PortRef, atomic_write_bytes

OPSET = 17
IR_VERSION = 8


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ExportError(f"ONNX export needs the 'onnx' package; {INSTALL_EXPORT}") from None
    return onnx


class OnnxContext:
    """Collects ONNX nodes and initializers; names everything after the current graph node."""

    opset = OPSET

    def __init__(self) -> None:
        self.onnx = _import_onnx()
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._tensors: set[str] = set()
        self._node_names: set[str] = set()
        self.node: ExportNode | None = None
        self.prefix = ""
        self._start = 0

    # -- what exporters call ------------------------------------------------------------
    def op(self, op_type: str, inputs: list[str], **attributes: Any) -> str:
        """Append one ONNX node; returns the name of its (single) output tensor."""
        return self.op_n(op_type, inputs, 1, **attributes)[0]

    def op_n(self, op_type: str, inputs: list[str], n_outputs: int, **attributes: Any) -> list[str]:
        """Append one ONNX node with ``n_outputs`` outputs; returns their tensor names.

        An empty input name stands for an omitted optional input, as ONNX allows.
        """
        outs = [self._fresh(self._tensors, f"{self.prefix}/{op_type}" + (f"_{i}" if i else ""))
                for i in range(n_outputs)]
        name = self._fresh(self._node_names, f"{self.prefix}/{op_type}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), outs, name=name, **attributes))
        return outs

    def weight(self, name: str) -> str:
        """The current node's trained weight or buffer ``name`` as an initializer ``<node>.<name>``."""
        assert self.node is not None
        value = self.node.W[name] if name in self.node.W else self.node.B[name]
        key = f"{self.node.id}.{name}"
        if key not in self._tensors:
            self._tensors.add(key)
            self._add_initializer(key, np.asarray(value, np.float32))
        return key

    def const(self, value: Any, hint: str, dtype: Any = np.float32) -> str:
        """A constant tensor (a scalar broadcasts); int64 for shapes and axes."""
        name = self._fresh(self._tensors, f"{self.prefix}/{hint}")
        self._add_initializer(name, np.asarray(value, dtype=dtype))
        return name

    # -- what the framework calls -------------------------------------------------------
    def begin(self, node: ExportNode) -> None:
        self.node, self.prefix, self._start = node, node.id, len(self.nodes)

    def finish(self, result: str | list[str]) -> list[str]:
        """One tensor name per output port of the node.

        Each tensor this node produced is renamed after the node: its id for a node with
        one output, ``<id>/<port>`` for each port of a node with several, so Netron shows
        the graph's names.
        """
        assert self.node is not None
        results = [result] if isinstance(result, str) else list(result)
        ports = self.node.ports
        if len(results) != len(ports):
            raise ExportError(f"the ONNX exporter of {self.node.type} gave {len(results)} outputs "
                              f"for the ports {', '.join(ports)}", node=self.node.id)
        return [self._rename(r, self.node.id if len(ports) == 1 else f"{self.node.id}/{port}")
                for r, port in zip(results, ports, strict=True)]

    def _rename(self, result: str, wanted: str) -> str:
        own = self.nodes[self._start:]
        if not any(result in n.output for n in own) or wanted in self._tensors:
            return result
        for n in own:
            for i, name in enumerate(n.output):
                if name == result:
                    n.output[i] = wanted
            for i, name in enumerate(n.input):
                if name == result:
                    n.input[i] = wanted
        self._tensors.add(wanted)
        return wanted

    def _add_initializer(self, name: str, array: np.ndarray) -> None:
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name=name))

    @staticmethod
    def _fresh(used: set[str], hint: str) -> str:
        name, i = hint, 1
        while name in used:
            i += 1
            name = f"{hint}_{i}"
        used.add(name)
        return name


def build_onnx(loaded: Any) -> Any:
    """The ONNX ModelProto of a loaded model (see the module docstring for its layout)."""
    model, meta = loaded.model, loaded.meta
    ctx = OnnxContext()
    onnx, helper = ctx.onnx, ctx.onnx.helper
    input_id, output_id = model.input_id, model.output_id
    in_shape = model.shapes[input_id]
    ctx._tensors.add(input_id)
    net_in = input_id
    norm = normalisation(meta)
    if norm is not None:
        net_in = _fold_normalisation(ctx, input_id, in_shape, norm)
    names: dict[PortRef, str] = {}
    for node in export_nodes(model):
        x = node.input_names(names, net_in)
        node = node.named(x, {(node.id, port): node.id for port in node.ports})
        ctx.begin(node)
        outputs = ctx.finish(run_exporter(model, node, "onnx", ctx))
        names.update({(node.id, port): out for port, out in zip(node.ports, outputs, strict=True)})
    if names[model.output_ref] != output_id:
        ctx.prefix = output_id
        ctx.nodes.append(helper.make_node("Identity", [names[model.output_ref]], [output_id],
                                          name=f"{output_id}/output"))
    graph = helper.make_graph(
        ctx.nodes, model.graph.name or "network",
        [helper.make_tensor_value_info(input_id, onnx.TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info(output_id, onnx.TensorProto.FLOAT, ["N", *model.output_shape])],
        initializer=ctx.initializers,
        doc_string=getattr(model.graph, "description", "") or "",
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="backprop-studio", producer_version=engine.__version__)
    proto.ir_version = IR_VERSION
    helper.set_model_props(proto, {
        "backprop.graph": model.graph.to_json(),
        "backprop.preprocessing": json.dumps(meta.get("preprocessing") or {"normalise": None}),
        "backprop.normalisation": "folded into the graph after the input" if norm is not None else "none",
        "backprop.task": str(meta.get("task", "")),
        "backprop.class_names": json.dumps((meta.get("dataset") or {}).get("class_names") or []),
    })
    try:
        onnx.checker.check_model(proto, full_check=True)
        proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportError(f"the exported ONNX graph does not validate: {err}") from None
    return proto


def _fold_normalisation(ctx: OnnxContext, input_id: str, in_shape: tuple[int, ...],
                        norm: tuple[np.ndarray, np.ndarray]) -> str:
    """(x − mean) / std on the raw input; returns the normalised tensor's name."""
    mean, std = norm
    try:
        np.broadcast_shapes(mean.shape, in_shape)
    except ValueError:
        raise ExportError(f"the stored normalisation has shape {mean.shape} but Input '{input_id}' "
                          f"expects examples of shape {in_shape}") from None
    ctx.prefix = "preprocessing"
    centred = ctx.op("Sub", [input_id, ctx.const(mean, "mean")])
    return ctx.op("Div", [centred, ctx.const(std, "std")])


def export_onnx(loaded: Any, output: str | Path) -> Path:
    """Write the ONNX file atomically; returns its path."""
    out = Path(output)
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; ONNX export writes one file such as model.onnx")
    proto = build_onnx(loaded)
    atomic_write_bytes(out, proto.SerializeToString())
    return out
