"""Lesson files: TOML data in ``resources/lessons/`` (docs/lessons.md, field by field).

A lesson names its runs (graphs to train: a graph file, an embedded graph, or another run
plus a few edits), the one thing the student changes, and expectations over the metrics
stream. Loading checks all of it, so a malformed lesson is refused with its file named
before anything trains: unknown keys, runs, nodes, parameters or measures, an edit whose
``from`` no longer matches the graph, a training block that would not train.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import BackpropError, LessonError
from engine.graph import FORMAT as GRAPH_FORMAT
from engine.graph import VERSION as GRAPH_VERSION
from engine.graph import Graph
from engine.lessons.expect import Check, parse_check
from engine.resources import ResourceError, layout, locate

LESSON_FORMAT = "backprop-studio.lesson"
LESSON_VERSION = 1
TOP_KEYS = {"format", "version", "number", "title", "seed_topic", "summary", "text", "plots", "training",
            "runs", "change", "expectations"}
RUN_KEYS = {"name", "label", "note", "graph", "base", "edits", "training"}
EDIT_KEYS = {"node", "param", "training", "from", "to", "remove"}
CHANGE_KEYS = {"text", "from_run", "to_run"}
EXPECTATION_KEYS = {"id", "text", "check"}
_ABSENT = object()


def lessons_dir() -> Path:
    """Where the lesson files are (``resources/lessons``, found by :mod:`engine.resources`)."""
    return layout().resources / "lessons"


# ---- edits -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Edit:
    """One change to a graph: a node parameter (``nodes`` + ``param``) or a training key
    (``training``, dotted for nested keys such as ``optimizer.lr``). ``to`` is the new value;
    ``remove`` deletes a training key (TOML has no null). ``before`` is the value the lesson
    expects to find (``from`` in the file), checked when the lesson loads."""

    nodes: tuple[str, ...] = ()
    param: str | None = None
    training: str | None = None
    to: Any = None
    before: Any = None
    remove: bool = False

    def apply(self, graph: Graph) -> None:
        """Change ``graph`` in place; LessonError if the lesson no longer fits it."""
        if self.training is not None:
            self._apply_training(graph.training)
            return
        for nid in self.nodes:
            if nid not in graph.nodes:
                raise LessonError(f"edit: the graph has no node '{nid}' (it has {', '.join(graph.nodes)})")
            node = graph.nodes[nid]
            if self.before is not None and node.params.get(self.param) != _as_param(self.before):
                raise LessonError(f"edit: node '{nid}' has {self.param} = {node.params.get(self.param)!r}, "
                                  f"the lesson expects {self.before!r}")
            try:
                graph.set_param(nid, self.param, self.to)  # type: ignore[arg-type]
            except BackpropError as err:
                raise LessonError(f"edit: {err}") from None

    def _apply_training(self, block: dict[str, Any]) -> None:
        *path, key = self.training.split(".")  # type: ignore[union-attr]
        target = block
        for part in path:
            nxt = target.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise LessonError(f"edit: training '{part}' is not a table, cannot set '{self.training}'")
            target = nxt
        current = target.get(key, _ABSENT)
        if self.before is not None and current != self.before:
            found = "absent" if current is _ABSENT else repr(current)
            raise LessonError(f"edit: training '{self.training}' is {found}, the lesson expects {self.before!r}")
        if self.remove:
            target.pop(key, None)
        else:
            target[key] = copy.deepcopy(self.to)

    def to_json(self) -> dict[str, Any]:
        """The edit as plain data (for the studio's "Next step" and the report)."""
        out: dict[str, Any] = ({"training": self.training} if self.training is not None
                               else {"nodes": list(self.nodes), "param": self.param})
        if self.before is not None:
            out["from"] = self.before
        out["remove" if self.remove else "to"] = True if self.remove else self.to
        return out

    def describe(self) -> str:
        what = f"training {self.training}" if self.training else f"{', '.join(self.nodes)}.{self.param}"
        start = f" from {self.before!r}" if self.before is not None else ""
        return f"{what}{start} removed" if self.remove else f"{what}{start} to {self.to!r}"


def _as_param(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _parse_edit(raw: Any, where: str) -> Edit:
    if not isinstance(raw, Mapping):
        raise LessonError(f"{where}: an edit must be a table like {{node = \"h\", param = \"units\", to = 4}}")
    _no_unknown(raw, EDIT_KEYS, where)
    remove = bool(raw.get("remove", False))
    if "to" not in raw and not remove:
        raise LessonError(f"{where}: an edit needs 'to' (the new value) or remove = true")
    if "training" in raw:
        if "node" in raw or "param" in raw:
            raise LessonError(f"{where}: an edit changes a node parameter or a training key, not both")
        key = raw["training"]
        if not isinstance(key, str) or not key:
            raise LessonError(f"{where}: 'training' must name a key such as \"clip_norm\" or \"optimizer.lr\"")
        return Edit(training=key, to=raw.get("to"), before=raw.get("from"), remove=remove)
    nodes = raw.get("node")
    nodes = [nodes] if isinstance(nodes, str) else nodes
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, str) for n in nodes):
        raise LessonError(f"{where}: 'node' must be a node id or a list of them")
    if not isinstance(raw.get("param"), str):
        raise LessonError(f"{where}: a node edit needs 'param' (the parameter's name)")
    if remove:
        raise LessonError(f"{where}: a node parameter cannot be removed; give 'to'")
    return Edit(nodes=tuple(nodes), param=raw["param"], to=raw["to"], before=raw.get("from"))


