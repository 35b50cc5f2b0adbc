"""The expectation language: checks over the metrics stream of a lesson's runs.

An expectation is one comparison, ``expr OP expr``, for example::

    grad_ratio(sigmoid, first, last, step=50) <= 1e-2
    val_acc(after) - val_acc(before) >= 0.2
    diverged(no_clip) == true

Expressions combine numbers (and ``pi``, ``inf``, ``true`` = 1, ``false`` = 0), ``+ - * /``,
parentheses, the functions ``abs``, ``ln``, ``log10``, ``min``, ``max`` and ``fold`` (max(x, 1/x):
how many times apart a ratio is, either way), and *measures*:
a name from :data:`MEASURES` whose first argument is a run of the lesson, then its own
arguments (a node id, ``first``, ``last``, ``all``, a metric name, a threshold) and an
optional selector (``step=N``, ``epoch=N``, or ``at=first|last|min|max|mean``; default
``at=last``). docs/lessons.md is the reference.

Parsing happens once, when the lesson loads (:func:`parse_check`; every problem is a
:class:`LessonError` naming the column). Evaluation is incremental: a
:class:`Trace` per run collects the events, and :meth:`Check.evaluate` returns the current
value with a status: ``met`` or ``unmet`` as soon as no later event can change the answer,
``pending`` before that. Each measured value carries whether it is final and its *trend*
(``+1``: can only grow, e.g. ``at=max`` or the steps counted so far; ``-1``: can only
shrink), so ``train_acc(r, at=max) >= 1`` is met the moment accuracy reaches 100 %.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.errors import LessonError

INF = math.inf
OPERATORS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
             ">": lambda a, b: a > b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
SYMBOLS = {"<=": "≤", "<": "<", ">=": "≥", ">": ">", "==": "=", "!=": "≠"}
REDUCERS = ("first", "last", "min", "max", "mean", "best")
EPOCH_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc")
STEP_METRICS = ("loss", "lr")
STATS_FIELDS = {"saturated": "saturated", "dead": "dead", "act_std": "std", "act_mean": "mean"}


# ---- what a run produced -------------------------------------------------------------------
@dataclass
class Trace:
    """The events of one run, kept as series (what the measures read).

    ``activations`` lists the run's Activation nodes in graph order: ``first``/``last`` of
    the statistics measures mean the first/last of them.
    """

    activations: Sequence[str] = ()
    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    diverged: dict[str, Any] | None = None
    finish: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    param_nodes: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.finish is not None

    @property
    def last_step(self) -> int:
        if self.finish is not None:
            return int(self.finish.get("step") or 0)
        return int(self.steps[-1]["step"]) if self.steps else 0

    def feed(self, event: Any) -> None:
        """Add one event: a trainer event object or its metrics-stream JSON dict."""
        data = event.to_json() if hasattr(event, "to_json") else dict(event)
        kind = data.get("event")
        if kind == "start":
            self.param_nodes = list(data.get("param_nodes") or [])
        elif kind == "step":
            self.steps.append(data)
            if not self.param_nodes and data.get("grad_norms"):
                self.param_nodes = list(data["grad_norms"])
        elif kind == "epoch":
            self.epochs.append(data)
        elif kind == "activation_stats":
            self.stats.append(data)
        elif kind == "diverged":
            self.diverged = data
        elif kind == "finish":
            self.finish = data
        elif kind == "test":
            self.test = data


@dataclass(frozen=True)
class Measured:
    """A value so far: ``final`` once no later event can change it; ``trend`` +1 if it can
    only grow, −1 if it can only shrink, 0 otherwise. ``value`` None: nothing measured yet."""

    value: float | None
    final: bool
    trend: int = 0
    note: str = ""


# ---- selecting one number from a series -------------------------------------------------------
@dataclass(frozen=True)
class Selector:
    """``at=…`` (a reducer, over the last ``window`` samples if given), ``step=N`` or ``epoch=N``."""

    at: str = "last"
    step: int | None = None
    epoch: int | None = None
    window: int | None = None

    def describe(self) -> str:
        if self.step is not None:
            return f"step={self.step}"
        if self.epoch is not None:
            return f"epoch={self.epoch}"
        parts = [] if self.at == "last" else [f"at={self.at}"]
        return ", ".join(parts + ([f"last={self.window}"] if self.window else []))


def _select(series: list[tuple[int, int, float | None]], sel: Selector, trace: Trace) -> Measured:
    """One number of a series of (step, epoch, value) samples, with its finality and trend."""
    done = trace.finished
    if sel.step is not None:
        before = [v for s, _e, v in series if s <= sel.step]
        passed = any(s >= sel.step for s, _e, _v in series) or done
        if not before:
            return Measured(None, done, note=f"no sample by step {sel.step}")
        return Measured(before[-1], passed)
    if sel.epoch is not None:
        hit = [v for _s, e, v in series if e == sel.epoch]
        if hit:
            return Measured(hit[-1], True)
        return Measured(None, done, note=f"the run ended before epoch {sel.epoch}" if done else "")
    values = [v for _s, _e, v in series if v is not None]
    if sel.window is not None:
        values = values[-sel.window:]
    if not values:
        return Measured(None, done, note="no sample" if done else "")
    if sel.window is not None and not done:  # the window still moves: nothing is known for good
        return Measured(_reduce(values, sel.at), False)
    if sel.at == "first":
        return Measured(values[0], True)
    if sel.at == "best":
        return _at_best(series, trace)
    return Measured(_reduce(values, sel.at), done, {"min": -1, "max": +1}.get(sel.at, 0))


def _at_best(series: list[tuple[int, int, float | None]], trace: Trace) -> Measured:
    """The value at the epoch early stopping kept (restored), or the last one without it."""
    if not trace.finished:
        return Measured(None, False)
    best = trace.finish.get("best_epoch")  # type: ignore[union-attr]
    hit = [v for _s, e, v in series if e == best] if best is not None else []
    if hit:
        return Measured(hit[-1], True, note=f"best epoch {best}")
    values = [v for _s, _e, v in series if v is not None]
    return Measured(values[-1] if values else None, True)


def _reduce(values: list[float], at: str) -> float:
    if at == "mean":
        return sum(values) / len(values)
    return {"first": values[0], "last": values[-1], "min": min(values), "max": max(values)}[at]


def _step_series(trace: Trace, value: Callable[[dict[str, Any]], float | None]) -> list:
    return [(int(e["step"]), int(e.get("epoch", 0)), value(e)) for e in trace.steps]


def _epoch_series(trace: Trace, key: str) -> list:
    return [(int(e.get("step", 0)), int(e["epoch"]), e.get(key)) for e in trace.epochs]


def _stats_series(trace: Trace, value: Callable[[dict[str, Any]], float | None]) -> list:
    return [(int(e["step"]), -1, value(e.get("stats") or {})) for e in trace.stats]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b == 0:
        return INF if a > 0 else (math.nan if a == 0 else -INF)
    return a / b


# ---- measures --------------------------------------------------------------------------------
@dataclass(frozen=True)
class MeasureSpec:
    """A measure: its argument kinds after the run, the selectors it accepts, and how it reads
    a :class:`Trace`. Argument kinds: ``node`` (an id, ``first``, ``last`` or ``all``),
    ``metric`` (a metric name), ``number``."""

    name: str
    help: str
    args: tuple[str, ...]
    selectors: tuple[str, ...]
    read: Callable[[Trace, tuple[Any, ...], Selector], Measured]


def _param_node(trace: Trace, node: str) -> str | None:
    if node in ("first", "last"):
        if not trace.param_nodes:
            return None
        return trace.param_nodes[0 if node == "first" else -1]
    return node


def _grad(trace: Trace, args: tuple, sel: Selector) -> Measured:
    (node,) = args

    def value(e: dict[str, Any]) -> float | None:
        norms = e.get("grad_norms") or {}
        nid = _param_node(trace, node)
        return norms.get(nid) if nid is not None else None
    return _select(_step_series(trace, value), sel, trace)


def _grad_ratio(trace: Trace, args: tuple, sel: Selector) -> Measured:
    a, b = args

    def value(e: dict[str, Any]) -> float | None:
        norms = e.get("grad_norms") or {}
        na, nb = _param_node(trace, a), _param_node(trace, b)
        return _ratio(norms.get(na), norms.get(nb))
    return _select(_step_series(trace, value), sel, trace)


def _grad_spread(trace: Trace, args: tuple, sel: Selector) -> Measured:
    def value(e: dict[str, Any]) -> float | None:
        norms = [v for v in (e.get("grad_norms") or {}).values() if v is not None]
        return _ratio(max(norms), min(norms)) if norms else None
    return _select(_step_series(trace, value), sel, trace)


def _step_metric(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    return lambda trace, args, sel: _select(_step_series(trace, lambda e: e.get(key)), sel, trace)


def _epoch_metric(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    return lambda trace, args, sel: _select(_epoch_series(trace, key), sel, trace)


def _stats_nodes(trace: Trace, stats: Mapping[str, Any], node: str) -> list[str]:
    acts = [n for n in trace.activations if n in stats] or list(stats)
    if node == "all":
        return acts
    if node in ("first", "last"):
        return acts[:1] if node == "first" else acts[-1:]
    return [node] if node in stats else []


def _stats_field(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    field_name = STATS_FIELDS[key]

    def read(trace: Trace, args: tuple, sel: Selector) -> Measured:
        (node,) = args

        def value(stats: Mapping[str, Any]) -> float | None:
            vals = [(stats[n] or {}).get(field_name) for n in _stats_nodes(trace, stats, node)]
            vals = [v for v in vals if v is not None]
            return sum(vals) / len(vals) if vals else None
        return _select(_stats_series(trace, value), sel, trace)
    return read


def _std_spread(trace: Trace, args: tuple, sel: Selector) -> Measured:
    def value(stats: Mapping[str, Any]) -> float | None:
        stds = [(stats[n] or {}).get("std") for n in _stats_nodes(trace, stats, "all")]
        stds = [v for v in stds if v is not None]
        return _ratio(max(stds), min(stds)) if stds else None
    return _select(_stats_series(trace, value), sel, trace)


def _test_metric(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    """Held-out metrics of the test split: the ``test`` record the runner (or the studio)
    adds after a run, evaluated on the final model (the restored one after early stopping)."""
    def read(trace: Trace, args: tuple, sel: Selector) -> Measured:
        if trace.test is not None:
            return Measured(trace.test.get(key), True)
        return Measured(None, False)
    return read


def _gap(trace: Trace, args: tuple, sel: Selector) -> Measured:
    """val_loss of the kept epoch (the last, or the best after early stopping) − fit_loss: how
    much worse the final model does on held-out data than on the data it was fitted to."""
    val = _at_best(_epoch_series(trace, "val_loss"), trace)
    fit = _test_metric("fit_loss")(trace, args, sel)
    if val.value is None or fit.value is None:
        return Measured(None, val.final and fit.final)
    return Measured(val.value - fit.value, val.final and fit.final)


def _diverged(trace: Trace, args: tuple, sel: Selector) -> Measured:
    if trace.diverged is not None:
        node = trace.diverged.get("node")
        where = f" in layer '{node}'" if node else ""
        return Measured(1.0, True, note=f"diverged at step {trace.diverged.get('step')}{where}")
    return Measured(0.0, trace.finished, +1, note="trained to the end" if trace.finished else "")


def _diverged_step(trace: Trace, args: tuple, sel: Selector) -> Measured:
    if trace.diverged is not None:
        return Measured(float(trace.diverged.get("step", 0)), True)
    if trace.finished:
        return Measured(INF, True, note="never diverged")
    return Measured(float(trace.last_step), False, +1)


def _reached(metric: str, value: float | None, threshold: float) -> bool:
    if value is None or math.isnan(value):
        return False
    return value >= threshold if metric.endswith("_acc") else value <= threshold


def _first_reaching(trace: Trace, metric: str, threshold: float, what: str) -> Measured:
    """The step (``what="step"``) or epoch at which ``metric`` first reaches ``threshold``:
    ≤ for losses, ≥ for accuracies. Before then the count so far, growing; never: ∞."""
    if metric in STEP_METRICS:
        samples = [(int(e["step"]), int(e.get("epoch", 0)) + 1, e.get(metric)) for e in trace.steps]
    else:
        samples = [(int(e.get("step", 0)), int(e["epoch"]), e.get(metric)) for e in trace.epochs]
    for step, epoch, value in samples:
        if _reached(metric, value, threshold):
            return Measured(float(step if what == "step" else epoch), True)
    if trace.finished:
        return Measured(INF, True, note=f"never reached {threshold:g}")
    so_far = trace.last_step if what == "step" else len(trace.epochs)
    return Measured(float(so_far), False, +1)


def _steps_to(trace: Trace, args: tuple, sel: Selector) -> Measured:
    return _first_reaching(trace, args[0], args[1], "step")


def _epochs_to(trace: Trace, args: tuple, sel: Selector) -> Measured:
    return _first_reaching(trace, args[0], args[1], "epoch")


def _count(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    def read(trace: Trace, args: tuple, sel: Selector) -> Measured:
        if key == "steps":
            return Measured(float(trace.last_step), trace.finished, +1)
        return Measured(float(len(trace.epochs)), trace.finished, +1)
    return read


def _early_stopped(trace: Trace, args: tuple, sel: Selector) -> Measured:
    if not trace.finished:
        return Measured(0.0, False)
    stopped = trace.finish.get("reason") == "early_stopping"  # type: ignore[union-attr]
    note = f"best epoch {trace.finish.get('best_epoch')}" if stopped else ""  # type: ignore[union-attr]
    return Measured(1.0 if stopped else 0.0, True, note=note)


def _best_epoch(trace: Trace, args: tuple, sel: Selector) -> Measured:
    if not trace.finished:
        return Measured(None, False)
    best = trace.finish.get("best_epoch")  # type: ignore[union-attr]
    return Measured(None if best is None else float(best), True)


EPOCH_HELP = {
    "train_loss": "an epoch's training loss (mean over its steps, training mode, with any weight penalty)",
    "val_loss": "an epoch's validation loss (evaluation mode)",
    "train_acc": "an epoch's accuracy on the training split (evaluation mode)",
    "val_acc": "an epoch's validation accuracy",
}
AT = ("at", "last", "step")
ALL = ("at", "last", "step", "epoch")
MEASURES: dict[str, MeasureSpec] = {m.name: m for m in (
    MeasureSpec("loss", "minibatch training loss of a step", (), AT, _step_metric("loss")),
    MeasureSpec("lr", "learning rate of a step", (), AT, _step_metric("lr")),
    MeasureSpec("grad", "L2 norm of a node's parameter gradient (first/last: parameterised layers)",
                ("node",), AT, _grad),
    MeasureSpec("grad_ratio", "grad(a) / grad(b) at the same step", ("node", "node"), AT, _grad_ratio),
    MeasureSpec("grad_spread", "largest / smallest gradient norm over the layers at a step", (), AT,
                _grad_spread),
    *(MeasureSpec(k, EPOCH_HELP[k], (), ALL, _epoch_metric(k)) for k in EPOCH_METRICS),
    *(MeasureSpec(f"test_{k}", f"{k} of the final model on the test split (the run's test record)", (), (),
                  _test_metric(f"test_{k}")) for k in ("loss", "acc")),
    *(MeasureSpec(f"fit_{k}", f"{k} of the final model on its own training split, evaluation mode (no "
                  "dropout, no weight penalty)", (), (), _test_metric(f"fit_{k}")) for k in ("loss", "acc")),
    MeasureSpec("gap", "generalisation gap: val_loss of the kept epoch − fit_loss", (), (), _gap),
    MeasureSpec("saturated", "saturated fraction of an activation node (all: their mean)", ("node",), AT,
                _stats_field("saturated")),
    MeasureSpec("dead", "dead fraction of an activation node (all: their mean)", ("node",), AT,
                _stats_field("dead")),
    MeasureSpec("act_std", "standard deviation of a node's output (first/last: Activation nodes)", ("node",),
                AT, _stats_field("act_std")),
    MeasureSpec("act_mean", "mean of a node's output", ("node",), AT, _stats_field("act_mean")),
    MeasureSpec("std_spread", "largest / smallest output std over the Activation nodes", (), AT, _std_spread),
    MeasureSpec("diverged", "1 if the run diverged, else 0", (), (), _diverged),
    MeasureSpec("diverged_step", "the step at which the run diverged (∞: never)", (), (), _diverged_step),
    MeasureSpec("steps_to", "first step at which a metric reaches a value (≤ for losses, ≥ for accuracies)",
                ("metric", "number"), (), _steps_to),
    MeasureSpec("epochs_to", "first epoch at which a metric reaches a value", ("metric", "number"), (),
                _epochs_to),
    MeasureSpec("steps", "steps trained", (), (), _count("steps")),
    MeasureSpec("epochs", "epochs completed", (), (), _count("epochs")),
    MeasureSpec("early_stopped", "1 if early stopping ended the run, else 0", (), (), _early_stopped),
    MeasureSpec("best_epoch", "the epoch early stopping kept", (), (), _best_epoch),
)}
MATH = {"abs": (1, abs), "log10": (1, lambda v: math.log10(v) if v > 0 else -INF),
        "ln": (1, lambda v: math.log(v) if v > 0 else -INF), "min": (2, min), "max": (2, max),
        "fold": (1, lambda v: max(v, 1 / v) if v > 0 else INF)}
CONSTANTS = {"true": 1.0, "false": 0.0, "inf": INF, "never": INF, "pi": math.pi}


# ---- expression tree -------------------------------------------------------------------------
class Expr:
    """A node of a parsed expression."""

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        raise NotImplementedError

    def runs(self) -> set[str]:
        return set()


@dataclass
class Number(Expr):
    value: float

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        return Measured(self.value, True)

    def __str__(self) -> str:
        return f"{self.value:g}"


@dataclass
class Call(Expr):
    spec: MeasureSpec
    run: str
    args: tuple[Any, ...]
    selector: Selector

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        return self.spec.read(traces[self.run], self.args, self.selector)

    def runs(self) -> set[str]:
        return {self.run}

    def __str__(self) -> str:
        parts = [self.run, *(f"{a:g}" if isinstance(a, float) else str(a) for a in self.args)]
        if self.selector.describe():
            parts.append(self.selector.describe())
        return f"{self.spec.name}({', '.join(parts)})"


def _combine_trend(a: Measured, b: Measured, sign: int) -> int:
    """Trend of a + sign·b: known when both parts move the same way (final parts don't move)."""
    ta = 0 if a.final else a.trend
    tb = 0 if b.final else sign * b.trend
    if not a.final and ta == 0 or not b.final and tb == 0:
        return 0
    trends = {t for t in (ta, tb) if t}
    return trends.pop() if len(trends) == 1 else 0


@dataclass
class Binary(Expr):
    op: str
    left: Expr
    right: Expr

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        a, b = self.left.evaluate(traces), self.right.evaluate(traces)
        note = "; ".join(n for n in (a.note, b.note) if n)
        if a.value is None or b.value is None:
            return Measured(None, a.final and b.final, note=note)
        final = a.final and b.final
        if self.op == "+":
            return Measured(a.value + b.value, final, _combine_trend(a, b, +1), note)
        if self.op == "-":
            return Measured(a.value - b.value, final, _combine_trend(a, b, -1), note)
        if self.op == "*":
            return Measured(a.value * b.value, final, note=note)
        return Measured(_ratio(a.value, b.value), final, note=note)

    def runs(self) -> set[str]:
        return self.left.runs() | self.right.runs()

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass
class Negate(Expr):
    inner: Expr

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        m = self.inner.evaluate(traces)
        return Measured(None if m.value is None else -m.value, m.final, -m.trend, m.note)

    def runs(self) -> set[str]:
        return self.inner.runs()

    def __str__(self) -> str:
        return f"-{self.inner}"


@dataclass
class MathCall(Expr):
    name: str
    args: list[Expr]

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        ms = [a.evaluate(traces) for a in self.args]
        note = "; ".join(m.note for m in ms if m.note)
        final = all(m.final for m in ms)
        if any(m.value is None for m in ms):
            return Measured(None, final, note=note)
        trend = ms[0].trend if self.name in ("log10", "ln") else 0
        return Measured(float(MATH[self.name][1](*(m.value for m in ms))), final, trend, note)

    def runs(self) -> set[str]:
        return set().union(*(a.runs() for a in self.args))

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.args))})"


