"""The measures of the expectation language: each reads one number from a run's :class:`Trace`.

A measure is a :class:`MeasureSpec` in :data:`MEASURES` (docs/lessons.md lists them, generated
from here): its argument kinds after the run, the selectors it accepts and a function
``(trace, args, selector) -> Measured``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.lessons.trace import (
    EPOCH_METRICS,
    INF,
    STEP_METRICS,
    Measured,
    Selector,
    Trace,
    at_best,
    epoch_series,
    ratio,
    select,
    stats_series,
    step_series,
)

STATS_FIELDS = {"saturated": "saturated", "dead": "dead", "act_std": "std", "act_mean": "mean"}


@dataclass(frozen=True)
class MeasureSpec:
    """A measure: its argument kinds after the run, the selectors it accepts, and how it reads
    a :class:`Trace`. Argument kinds: ``node`` (an id, ``first``, ``last`` or ``all``),
    ``metric`` (a metric name), ``number``. ``takes_all`` False: a ``node`` must be one
    layer (``all`` is refused when the lesson loads)."""

    name: str
    help: str
    args: tuple[str, ...]
    selectors: tuple[str, ...]
    read: Callable[[Trace, tuple[Any, ...], Selector], Measured]
    takes_all: bool = True


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
    return select(step_series(trace, value), sel, trace)


def _grad_ratio(trace: Trace, args: tuple, sel: Selector) -> Measured:
    a, b = args

    def value(e: dict[str, Any]) -> float | None:
        norms = e.get("grad_norms") or {}
        na, nb = _param_node(trace, a), _param_node(trace, b)
        return ratio(norms.get(na), norms.get(nb))
    return select(step_series(trace, value), sel, trace)


def _grad_spread(trace: Trace, args: tuple, sel: Selector) -> Measured:
    def value(e: dict[str, Any]) -> float | None:
        norms = [v for v in (e.get("grad_norms") or {}).values() if v is not None]
        return ratio(max(norms), min(norms)) if norms else None
    return select(step_series(trace, value), sel, trace)


def _step_metric(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    return lambda trace, args, sel: select(step_series(trace, lambda e: e.get(key)), sel, trace)


def _epoch_metric(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    return lambda trace, args, sel: select(epoch_series(trace, key), sel, trace)


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
        return select(stats_series(trace, value), sel, trace)
    return read


def _std_spread(trace: Trace, args: tuple, sel: Selector) -> Measured:
    def value(stats: Mapping[str, Any]) -> float | None:
        stds = [(stats[n] or {}).get("std") for n in _stats_nodes(trace, stats, "all")]
        stds = [v for v in stds if v is not None]
        return ratio(max(stds), min(stds)) if stds else None
    return select(stats_series(trace, value), sel, trace)


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
    val = at_best(epoch_series(trace, "val_loss"), trace)
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


# ---- facts of the graph (known before training) ----------------------------------------------
def _fact_node(facts: Mapping[str, Any], node: str) -> str:
    """``first``/``last``: the first/last node with parameters, in graph order."""
    if node in ("first", "last"):
        with_params = [n for n in facts["order"] if facts["params"].get(n)] or [""]
        return with_params[0 if node == "first" else -1]
    return node


def _params(trace: Trace, args: tuple, sel: Selector) -> Measured:
    (node,) = args
    facts = trace.facts
    if facts is None:
        return Measured(None, False)
    if node == "all":
        return Measured(float(facts["total_params"]), True)
    nid = _fact_node(facts, node)
    if nid not in facts["params"]:
        return Measured(None, True, note=f"the graph has no node '{node}'")
    return Measured(float(facts["params"][nid]), True)


def _warnings(trace: Trace, args: tuple, sel: Selector) -> Measured:
    """How many shape warnings a node has (all: the graph); the note quotes the first one."""
    (node,) = args
    facts = trace.facts
    if facts is None:
        return Measured(None, False)
    found = facts["warnings"]
    if node != "all" and node not in facts["params"]:
        return Measured(None, True, note=f"the graph has no node '{node}'")
    messages = [m for n, ms in found.items() if node in ("all", n) for m in ms]
    return Measured(float(len(messages)), True, note=messages[0] if messages else "")


def _out_dim(trace: Trace, args: tuple, sel: Selector) -> Measured:
    node, axis = args
    facts = trace.facts
    if facts is None:
        return Measured(None, False)
    shape = facts["shapes"].get(_fact_node(facts, node))
    if shape is None:
        return Measured(None, True, note=f"no output shape for node '{node}'")
    if not -len(shape) <= int(axis) < len(shape) or axis != int(axis):
        return Measured(None, True, note=f"node '{node}' outputs {tuple(shape)}, which has no axis {axis:g}")
    return Measured(float(shape[int(axis)]), True, note=f"output {tuple(shape)}")


# ---- gradients through time (recurrent layers' time_grads events) ------------------------------
def _time_series(trace: Trace, node: str, value: Callable[[dict[str, Any]], float | None]) -> list:
    nodes = list(dict.fromkeys(e["node"] for e in trace.time_grads))
    if node in ("first", "last"):
        node = (nodes[0] if node == "first" else nodes[-1]) if nodes else ""
    return [(int(e["step"]), -1, value(e)) for e in trace.time_grads if e["node"] == node]


def _time_field(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    def read(trace: Trace, args: tuple, sel: Selector) -> Measured:
        (node,) = args
        if key == "ratio":
            def value(e: dict[str, Any]) -> float | None:
                norms = e.get("norms") or []
                return ratio(norms[0], norms[-1]) if norms else None
        else:
            def value(e: dict[str, Any]) -> float | None:
                return e.get(key)
        return select(_time_series(trace, node, value), sel, trace)
    return read


# ---- the pruned final model ----------------------------------------------------------------------
def _pruned(key: str) -> Callable[[Trace, tuple, Selector], Measured]:
    """The final model with a fraction of its smallest weights zeroed (engine.pruning), on the
    test split (the validation split when the run has no test split)."""
    def read(trace: Trace, args: tuple, sel: Selector) -> Measured:
        (fraction,) = args
        record = trace.pruned.get(round(fraction, 6))
        if record is None:
            done = trace.test is not None
            return Measured(None, done, note=f"no pruning record for {fraction:g}" if done else "")
        value = record.get(f"test_{key}", record.get(f"val_{key}"))
        return Measured(value, True, note=f"{record.get('zeroed')} of {record.get('total')} weights zeroed")
    return read


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
                ("node",), AT, _grad, takes_all=False),
    MeasureSpec("grad_ratio", "grad(a) / grad(b) at the same step", ("node", "node"), AT, _grad_ratio,
                takes_all=False),
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
    MeasureSpec("time_grad_ratio", "‖∂L/∂h₁‖ / ‖∂L/∂h_T‖ of a recurrent node (time_grads events; "
                "first/last: recurrent nodes)", ("node",), AT, _time_field("ratio"), takes_all=False),
    MeasureSpec("sigma_max", "largest singular value of a recurrent node's Wh, of the weights that step's "
                "backward used (time_grads sigma_max_before; step=1: the initial Wh)", ("node",), AT,
                _time_field("sigma_max_before"), takes_all=False),
    MeasureSpec("slope_bound", "γ, the bound on |φ′| of a SimpleRNN's activation (vanishing is certain "
                "while σ_max(Wh) < 1/γ; none for LSTM, GRU)", ("node",), AT, _time_field("gamma"),
                takes_all=False),
    MeasureSpec("params", "parameter count of a node (all: the whole graph; first/last: nodes with "
                "parameters)", ("node",), (), _params),
    MeasureSpec("warnings", "number of shape warnings of a node, e.g. a stride that drops rows (all: the "
                "graph); the note quotes the first", ("node",), (), _warnings),
    MeasureSpec("out_dim", "size of axis N of a node's output shape (0: channels, 1: height, 2: width; "
                "−1: the last)", ("node", "number"), (), _out_dim, takes_all=False),
    MeasureSpec("pruned_acc", "test accuracy of the final model with the given fraction of its "
                "smallest weights zeroed (engine.pruning)", ("number",), (), _pruned("acc")),
    MeasureSpec("pruned_loss", "test loss of the final model with the given fraction of its smallest "
                "weights zeroed", ("number",), (), _pruned("loss")),
)}