# ---- the lesson ------------------------------------------------------------------------------
@dataclass
class RunSpec:
    """One graph the lesson trains: its name (used by the checks), label, and the graph
    ready to train (``graph``), with where it came from (``source``) and, for a run made
    from another, that run's name and the edits."""

    name: str
    label: str
    graph: Graph
    source: str
    base_dir: Path
    note: str = ""
    base: str | None = None
    edits: tuple[Edit, ...] = ()

    def activation_nodes(self) -> list[str]:
        return [n for n in self.graph.topological_order() if self.graph.nodes[n].type == "Activation"]


@dataclass
class Change:
    """The thing the student changes: from run ``from_run`` to ``to_run``. ``edits`` are
    the machine form when ``to_run`` is ``from_run`` plus edits; empty when the step opens a
    different graph (e.g. adding a hidden layer)."""

    text: str
    from_run: str
    to_run: str
    edits: tuple[Edit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "from_run": self.from_run, "to_run": self.to_run,
                "edits": [e.to_json() for e in self.edits]}


@dataclass
class Expectation:
    id: str
    text: str
    check: Check


@dataclass
class Lesson:
    """A loaded, checked lesson (see docs/lessons.md)."""

    id: str
    number: int
    title: str
    seed_topic: str
    summary: str
    text: str
    runs: list[RunSpec]
    expectations: list[Expectation]
    path: Path
    change: Change | None = None
    plots: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def run(self, name: str) -> RunSpec:
        for spec in self.runs:
            if spec.name == name:
                return spec
        raise LessonError(f"lesson '{self.id}' has no run '{name}'; its runs are {', '.join(self.run_names)}")

    @property
    def run_names(self) -> list[str]:
        return [r.name for r in self.runs]

    def graph(self, name: str) -> Graph:
        """A fresh copy of run ``name``'s graph (edits applied, training overrides merged)."""
        return self.run(name).graph.copy()

    def info(self) -> dict[str, Any]:
        """What a lesson list shows: no graphs, no text."""
        return {"id": self.id, "number": self.number, "title": self.title, "seed_topic": self.seed_topic,
                "summary": self.summary, "runs": self.run_names, "expectations": len(self.expectations),
                "path": str(self.path)}


