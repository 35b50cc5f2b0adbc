"""What every export format shares: the per-node view, names, refusals and atomic writes.

A format walks the compiled model's nodes in topological order and hands each one, as an
:class:`ExportNode`, to the exporter its layer type declares (``LayerType.exporters[fmt]``).
Nothing here imports ONNX or PyTorch: those load only when that format is asked for.
"""

from __future__ import annotations

import builtins
import keyword
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from engine.compiler import Model
from engine.errors import ExportError
from engine.graph import PortRef, creation_mode
from engine.layers.base import Shape

FORMAT_TITLES = {"onnx": "ONNX", "torch": "PyTorch", "numpy": "NumPy"}
INSTALL_EXPORT = "install the export extra: pip install 'backprop-studio[export]'"


@dataclass
class ExportNode:
    """One node as an exporter sees it: parameters, shapes, trained arrays and names.

    ``x`` holds the format's names for the node's inputs (ONNX tensor names or Python
    variable names) in port order; ``name`` is the name its own (primary) output gets and
    ``port_names`` the names of all its output ports. ``sources`` are the ``(node, port)``
    references feeding the inputs. ``W`` are the trained weights and ``B`` the layer state
    (e.g. BatchNorm running statistics), as float64.
    """

    id: str
    type: str
    p: Mapping[str, Any]
    in_shapes: list[Shape]
    out_shape: Shape
    W: dict[str, np.ndarray]
    B: dict[str, np.ndarray]
    decay: tuple[str, ...] = ()
    sources: list[PortRef] = field(default_factory=list)
    x: list[str] = field(default_factory=list)
    name: str = ""
    ports: tuple[str, ...] = ("out",)
    out_shapes: dict[str, Shape] = field(default_factory=dict)
    port_names: list[str] = field(default_factory=list)
    attr: str = ""

    def named(self, x: list[str], names: Mapping[PortRef, str], attr: str | None = None) -> "ExportNode":
        """This node with its input names ``x``, its output names from ``names`` and the
        name of the node itself (``attr``: a PyTorch submodule; default its output's name)."""
        own = [names[(self.id, port)] for port in self.ports]
        return replace(self, x=list(x), name=own[0], port_names=own, attr=attr or own[0])

    def input_names(self, names: Mapping[PortRef, str], network_input: str) -> list[str]:
        """The names feeding this node (the network input for the Input node)."""
        return [network_input] if not self.sources else [names[s] for s in self.sources]


def export_nodes(model: Model, use_grads: bool = False) -> list[ExportNode]:
    """The model's nodes in topological order (``use_grads`` swaps weights for gradients)."""
    out = []
    for nid in model.order:
        rt = model.runtimes[nid]
        arrays = rt.G if use_grads else rt.W
        out.append(ExportNode(
            id=nid, type=rt.type.name, p=dict(rt.p), in_shapes=list(rt.in_shapes), out_shape=rt.out_shape,
            W={k: np.array(v, dtype=np.float64) for k, v in arrays.items()},
            B={k: np.array(v, dtype=np.float64) for k, v in rt.B.items()},
            decay=tuple(rt.type.decay),
            sources=[s for s in model.graph.inputs_of(nid) if s is not None],
            ports=model.ports[nid], out_shapes=dict(rt.out_shapes),
        ))
    return out


def port_labels(model: Model) -> dict[PortRef, str]:
    """A readable label per output port: the node id for a node with one output,
    ``<id>_<port>`` for each port of a node with several (before :func:`python_names` makes
    them valid and unique)."""
    return {(nid, port): nid if len(ports) == 1 else f"{nid}_{port}"
            for nid, ports in model.ports.items() for port in ports}


def port_python_names(model: Model, reserved: Iterable[str]) -> dict[PortRef, str]:
    """A valid, unique Python identifier per output port (see :func:`port_labels`)."""
    labels = port_labels(model)
    names = python_names(labels.values(), reserved)
    return {ref: names[label] for ref, label in labels.items()}


