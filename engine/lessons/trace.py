"""What a lesson's run produced, as series the measures read, and how one number is picked.

A :class:`Trace` per run collects the trainer's events (and the records the runner adds:
the graph facts before a run, the test and pruning records after it); a :class:`Selector`
(``at=…``, ``last=N``, ``step=N``, ``epoch=N``) picks one number from a series as a
:class:`Measured` value that knows whether it is final and which way it can still move.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

INF = math.inf
EPOCH_METRICS = ("train_loss", "val_loss", "train_acc", "val_acc")
STEP_METRICS = ("loss", "lr")


# ---- what a run produced -------------------------------------------------------------------
@dataclass
class Trace:
    """The events of one run, kept as series (what the measures read).

    ``activations`` lists the run's Activation nodes in graph order: ``first``/``last`` of
    the statistics measures mean the first/last of them. ``time_grads`` holds the recurrent
    layers' gradient-through-time events; ``facts`` the run's graph facts (parameter counts,
    output shapes, shape warnings: :func:`graph_record`); ``pruned`` the records of the
    pruned final model by fraction (``{"event": "pruned", "fraction": f, …}``).
    """

    activations: Sequence[str] = ()
    steps: list[dict[str, Any]] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    stats: list[dict[str, Any]] = field(default_factory=list)
    diverged: dict[str, Any] | None = None
    finish: dict[str, Any] | None = None
    test: dict[str, Any] | None = None
    param_nodes: list[str] = field(default_factory=list)
    time_grads: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] | None = None
    pruned: dict[float, dict[str, Any]] = field(default_factory=dict)

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
        elif kind == "time_grads":
            self.time_grads.append(data)
        elif kind == "graph":
            self.facts = data
        elif kind == "pruned":
            self.pruned[round(float(data["fraction"]), 6)] = data


def graph_record(graph: Any) -> dict[str, Any]:
    """The ``graph`` record a run's trace starts with: facts of the graph itself, known before
    training (``params`` and ``shapes`` per node in graph order, ``warnings`` per node: the
    shape report's findings such as a stride that drops rows). The Evaluator feeds it for
    every run's graph; after an edit, ``Evaluator.reset(run, graph)`` feeds the edited one."""
    rows, total = graph.summary()
    warnings: dict[str, list[str]] = {}
    for w in graph.infer_shapes().warnings:
        warnings.setdefault(w.node, []).append(w.message)
    return {"event": "graph", "order": [r.node for r in rows], "total_params": total,
            "params": {r.node: r.params for r in rows},
            "shapes": {r.node: list(r.output_shape) if r.output_shape is not None else None for r in rows},
            "warnings": warnings}


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


def select(series: list[tuple[int, int, float | None]], sel: Selector, trace: Trace) -> Measured:
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
        return at_best(series, trace)
    return Measured(_reduce(values, sel.at), done, {"min": -1, "max": +1}.get(sel.at, 0))


def at_best(series: list[tuple[int, int, float | None]], trace: Trace) -> Measured:
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


def step_series(trace: Trace, value: Callable[[dict[str, Any]], float | None]) -> list:
    return [(int(e["step"]), int(e.get("epoch", 0)), value(e)) for e in trace.steps]


def epoch_series(trace: Trace, key: str) -> list:
    return [(int(e.get("step", 0)), int(e["epoch"]), e.get(key)) for e in trace.epochs]


def stats_series(trace: Trace, value: Callable[[dict[str, Any]], float | None]) -> list:
    return [(int(e["step"]), -1, value(e.get("stats") or {})) for e in trace.stats]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b == 0:
        return INF if a > 0 else (math.nan if a == 0 else -INF)
    return a / b