def _no_unknown(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise LessonError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _text(raw: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
    value = raw.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise LessonError(f"{where}: '{key}' must be a{' non-empty' if required else ''} text")
    return value


def _named_tables(raw: Mapping[str, Any], key: str, id_key: str, allowed: set[str],
                  what: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    """The ``[[key]]`` tables of a lesson as (name, where-text, table), each checked for
    unknown keys and a unique ``id_key``; at least one is required."""
    items = raw.get(key)
    if not isinstance(items, list) or not items:
        raise LessonError(f"{what.split(':')[0]}: a lesson needs at least one [[{key}]] table")
    out: list[tuple[str, str, Mapping[str, Any]]] = []
    for i, table in enumerate(items):
        here = f"{what} #{i + 1}"
        if not isinstance(table, Mapping):
            raise LessonError(f"{here}: must be a table")
        _no_unknown(table, allowed, here)
        name = _text(table, id_key, here)
        here = f"{what} '{name}'"
        if any(n == name for n, _h, _t in out):
            raise LessonError(f"{here}: two [[{key}]] tables are named '{name}'")
        out.append((name, here, table))
    return out


def _graph_from(raw: Any, where: str, lesson_dir: Path) -> tuple[Graph, str, Path]:
    """A run's ``graph``: a path as the repository spells it (``examples/xor.json``, found in a
    checkout and an installed wheel alike) or an embedded graph table."""
    if isinstance(raw, str):
        try:
            path = locate(raw)
        except ResourceError as err:
            raise LessonError(f"{where}: graph file {err}") from None
        if not path.exists():
            raise LessonError(f"{where}: graph file '{raw}' not found (looked for {path})")
        try:
            return Graph.load(path), raw, path.parent
        except BackpropError as err:
            raise LessonError(f"{where}: {err}") from None
    if isinstance(raw, Mapping):
        data = {"format": GRAPH_FORMAT, "version": GRAPH_VERSION, **json.loads(json.dumps(raw))}
        try:
            return Graph.from_dict(data, source=where), "embedded", lesson_dir
        except BackpropError as err:
            raise LessonError(str(err)) from None
    raise LessonError(f"{where}: 'graph' must be a path such as \"examples/xor.json\" or an embedded graph table")


def _merge_training(graph: Graph, overrides: Any, where: str) -> None:
    if overrides is None:
        return
    if not isinstance(overrides, Mapping):
        raise LessonError(f"{where}: 'training' must be a table of training-block keys")
    graph.training.update(copy.deepcopy(dict(overrides)))


def _check_trainable(graph: Graph, where: str) -> None:
    from engine.training import TrainConfig

    try:
        problems = graph.problems()
        if problems:
            raise LessonError(f"{where}: {problems[0]}")
        TrainConfig.from_training(graph.training)
    except LessonError:
        raise
    except BackpropError as err:
        raise LessonError(f"{where}: {err}") from None


def _parse_runs(raw: Mapping[str, Any], where: str, lesson_dir: Path) -> list[RunSpec]:
    runs: dict[str, RunSpec] = {}
    for name, here, r in _named_tables(raw, "runs", "name", RUN_KEYS, f"{where}: run"):
        if not name.isidentifier():
            raise LessonError(f"{here}: a run name must be letters, digits and '_' (it is used in checks)")
        if ("graph" in r) == ("base" in r):
            raise LessonError(f"{here}: give either 'graph' (a file or an embedded graph) or 'base' (another run)")
        edits = tuple(_parse_edit(e, f"{here}: edit #{j + 1}") for j, e in enumerate(r.get("edits", [])))
        if "graph" in r:
            if edits:
                raise LessonError(f"{here}: 'edits' apply to a 'base' run; put the change into the graph")
            graph, source, base_dir = _graph_from(r["graph"], here, lesson_dir)
            _merge_training(graph, raw.get("training"), f"{where}: [training]")
            base = None
        else:
            base = r["base"]
            if base not in runs:
                raise LessonError(f"{here}: base run {base!r} is not defined above it "
                                  f"(runs so far: {', '.join(runs) or 'none'})")
            graph, source, base_dir = runs[base].graph.copy(), f"{base} + edits", runs[base].base_dir
            for j, edit in enumerate(edits):
                try:
                    edit.apply(graph)
                except LessonError as err:
                    raise LessonError(f"{here}: edit #{j + 1}: {str(err).removeprefix('edit: ')}") from None
        _merge_training(graph, r.get("training"), here)
        _check_trainable(graph, here)
        runs[name] = RunSpec(name, str(r.get("label", name)), graph, source, base_dir,
                             str(r.get("note", "")), base, edits)
    return list(runs.values())


def _parse_change(raw: Any, where: str, runs: Mapping[str, RunSpec]) -> Change | None:
    if raw is None:
        return None
    here = f"{where}: [change]"
    if not isinstance(raw, Mapping):
        raise LessonError(f"{here}: must be a table with text, from_run and to_run")
    _no_unknown(raw, CHANGE_KEYS, here)
    text = _text(raw, "text", here)
    ends = []
    for key in ("from_run", "to_run"):
        name = raw.get(key)
        if name not in runs:
            raise LessonError(f"{here}: {key} {name!r} is not a run of the lesson ({', '.join(runs)})")
        ends.append(name)
    target = runs[ends[1]]
    edits = target.edits if target.base == ends[0] else ()
    return Change(text, ends[0], ends[1], edits)


def _parse_expectations(raw: Mapping[str, Any], where: str, runs: list[str]) -> list[Expectation]:
    out: list[Expectation] = []
    for eid, here, e in _named_tables(raw, "expectations", "id", EXPECTATION_KEYS, f"{where}: expectation"):
        try:
            check = parse_check(e.get("check"), runs)
        except LessonError as err:
            raise LessonError(f"{here}: {err}") from None
        out.append(Expectation(eid, _text(e, "text", here), check))
    return out


def parse_lesson(raw: Mapping[str, Any], path: Path) -> Lesson:
    """Check a parsed lesson table; LessonError names the file and the part that is wrong."""
    where = str(path.name)
    _no_unknown(raw, TOP_KEYS, where)
    if raw.get("format") != LESSON_FORMAT:
        raise LessonError(f"{where}: not a lesson file (format is {raw.get('format')!r}, expected {LESSON_FORMAT!r})")
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise LessonError(f"{where}: 'version' must be a positive integer")
    if version > LESSON_VERSION:
        raise LessonError(f"{where}: lesson format version {version} is newer than this program reads "
                          f"({LESSON_VERSION}); update Backprop Studio")
    number = raw.get("number")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise LessonError(f"{where}: 'number' must be a positive integer (the lesson's place in the list)")
    plots = raw.get("plots", [])
    if not isinstance(plots, list) or not all(isinstance(p, str) for p in plots):
        raise LessonError(f"{where}: 'plots' must be a list of panel names")
    runs = _parse_runs(raw, where, path.parent)
    by_name = {r.name: r for r in runs}
    return Lesson(
        id=path.stem, number=number, title=_text(raw, "title", where),
        seed_topic=_text(raw, "seed_topic", where, required=False),
        summary=_text(raw, "summary", where), text=_text(raw, "text", where), runs=runs,
        expectations=_parse_expectations(raw, where, list(by_name)), path=path,
        change=_parse_change(raw.get("change"), where, by_name), plots=tuple(plots), raw=dict(raw))


def load_lesson_file(path: str | Path) -> Lesson:
    """Read and check one lesson file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LessonError(f"{path}: no such lesson file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LessonError(f"{path}: cannot read ({err})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise LessonError(f"{path.name}: not valid TOML ({err})") from None
    return parse_lesson(raw, path)
