"""The design of a network: nodes, edges between named ports, and the training setup.

:class:`Graph` is the single source of truth. The studio's canvas edits it through undo
commands; the compiler turns it into a trainable model; the graph file (JSON, see
``docs/graph-format.md``) is its serialised form. Every refusal names the node and the
reason: connecting two ports checks for cycles, taken ports and shape mismatches before it
changes anything.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import GraphError, ShapeError
from engine.layers import REGISTRY
from engine.layers.base import LayerType, Shape

FORMAT = "backprop-studio.graph"
VERSION = 1
ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

DEFAULT_TRAINING: dict[str, Any] = {
    "dataset": {"name": "xor"},
    "loss": "mse",
    "batch_size": 4,
    "epochs": 200,
    "seed": 0,
    "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
}


@dataclass
class Node:
    """One layer instance: ``params`` are validated values (tuples for shapes)."""

    id: str
    type: str
    params: dict[str, Any]
    ui: dict[str, Any] = field(default_factory=dict)

    @property
    def layer(self) -> LayerType:
        return REGISTRY[self.type]

    def input_ports(self) -> tuple[str, ...]:
        return self.layer.inputs(self.params)

    def output_ports(self) -> tuple[str, ...]:
        return self.layer.output_ports(self.params)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "params": self.layer.params_to_json(self.params),
        }
        if self.ui:
            out["ui"] = dict(self.ui)
        return out


@dataclass(frozen=True)
class Edge:
    """A wire from ``src``'s output port to ``dst``'s input port."""

    src: str
    src_port: str
    dst: str
    dst_port: str

    @property
    def source(self) -> str:
        return f"{self.src}.{self.src_port}"

    @property
    def target(self) -> str:
        return f"{self.dst}.{self.dst_port}"

    def to_json(self) -> dict[str, str]:
        return {"from": self.source, "to": self.target}


@dataclass(frozen=True)
class Problem:
    """A validation finding: which node (or None for the whole graph) and what is wrong."""

    node: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


PortRef = tuple[str, str]
"""``(node id, port name)``: one output of one node, the key of outputs and gradients."""


@dataclass
class ShapeReport:
    """Result of shape inference and the problems found.

    ``shapes`` holds each node's primary output shape (None where unknown),
    ``port_shapes`` the shape of every output port ``(node, port)``, and ``in_shapes``
    the shapes arriving at each node's input ports, in port order. ``warnings`` are
    findings that do not stop training (a stride that drops rows: ``LayerType.warnings``).
    """

    shapes: dict[str, Shape | None]
    in_shapes: dict[str, list[Shape | None]]
    problems: list[Problem]
    port_shapes: dict[PortRef, Shape | None] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)

    def problems_for(self, node_id: str) -> list[Problem]:
        return [p for p in self.problems if p.node == node_id]

    def warnings_for(self, node_id: str) -> list[Problem]:
        return [w for w in self.warnings if w.node == node_id]


@dataclass
class SummaryRow:
    node: str
    type: str
    details: str
    output_shape: Shape | None
    params: int


def parse_port_ref(ref: Any, default_port: str, what: str) -> tuple[str, str]:
    """Split ``"node.port"`` (or a bare ``"node"``) into its two parts."""
    if not isinstance(ref, str) or not ref:
        raise GraphError(f"edge {what} must be a string 'node.port', got {ref!r}")
    node, _, port = ref.partition(".")
    return node, port or default_port


class Graph:
    """A DAG of layer nodes plus the training block. Mutating methods validate first."""

    def __init__(self, name: str = "untitled") -> None:
        self.name = name
        self.description = ""
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.training: dict[str, Any] = copy.deepcopy(DEFAULT_TRAINING)

    # -- queries ---------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        """Same design: nodes, params, edges (as a set) and training; positions ignored."""
        if not isinstance(other, Graph):
            return NotImplemented
        return self.to_dict(ui=False, sort=True) == other.to_dict(ui=False, sort=True)

    def node(self, node_id: str) -> Node:
        try:
            return self.nodes[node_id]
        except KeyError:
            raise GraphError(f"no node named '{node_id}'", node=node_id) from None

    def edges_into(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.dst == node_id]

    def edges_from(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    def edge_into_port(self, node_id: str, port: str) -> Edge | None:
        for e in self.edges:
            if e.dst == node_id and e.dst_port == port:
                return e
        return None

    def inputs_of(self, node_id: str) -> list[PortRef | None]:
        """``(source node, source port)`` per input port, in port order (None: unconnected)."""
        node = self.node(node_id)
        out: list[PortRef | None] = []
        for port in node.input_ports():
            edge = self.edge_into_port(node_id, port)
            out.append((edge.src, edge.src_port) if edge else None)
        return out

    def input_nodes(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.type == "Input"]

    def output_nodes(self) -> list[str]:
        """Nodes whose output feeds nothing: the network's outputs."""
        used = {e.src for e in self.edges}
        return [n for n in self.nodes if n not in used]

    def topological_order(self) -> list[str]:
        """Kahn's algorithm, stable in insertion order; raises GraphError on a cycle."""
        indegree = {n: 0 for n in self.nodes}
        for e in self.edges:
            indegree[e.dst] += 1
        ready = [n for n, d in indegree.items() if d == 0]
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for e in self.edges:
                if e.src == n:
                    indegree[e.dst] -= 1
                    if indegree[e.dst] == 0:
                        ready.append(e.dst)
        if len(order) != len(self.nodes):
            stuck = next(n for n in self.nodes if n not in order)
            raise GraphError(f"node '{stuck}' is part of a cycle; networks must be acyclic", node=stuck)
        return order

    def _reaches(self, start: str, goal: str) -> bool:
        stack, seen = [start], set()
        while stack:
            n = stack.pop()
            if n == goal:
                return True
            if n in seen:
                continue
            seen.add(n)
            stack.extend(e.dst for e in self.edges if e.src == n)
        return False

    # -- ids -------------------------------------------------------------------------
    def unique_id(self, base: str) -> str:
        """A free node id derived from ``base`` (``dense`` → ``dense1``, ``dense2``...)."""
        base = re.sub(r"[^A-Za-z0-9_]", "_", base) or "node"
        if not re.match(r"[A-Za-z_]", base):
            base = "n_" + base
        stem = base.rstrip("0123456789") or base
        i = 1
        while f"{stem}{i}" in self.nodes:
            i += 1
        return f"{stem}{i}"

    @staticmethod
    def check_id(node_id: Any) -> str:
        if not isinstance(node_id, str) or not ID_PATTERN.match(node_id):
            raise GraphError(
                f"invalid node id {node_id!r}: use letters, digits and _ (not first), at most 64"
            )
        return node_id

    # -- edits -----------------------------------------------------------------------
    def add_node(
        self,
        type_name: str,
        params: Mapping[str, Any] | None = None,
        node_id: str | None = None,
        ui: Mapping[str, Any] | None = None,
    ) -> Node:
        layer = REGISTRY.get_type(type_name)
        node_id = self.unique_id(layer.name.lower()) if node_id is None else self.check_id(node_id)
        if node_id in self.nodes:
            raise GraphError(f"duplicate node id '{node_id}'", node=node_id)
        valid = layer.validate_params(params or {}, where=f"node '{node_id}'")
        node = Node(node_id, layer.name, valid, dict(ui or {}))
        self.nodes[node_id] = node
        return node

    def insert_node(self, node: Node, edges: Iterable[Edge] = ()) -> None:
        """Put back a node removed by :meth:`remove_node` (undo), with its edges."""
        if node.id in self.nodes:
            raise GraphError(f"duplicate node id '{node.id}'", node=node.id)
        self.nodes[node.id] = node
        for e in edges:
            self.edges.append(e)

    def remove_node(self, node_id: str) -> tuple[Node, list[Edge]]:
        """Remove a node and its edges; returns both so the edit can be undone."""
        node = self.node(node_id)
        removed = [e for e in self.edges if node_id in (e.src, e.dst)]
        self.edges = [e for e in self.edges if node_id not in (e.src, e.dst)]
        del self.nodes[node_id]
        return node, removed

    def rename_node(self, old: str, new: str) -> None:
        self.node(old)
        if old == new:
            return
        self.check_id(new)
        if new in self.nodes:
            raise GraphError(f"a node named '{new}' already exists", node=old)
        self.nodes = {(new if k == old else k): v for k, v in self.nodes.items()}
        self.nodes[new].id = new
        self.edges = [
            Edge(new if e.src == old else e.src, e.src_port, new if e.dst == old else e.dst, e.dst_port)
            for e in self.edges
        ]

    def set_param(self, node_id: str, name: str, value: Any) -> Any:
        """Set one parameter after validating it; returns the previous value.

        A change that removes ports (e.g. fewer inputs on Add) also drops the edges that
        used them; :meth:`set_params` is the undo-friendly form.
        """
        node = self.node(node_id)
        old = node.params.get(name)
        new_params = dict(node.params)
        new_params[name] = value
        self.set_params(node_id, new_params)
        return old

    def set_params(self, node_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        node = self.node(node_id)
        valid = node.layer.validate_params(params, where=f"node '{node_id}'")
        old = node.params
        node.params = valid
        ins, outs = set(node.input_ports()), set(node.output_ports())
        self.edges = [e for e in self.edges
                      if (e.dst != node_id or e.dst_port in ins) and (e.src != node_id or e.src_port in outs)]
        return old

    def connection_problem(self, src: str, dst: str, dst_port: str, src_port: str = "out") -> str | None:
        """Why ``src.src_port → dst.dst_port`` would be refused, or None if it is fine."""
        if src not in self.nodes:
            return f"no node named '{src}'"
        if dst not in self.nodes:
            return f"no node named '{dst}'"
        if src_port not in self.nodes[src].output_ports():
            return f"'{src}' has no output port '{src_port}'"
        ports = self.nodes[dst].input_ports()
        if dst_port not in ports:
            have = ", ".join(ports) or "none"
            return f"'{dst}' has no input port '{dst_port}' (its inputs: {have})"
        if src == dst:
            return f"'{src}' cannot feed itself"
        taken = self.edge_into_port(dst, dst_port)
        if taken is not None:
            return f"input '{dst}.{dst_port}' is already fed by '{taken.src}'; disconnect it first"
        if self._reaches(dst, src):
            return f"'{src}' → '{dst}' would make a cycle ('{dst}' already feeds '{src}')"
        trial = Edge(src, src_port, dst, dst_port)
        self.edges.append(trial)
        try:
            report = self.infer_shapes()
        finally:
            self.edges.remove(trial)
        for problem in report.problems_for(dst):
            if "not connected" not in problem.message:
                return problem.message
        return None

    def connect(self, src: str, dst: str, dst_port: str = "in", src_port: str = "out") -> Edge:
        problem = self.connection_problem(src, dst, dst_port, src_port)
        if problem:
            raise GraphError(problem, node=dst)
        edge = Edge(src, src_port, dst, dst_port)
        self.edges.append(edge)
        return edge

    def disconnect(self, edge: Edge) -> None:
        try:
            self.edges.remove(edge)
        except ValueError:
            raise GraphError(f"no edge {edge.source} → {edge.target}") from None

    # -- shapes and validation -------------------------------------------------------
    def infer_shapes(self, input_shapes: Mapping[str, Shape] | None = None) -> ShapeReport:
        """Output shape of every node; problems for unconnected ports and mismatches.

        A node downstream of a problem gets shape None without a second message, so the
        first problem is the one the person sees. ``input_shapes`` overrides Input nodes.
        """
        shapes: dict[str, Shape | None] = {}
        ports: dict[PortRef, Shape | None] = {}
        ins: dict[str, list[Shape | None]] = {}
        problems: list[Problem] = []
        warnings: list[Problem] = []
        try:
            order = self.topological_order()
        except GraphError as err:
            return ShapeReport({n: None for n in self.nodes}, {}, [Problem(err.node, str(err))])
        for nid in order:
            node = self.nodes[nid]
            srcs = self.inputs_of(nid)
            in_shapes = [ports.get(s) if s else None for s in srcs]
            ins[nid] = in_shapes
            shapes[nid] = None
            names = node.output_ports()
            ports.update({(nid, port): None for port in names})
            missing = [p for p, s in zip(node.input_ports(), srcs, strict=True) if s is None]
            if missing:
                which = ", ".join(f"'{p}'" for p in missing)
                problems.append(Problem(nid, f"input {which} is not connected"))
                continue
            if any(s is None for s in in_shapes):
                continue
            try:
                if node.type == "Input" and input_shapes and nid in input_shapes:
                    out = {names[0]: tuple(input_shapes[nid])}
                else:
                    out = node.layer.port_shapes(node.params, in_shapes)  # type: ignore[arg-type]
            except ShapeError as err:
                problems.append(Problem(nid, f"{node.type} '{nid}': {err}"))
                continue
            ports.update({(nid, port): shape for port, shape in out.items()})
            shapes[nid] = out[names[0]]
            if node.layer.warnings is not None:
                found = node.layer.warnings(node.params, in_shapes)  # type: ignore[arg-type]
                warnings.extend(Problem(nid, f"{node.type} '{nid}': {w}") for w in found)
        return ShapeReport(shapes, ins, problems, ports, warnings)

    def problems(self, require_loss: bool = True) -> list[Problem]:
        """Everything that stops this graph from training, each naming its node."""
        found: list[Problem] = []
        if not self.nodes:
            return [Problem(None, "the graph is empty; add an Input layer")]
        report = self.infer_shapes()
        found.extend(report.problems)
        if not self.input_nodes():
            found.append(Problem(None, "the graph has no Input layer"))
        elif len(self.input_nodes()) > 1:
            found.append(Problem(None, "only one Input layer is supported: " + ", ".join(self.input_nodes())))
        outputs = self.output_nodes()
        if len(outputs) > 1:
            found.append(
                Problem(None, "the graph has several outputs (" + ", ".join(outputs)
                        + "); connect or delete all but one")
            )
        from engine.losses import LOSSES  # local: losses import layers, not graph

        loss = self.training.get("loss")
        if require_loss and loss not in LOSSES:
            found.append(Problem(None, f"missing or unknown loss {loss!r}; choose one of {', '.join(LOSSES)}"))
        needs = LOSSES[loss].requires_output if loss in LOSSES else None
        if require_loss and needs and len(outputs) == 1 and self.nodes[outputs[0]].type != needs:
            found.append(Problem(outputs[0], f"the {loss} loss reads a {needs} output, but the graph ends in "
                                             f"this {self.nodes[outputs[0]].type}; add a {needs} layer at the "
                                             "end or choose another loss"))
        return found

    def validate(self) -> ShapeReport:
        """Raise GraphError with the first problem; return the shapes if all is well."""
        problems = self.problems()
        if problems:
            first = problems[0]
            raise GraphError(str(first), node=first.node)
        return self.infer_shapes()

    def summary(self) -> tuple[list[SummaryRow], int]:
        """Rows of (node, type, key params, output shape, parameter count) and the total."""
        report = self.infer_shapes()
        rows: list[SummaryRow] = []
        order = self._order_or_insertion()
        for nid in order:
            node = self.nodes[nid]
            in_shapes = report.in_shapes.get(nid, [])
            count = 0
            if report.shapes.get(nid) is not None and all(s is not None for s in in_shapes):
                count = node.layer.param_count(node.params, in_shapes)  # type: ignore[arg-type]
            rows.append(SummaryRow(nid, node.type, node.layer.summary_text(node.params),
                                   report.shapes.get(nid), count))
        return rows, sum(r.params for r in rows)

    def _order_or_insertion(self) -> list[str]:
        try:
            return self.topological_order()
        except GraphError:
            return list(self.nodes)

    # -- serialisation ---------------------------------------------------------------
    def to_dict(self, ui: bool = True, sort: bool = False) -> dict[str, Any]:
        nodes = [n.to_json() for n in self.nodes.values()]
        if not ui:
            for n in nodes:
                n.pop("ui", None)
        edges = [e.to_json() for e in self.edges]
        if sort:
            nodes.sort(key=lambda n: n["id"])
            edges.sort(key=lambda e: (e["to"], e["from"]))
        out: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": self.name}
        if self.description:
            out["description"] = self.description
        out.update({"nodes": nodes, "edges": edges, "training": copy.deepcopy(self.training)})
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def copy(self) -> "Graph":
        return Graph.from_dict(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, source: str = "graph") -> "Graph":
        """Build and check a graph from parsed JSON; every refusal says what and where."""
        if not isinstance(data, dict):
            raise GraphError(f"{source}: expected a JSON object at the top level")
        if data.get("format") != FORMAT:
            raise GraphError(f"{source}: not a Backprop Studio graph (format is {data.get('format')!r}, "
                             f"expected {FORMAT!r})")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise GraphError(f"{source}: 'version' must be an integer")
        if version > VERSION or version < 1:
            raise GraphError(
                f"{source}: graph file version {version} is not supported (this program reads "
                f"version {VERSION}); update Backprop Studio"
            )
        graph = cls(str(data.get("name", "untitled")))
        graph.description = str(data.get("description", ""))
        nodes = data.get("nodes")
        edges = data.get("edges", [])
        if not isinstance(nodes, list):
            raise GraphError(f"{source}: 'nodes' must be a list")
        if not isinstance(edges, list):
            raise GraphError(f"{source}: 'edges' must be a list")
        for i, raw in enumerate(nodes):
            if not isinstance(raw, dict):
                raise GraphError(f"{source}: node #{i} must be an object")
            nid = raw.get("id")
            where = f"{source}: node #{i}" if not isinstance(nid, str) else f"{source}: node '{nid}'"
            if "type" not in raw:
                raise GraphError(f"{where}: missing 'type'", node=nid)
            try:
                layer = REGISTRY.get_type(raw["type"], where)
                graph.check_id(nid)
                if nid in graph.nodes:
                    raise GraphError(f"{source}: duplicate node id '{nid}'", node=nid)
                params = layer.validate_params(raw.get("params", {}), where=where)
            except GraphError as err:
                err.node = nid if isinstance(nid, str) else None
                raise
            ui = raw.get("ui", {})
            graph.nodes[nid] = Node(nid, layer.name, params, dict(ui) if isinstance(ui, dict) else {})
        for i, raw in enumerate(edges):
            if not isinstance(raw, dict):
                raise GraphError(f"{source}: edge #{i} must be an object with 'from' and 'to'")
            src, sp = parse_port_ref(raw.get("from"), "out", f"#{i} 'from'")
            dst, dp = parse_port_ref(raw.get("to"), "in", f"#{i} 'to'")
            for end in (src, dst):
                if end not in graph.nodes:
                    raise GraphError(f"{source}: edge {src}.{sp} → {dst}.{dp} refers to missing node '{end}'", node=end)
            if sp not in graph.nodes[src].output_ports():
                raise GraphError(f"{source}: node '{src}' has no output port '{sp}'", node=src)
            if dp not in graph.nodes[dst].input_ports():
                raise GraphError(f"{source}: node '{dst}' has no input port '{dp}'", node=dst)
            if graph.edge_into_port(dst, dp) is not None:
                raise GraphError(f"{source}: input '{dst}.{dp}' is connected twice", node=dst)
            graph.edges.append(Edge(src, sp, dst, dp))
        graph.topological_order()
        training = data.get("training", {})
        if not isinstance(training, dict):
            raise GraphError(f"{source}: 'training' must be an object")
        graph.training = copy.deepcopy(DEFAULT_TRAINING)
        graph.training.update(copy.deepcopy(training))
        return graph

    @classmethod
    def from_json(cls, text: str, source: str = "graph") -> "Graph":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise GraphError(f"{source}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
        return cls.from_dict(data, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Graph":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise GraphError(f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError) as err:
            raise GraphError(f"{path}: cannot read ({err})") from None
        return cls.from_json(text, source=path.name)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a crash mid-write never leaves a half-written graph file."""
        atomic_write_text(Path(path), self.to_json())


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o077)  # elsewhere: set and restore at once (the only portable way to read it)
    os.umask(mask)
    return mask


def creation_mode(path: Path, directory: bool = False) -> int:
    """The permissions a plain ``open(path, "w")`` (or ``mkdir``) would leave ``path`` with.

    Replacing an existing file keeps its mode; a new one gets 0666 (0777 for a folder)
    minus the umask. Temporary files from ``tempfile`` are 0600/0700 whatever the umask,
    so atomic writes set this mode on them before renaming them into place.
    """
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return (0o777 if directory else 0o666) & ~current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over: all or nothing.

    The file ends up with the permissions a normal write would give it (:func:`creation_mode`).
    """
    path = Path(path)
    mode = creation_mode(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    except OSError as err:  # name the user's file, not the temporary one
        raise OSError(err.errno, err.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