# ---- the parser ------------------------------------------------------------------------------
TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
                   r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|==|!=|[-+*/()<>,=]))")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = len(text) - len(text[pos:].lstrip())
            raise LessonError(f"unexpected character {text[bad]!r} at column {bad + 1}")
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    out.append(("end", "", len(text) + 1))
    return out


class _Parser:
    """Recursive descent over ``check := expr cmp expr`` (module docstring)."""

    def __init__(self, text: str, runs: Sequence[str]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.runs = list(runs)

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            found = "the end" if tok[0] == "end" else repr(tok[1])
            raise LessonError(f"expected {value!r} at column {tok[2]}, found {found}")
        self.i += 1
        return tok

    def check(self) -> tuple[Expr, str, Expr]:
        left = self.expr()
        kind, op, col = self.take()
        if op not in OPERATORS:
            raise LessonError(f"expected a comparison (<=, <, >=, >, ==, !=) at column {col}")
        right = self.expr()
        if self.peek()[0] != "end":
            raise LessonError(f"unexpected {self.peek()[1]!r} at column {self.peek()[2]}")
        return left, op, right

    def expr(self) -> Expr:
        node = self.term()
        while self.peek()[1] in ("+", "-"):
            node = Binary(self.take()[1], node, self.term())
        return node

    def term(self) -> Expr:
        node = self.unary()
        while self.peek()[1] in ("*", "/"):
            node = Binary(self.take()[1], node, self.unary())
        return node

    def unary(self) -> Expr:
        if self.peek()[1] == "-":
            self.take()
            return Negate(self.unary())
        return self.atom()

    def atom(self) -> Expr:
        kind, value, col = self.take()
        if kind == "num":
            return Number(float(value))
        if value == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if kind == "name" and value in CONSTANTS:
            return Number(CONSTANTS[value])
        if kind == "name" and value in MATH:
            return self.math_call(value)
        if kind == "name" and value in MEASURES:
            return self.measure(MEASURES[value], col)
        if kind == "name":
            raise LessonError(f"unknown measure {value!r} at column {col}; measures are "
                              f"{', '.join(MEASURES)}; functions {', '.join(MATH)}")
        raise LessonError(f"expected a number, a measure or '(' at column {col}")

    def math_call(self, name: str) -> Expr:
        self.take("(")
        args = [self.expr()]
        while self.peek()[1] == ",":
            self.take()
            args.append(self.expr())
        self.take(")")
        if len(args) != MATH[name][0]:
            raise LessonError(f"{name}() takes {MATH[name][0]} argument(s), got {len(args)}")
        return MathCall(name, args)

    def measure(self, spec: MeasureSpec, col: int) -> Expr:
        self.take("(")
        raw: list[tuple[str, str, int]] = []
        keywords: dict[str, str] = {}
        while True:
            tok = self.take()
            if tok[1] == "-" and self.peek()[0] == "num":
                tok = ("num", "-" + self.take()[1], tok[2])
            if tok[0] not in ("name", "num"):
                raise LessonError(f"{spec.name}(): expected an argument at column {tok[2]}")
            if self.peek()[1] == "=":
                self.take()
                val = self.take()
                if val[0] not in ("name", "num"):
                    raise LessonError(f"{spec.name}(): expected a value after '{tok[1]}=' at column {val[2]}")
                keywords[tok[1]] = val[1]
            elif keywords:
                raise LessonError(f"{spec.name}(): positional argument after a keyword at column {tok[2]}")
            else:
                raw.append(tok)
            if self.peek()[1] != ",":
                break
            self.take()
        self.take(")")
        return self.bind(spec, raw, keywords, col)

    def bind(self, spec: MeasureSpec, raw: list, keywords: dict[str, str], col: int) -> Call:
        usage = f"{spec.name}(run{''.join(', ' + a for a in spec.args)})"
        if len(raw) != 1 + len(spec.args):
            raise LessonError(f"{spec.name}() at column {col} takes {usage}, got {len(raw)} argument(s)")
        run = raw[0][1]
        if run not in self.runs:
            raise LessonError(f"{spec.name}(): unknown run {run!r}; the lesson's runs are {', '.join(self.runs)}")
        args: list[Any] = []
        for kind, (tk, tv, tc) in zip(spec.args, raw[1:], strict=True):
            if kind == "number":
                if tk != "num":
                    raise LessonError(f"{spec.name}(): expected a number at column {tc}, got {tv!r}")
                args.append(float(tv))
            elif kind == "metric":
                if tv not in STEP_METRICS + EPOCH_METRICS:
                    raise LessonError(f"{spec.name}(): unknown metric {tv!r} at column {tc}; use one of "
                                      f"{', '.join(STEP_METRICS + EPOCH_METRICS)}")
                args.append(tv)
            else:
                if tk != "name":
                    raise LessonError(f"{spec.name}(): expected a node id, first, last or all at column {tc}")
                if tv == "all" and spec.name in ("grad", "grad_ratio"):
                    raise LessonError(f"{spec.name}(): 'all' is not a single layer; name a node, first or last")
                args.append(tv)
        return Call(spec, run, tuple(args), self.selector(spec, keywords))

    def selector(self, spec: MeasureSpec, keywords: dict[str, str]) -> Selector:
        unknown = sorted(set(keywords) - set(spec.selectors))
        if unknown:
            allowed = ", ".join(f"{s}=" for s in spec.selectors) or "no selector"
            raise LessonError(f"{spec.name}(): unknown keyword {unknown[0]}=; it takes {allowed}")
        window = None
        if "last" in keywords:
            text = keywords.pop("last")
            if not text.isdigit() or int(text) < 1:
                raise LessonError(f"{spec.name}(): last= needs a positive number of samples, got {text!r}")
            if set(keywords) - {"at"}:
                raise LessonError(f"{spec.name}(): last= goes with at=, not with step= or epoch=")
            window = int(text)
        if len(keywords) > 1:
            raise LessonError(f"{spec.name}(): give one of {', '.join(f'{k}=' for k in keywords)}, not several")
        if "at" in keywords or window:
            at = keywords.get("at", "last")
            if at not in REDUCERS:
                raise LessonError(f"{spec.name}(): at={at} is not one of {', '.join(REDUCERS)}")
            if at == "best" and ("epoch" not in spec.selectors or window):
                raise LessonError(f"{spec.name}(): at=best (the epoch early stopping kept) is for epoch "
                                  "metrics, without last=")
            return Selector(at=at, window=window)
        for key in ("step", "epoch"):
            if key in keywords:
                text = keywords[key]
                if not text.isdigit() or int(text) < 1:
                    raise LessonError(f"{spec.name}(): {key}= needs a positive integer, got {text!r}")
                return Selector(**{key: int(text)})
        return Selector()


# ---- a parsed expectation ------------------------------------------------------------------
@dataclass
class Outcome:
    """What :meth:`Check.evaluate` reports: ``status`` is ``met``, ``unmet`` or ``pending``;
    ``value`` the left side so far, ``target`` the right side; ``note`` e.g. where a run
    diverged or that a level was never reached."""

    status: str
    value: float | None
    target: float | None
    note: str = ""


@dataclass
class Check:
    """``left OP right``, parsed from the lesson's text form."""

    text: str
    left: Expr
    op: str
    right: Expr

    def runs(self) -> set[str]:
        return self.left.runs() | self.right.runs()

    def evaluate(self, traces: Mapping[str, Trace]) -> Outcome:
        a, b = self.left.evaluate(traces), self.right.evaluate(traces)
        note = "; ".join(n for n in (a.note, b.note) if n)
        if a.value is None or b.value is None:
            status = "unmet" if a.final and b.final else "pending"
            return Outcome(status, a.value, b.value, note or ("nothing measured" if status == "unmet" else ""))
        holds = bool(OPERATORS[self.op](a.value, b.value))
        if a.final and b.final:
            return Outcome("met" if holds else "unmet", a.value, b.value, note)
        gap = Measured(0.0, False, _combine_trend(a, b, -1))  # trend of left − right
        decided = self.decided_early(holds, gap.trend)
        return Outcome(decided or "pending", a.value, b.value, note)

    def decided_early(self, holds: bool, trend: int) -> str | None:
        """With left − right only growing (+1) or only shrinking (−1), some answers are final."""
        if trend == 0 or self.op in ("==", "!="):
            return None
        grows_good = self.op in (">=", ">")
        if holds and (trend > 0) == grows_good:
            return "met"
        if not holds and (trend > 0) != grows_good:
            return "unmet"
        return None

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.op]


def parse_check(text: str, runs: Sequence[str]) -> Check:
    """Parse ``expr OP expr``; LessonError says what is wrong and at which column."""
    if not isinstance(text, str) or not text.strip():
        raise LessonError("'check' must be a non-empty text such as \"train_acc(after) >= 0.9\"")
    left, op, right = _Parser(text, runs).check()
    return Check(text.strip(), left, op, right)


def measures_markdown() -> str:
    """The table of measures for docs/lessons.md."""
    rows = ["| measure | arguments | selectors | meaning |", "|---|---|---|---|"]
    for m in MEASURES.values():
        args = ", ".join(("run",) + m.args)
        sel = ", ".join(f"`{s}=`" for s in m.selectors) or "—"
        rows.append(f"| `{m.name}` | {args} | {sel} | {m.help} |")
    return "\n".join(rows)