def node_python_names(model: Model, port_names: Mapping[PortRef, str], reserved: Iterable[str]) -> dict[str, str]:
    """A Python name per node for what stands for the node itself (a PyTorch submodule): its
    output's name for a one-output node, its id (made free) for a node with several outputs,
    whose outputs are ``<id>_<port>``."""
    taken = set(port_names.values()) | set(reserved)
    out: dict[str, str] = {}
    for nid, ports in model.ports.items():
        if len(ports) == 1:
            out[nid] = port_names[(nid, ports[0])]
            continue
        name = nid
        while name in taken:
            name += "_"
        out[nid] = name
        taken.add(name)
    return out


def assign_line(node: ExportNode, expr: str, indent: str) -> str | None:
    """``name = expr`` for a one-output node, ``a, a_state = expr`` for several (None: nothing
    to assign because the expression is the node's name already)."""
    if len(node.port_names) > 1:
        return f"{indent}{', '.join(node.port_names)} = {expr}"
    return None if expr == node.name else f"{indent}{node.name} = {expr}"


def exporter_for(model: Model, node: ExportNode, fmt: str) -> Callable[..., Any]:
    """The node's exporter for ``fmt``, or ExportError naming the node and why not."""
    layer = model.runtimes[node.id].type
    fn = layer.exporters.get(fmt)
    if fn is None:
        raise ExportError(
            f"cannot export node '{node.id}' to {FORMAT_TITLES.get(fmt, fmt)}: layer type {layer.name} "
            f"declares no {fmt} exporter (it exports to: {', '.join(sorted(layer.exporters)) or 'nothing'})",
            node=node.id,
        )
    return fn


def run_exporter(model: Model, node: ExportNode, fmt: str, ctx: Any) -> Any:
    """Call the node's exporter; a refusal (ExportError) gets the node's name in front."""
    fn = exporter_for(model, node, fmt)
    try:
        return fn(ctx, node)
    except ExportError as err:
        if err.node == node.id:
            raise
        raise ExportError(f"cannot export node '{node.id}' ({node.type}) to {FORMAT_TITLES.get(fmt, fmt)}: "
                          f"{err}", node=node.id) from None


def check_exportable(model: Model, fmt: str) -> None:
    """Raise ExportError for the first node whose layer type has no exporter for ``fmt``."""
    if fmt not in FORMAT_TITLES:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMAT_TITLES)}")
    for node in export_nodes(model):
        exporter_for(model, node, fmt)


def normalisation(meta: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """The model file's stored input normalisation as (mean, std) float64 arrays, or None."""
    norm = (meta.get("preprocessing") or {}).get("normalise")
    if not norm:
        return None
    try:
        mean = np.asarray(norm["mean"], dtype=np.float64)
        std = np.asarray(norm["std"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise ExportError("meta.json: preprocessing.normalise must hold numeric 'mean' and 'std'") from None
    if mean.shape != std.shape or not np.all(np.isfinite(mean)) or not np.all(std > 0):
        raise ExportError("meta.json: preprocessing.normalise has mismatched or non-positive statistics")
    return mean, std


PY_RESERVED = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))


def python_names(ids: Iterable[str], reserved: Iterable[str]) -> dict[str, str]:
    """A valid, unique Python identifier per node id: the id itself unless it is taken.

    Taken means a keyword, a builtin, or a name the generated file already uses; such an
    id gets a trailing underscore (``lambda`` → ``lambda_``).
    """
    taken = set(PY_RESERVED) | set(reserved)
    ids = list(ids)
    out: dict[str, str] = {}
    used: set[str] = set()
    for nid in ids:
        name = nid
        while name in taken or name in used or (name != nid and name in ids):
            name += "_"
        out[nid] = name
        used.add(name)
    return out


def write_directory(output: str | Path, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` into the folder ``output`` all at once, or not at all.

    Everything is written into a temporary sibling folder first, then renamed into place.
    An existing folder is replaced only if it is empty or a previous export (has model.py).
    """
    out = Path(output)
    if out.exists():
        if not out.is_dir():
            raise ExportError(f"{out}: exists and is not a folder; choose a folder name for this format")
        if any(out.iterdir()) and not (out / "model.py").exists():
            raise ExportError(f"{out}: the folder is not empty and holds no earlier export; choose another")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"{parent}: no such folder")
    mode = creation_mode(out, directory=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        os.chmod(tmp, mode)  # mkdtemp makes it 0700; a plain mkdir respects the umask
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=parent))
            os.replace(out, old / "previous")
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old / "previous", out)
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
