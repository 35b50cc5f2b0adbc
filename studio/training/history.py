"""What one training run recorded: step, epoch and activation metrics as NumPy arrays.

A :class:`RunRecord` is fed the events the GUI drains from the trainer's buffer, in batches
(:meth:`RunRecord.ingest`), and keeps them in preallocated arrays that grow by doubling, so
appending thousands of steps per frame is a handful of NumPy copies rather than per-step
Python work. Plots read decimated views (:meth:`RunRecord.step_view`); exports write the
metrics stream of ARCHITECTURE.md (JSON lines) or a CSV table. No Qt here: the record is
tested headless and outlives the window that drew it (the session's run history).

Memory stays bounded on very long runs: past ``max_rows`` recorded steps, every other row is
dropped and from then on only every ``stride``-th step is kept (epochs are always kept).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.events import (
    DivergedEvent,
    EpochEvent,
    Event,
    FinishEvent,
    StartEvent,
    StatsEvent,
    StepEvent,
    TimeGradsEvent,
)
from engine.graph import atomic_write_text


class Growing:
    """A 1-D or 2-D array that grows along axis 0 with amortised doubling."""

    def __init__(self, width: int | None = None, dtype: Any = np.float64, capacity: int = 1024) -> None:
        shape = (capacity,) if width is None else (capacity, width)
        self._buf = np.empty(shape, dtype)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def data(self) -> np.ndarray:
        """The filled part (a view: copy it before keeping it across appends)."""
        return self._buf[: self._n]

    def extend(self, values: np.ndarray) -> None:
        k = len(values)
        if not k:
            return
        need = self._n + k
        if need > len(self._buf):
            cap = max(need, 2 * len(self._buf))
            grown = np.empty((cap,) + self._buf.shape[1:], self._buf.dtype)
            grown[: self._n] = self._buf[: self._n]
            self._buf = grown
        self._buf[self._n: need] = values
        self._n = need

    def keep(self, index: np.ndarray) -> None:
        """Keep only the rows at ``index`` (thinning)."""
        kept = self._buf[: self._n][index]
        self._n = len(kept)
        self._buf[: self._n] = kept


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def stride_index(n: int, max_points: int) -> np.ndarray:
    """Indices of an even stride through ``n`` rows, at most ~``max_points``, last row included."""
    if n <= max_points:
        return np.arange(n)
    stride = math.ceil(n / max_points)
    idx = np.arange(0, n, stride)
    if idx[-1] != n - 1:
        idx = np.append(idx, n - 1)
    return idx


@dataclass
class RunRecord:
    """The recorded metrics of one run (see the module docstring)."""

    number: int
    name: str
    nodes: list[str] = field(default_factory=list)
    training: dict[str, Any] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    max_rows: int = 1_000_000

    def __post_init__(self) -> None:
        self.started = time.time()
        self.start: StartEvent | None = None
        self.finish: FinishEvent | None = None
        self.diverged: DivergedEvent | None = None
        self.stride = 1
        self.dropped = 0
        self.version = 0
        self._reset_arrays()

    def _reset_arrays(self) -> None:
        n = len(self.nodes)
        self.steps = Growing(dtype=np.int64)
        self.step_epoch = Growing(dtype=np.int32)
        self.loss = Growing()
        self.lr = Growing()
        self.rate = Growing()
        self.grads = Growing(width=n)
        self.epochs = Growing(width=6)  # epoch, step, train_loss, val_loss, train_acc, val_acc
        self.stats_nodes: list[str] = []
        self.stats_steps = Growing(dtype=np.int64)
        self.stats = Growing(width=0)  # (k, nodes, 4): mean, std, saturated, dead
        self.latest_stats: StatsEvent | None = None
        from studio.training.time_history import TimeGradsHistory  # (it builds on Growing, below)

        self.time_grads = TimeGradsHistory()  # recurrent layers' gradient through time

    # -- labels ------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"#{self.number} {self.name}"

    @property
    def state_text(self) -> str:
        if self.finish is None:
            return "running"
        return self.finish.reason.replace("_", " ")

    # -- ingestion ---------------------------------------------------------------------
    def set_nodes(self, nodes: Sequence[str]) -> None:
        """The layers with parameters, in depth order (before any step is recorded)."""
        nodes = list(nodes)
        if nodes != self.nodes or self.grads.data.shape[1] != len(nodes):
            if len(self.steps):
                raise ValueError("the layers of a run cannot change after its first step")
            self.nodes = nodes
            self.grads = Growing(width=len(nodes))

    def ingest(self, events: Sequence[Event]) -> bool:
        """Record a drained batch of events in order; True if anything was recorded."""
        if not events:
            return False
        run: list[StepEvent] = []
        for event in events:
            if type(event) is StepEvent:
                run.append(event)
                continue
            if run:
                self._add_steps(run)
                run = []
            self._add_other(event)
        if run:
            self._add_steps(run)
        self.version += 1
        return True

    def _add_steps(self, events: list[StepEvent]) -> None:
        if self.stride > 1:
            events = [e for e in events if e.step % self.stride == 0]
            if not events:
                return
        k = len(events)
        self.steps.extend(np.fromiter((e.step for e in events), np.int64, k))
        self.step_epoch.extend(np.fromiter((e.epoch for e in events), np.int32, k))
        self.loss.extend(np.fromiter((e.loss for e in events), np.float64, k))
        self.lr.extend(np.fromiter((e.lr for e in events), np.float64, k))
        self.rate.extend(np.fromiter((e.samples_per_s for e in events), np.float64, k))
        if self.nodes:
            rows = np.array([list(e.grad_norms.values()) for e in events], np.float64)
            self.grads.extend(rows.reshape(k, len(self.nodes)))
        else:
            self.grads.extend(np.zeros((k, 0)))
        while len(self.steps) > self.max_rows:
            self._thin()

    def _thin(self) -> None:
        """Halve the step history and record only every (doubled) stride-th step from now on
        (the latest step is kept, so plots still end where training is)."""
        self.stride *= 2
        keep_mask = self.steps.data % self.stride == 0
        keep_mask[-1] = True
        keep = np.flatnonzero(keep_mask)
        for series in (self.steps, self.step_epoch, self.loss, self.lr, self.rate, self.grads):
            series.keep(keep)

    def _add_other(self, event: Event) -> None:
        if isinstance(event, StartEvent):
            self.start = event
            self.set_nodes(event.param_nodes)
        elif isinstance(event, EpochEvent):
            row = [event.epoch, event.step, _nan(event.train_loss), _nan(event.val_loss),
                   _nan(event.train_acc), _nan(event.val_acc)]
            self.epochs.extend(np.array([row]))
        elif isinstance(event, StatsEvent):
            self._add_stats(event)
        elif isinstance(event, TimeGradsEvent):
            self.time_grads.add(event)
        elif isinstance(event, DivergedEvent):
            self.diverged = event
        elif isinstance(event, FinishEvent):
            self.finish = event

    def _add_stats(self, event: StatsEvent) -> None:
        if not self.stats_nodes:
            self.stats_nodes = list(event.stats)
            self.stats = Growing(width=len(self.stats_nodes) * 4)
        row = []
        for nid in self.stats_nodes:
            s = event.stats.get(nid)
            row += [math.nan] * 4 if s is None else [s.mean, s.std, _nan(s.saturated), _nan(s.dead)]
        self.latest_stats = event
        if len(self.stats_steps) >= 20_000:
            keep = np.arange(0, len(self.stats_steps), 2)
            self.stats_steps.keep(keep)
            self.stats.keep(keep)
        self.stats_steps.extend(np.array([event.step], np.int64))
        self.stats.extend(np.array([row], np.float64))

    # -- views for plots ---------------------------------------------------------------------
    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def last_step(self) -> int:
        return int(self.steps.data[-1]) if len(self.steps) else 0

    def step_view(self, max_points: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Decimated (steps, losses, grad norms) with at most ~``max_points`` rows (copies)."""
        idx = stride_index(len(self.steps), max_points)
        return (self.steps.data[idx].astype(np.float64), self.loss.data[idx].copy(),
                self.grads.data[idx].copy())

    def current_norms(self) -> np.ndarray:
        """The latest per-node gradient norms in depth order (empty before the first step)."""
        if not len(self.grads):
            return np.zeros(len(self.nodes))
        return self.grads.data[-1].copy()

    def recent_norms(self, k: int = 20) -> np.ndarray:
        """Per-node geometric mean of the last ``k`` recorded gradient norms (a steadier
        picture than one minibatch); zeros stay zero, non-finite values are skipped."""
        if not len(self.grads):
            return np.zeros(len(self.nodes))
        tail = self.grads.data[-k:]
        ok = np.isfinite(tail) & (tail > 0)
        logs = np.log(np.where(ok, tail, 1.0))
        count = ok.sum(axis=0)
        mean = np.exp(np.where(ok, logs, 0.0).sum(axis=0) / np.maximum(count, 1))
        return np.where(count > 0, mean, 0.0)

    def epoch_table(self) -> dict[str, np.ndarray]:
        e = self.epochs.data
        names = ("epoch", "step", "train_loss", "val_loss", "train_acc", "val_acc")
        return {name: e[:, i].copy() for i, name in enumerate(names)}

    def stats_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values of shape (k, nodes, 4): mean, std, saturated, dead)."""
        k = len(self.stats_steps)
        return self.stats_steps.data.copy(), self.stats.data.reshape(k, len(self.stats_nodes), 4).copy()

    def summary(self) -> dict[str, Any]:
        """Final figures for the run list: steps, last loss, last epoch metrics, reason."""
        out: dict[str, Any] = {"steps": self.last_step, "reason": self.state_text}
        if len(self.loss):
            out["loss"] = float(self.loss.data[-1])
        if len(self.epochs):
            last = self.epochs.data[-1]
            for i, name in ((2, "train_loss"), (3, "val_loss"), (4, "train_acc"), (5, "val_acc")):
                if math.isfinite(last[i]):
                    out[name] = float(last[i])
        return out

    # -- export ------------------------------------------------------------------------------
    def iter_json(self) -> Iterable[dict[str, Any]]:
        """The metrics stream (ARCHITECTURE.md): steps, activation stats, time_grads and epochs
        in step order, then divergence and finish."""
        steps = self.steps.data
        ep = self.epochs.data
        st_steps = self.stats_steps.data
        stats = self.stats.data.reshape(len(st_steps), len(self.stats_nodes), 4) if len(st_steps) else None
        ei = si = 0
        time_grads = list(self.time_grads.events())
        ti = 0
        for i in range(len(steps)):
            s = int(steps[i])
            while si < len(st_steps) and st_steps[si] <= s:
                yield self._stats_json(int(st_steps[si]), stats[si])  # type: ignore[index]
                si += 1
            while ti < len(time_grads) and time_grads[ti][0] <= s:
                yield time_grads[ti][1]
                ti += 1
            yield {"event": "step", "epoch": int(self.step_epoch.data[i]), "step": s,
                   "loss": _json_float(self.loss.data[i]), "lr": _json_float(self.lr.data[i]),
                   "grad_norms": {n: _json_float(v)
                                  for n, v in zip(self.nodes, self.grads.data[i].tolist(), strict=True)},
                   "samples_per_s": _json_float(self.rate.data[i])}
            while ei < len(ep) and ep[ei, 1] <= s:
                yield self._epoch_json(ep[ei])
                ei += 1
        while si < len(st_steps):
            yield self._stats_json(int(st_steps[si]), stats[si])  # type: ignore[index]
            si += 1
        yield from (record for _, record in time_grads[ti:])
        while ei < len(ep):
            yield self._epoch_json(ep[ei])
            ei += 1
        if self.diverged is not None:
            yield self.diverged.to_json()
        if self.finish is not None:
            yield self.finish.to_json()

    def _stats_json(self, step: int, values: np.ndarray) -> dict[str, Any]:
        out = {}
        for nid, (mean, std, sat, dead) in zip(self.stats_nodes, values.tolist(), strict=True):
            out[nid] = {"mean": _json_float(mean), "std": _json_float(std),
                        "saturated": _json_float(sat), "dead": _json_float(dead)}
        return {"event": "activation_stats", "step": step, "stats": out}

    @staticmethod
    def _epoch_json(row: np.ndarray) -> dict[str, Any]:
        return {"event": "epoch", "epoch": int(row[0]), "step": int(row[1]),
                "train_loss": _json_float(row[2]), "val_loss": _json_float(row[3]),
                "train_acc": _json_float(row[4]), "val_acc": _json_float(row[5])}

    def export_jsonl(self, path: str | Path) -> None:
        """Write the metrics stream, one JSON object per line (atomic)."""
        atomic_write_text(Path(path), "".join(json.dumps(obj) + "\n" for obj in self.iter_json()))

    def export_csv(self, path: str | Path) -> None:
        """One row per recorded step; epoch metrics on the row of the step that ended the epoch."""
        import io

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["step", "epoch", "loss", "lr", "samples_per_s",
                         *[f"grad_norm.{n}" for n in self.nodes],
                         "train_loss", "val_loss", "train_acc", "val_acc"])
        by_step = {int(r[1]): r for r in self.epochs.data}

        def cell(v: float) -> str:
            return "" if not math.isfinite(v) else repr(float(v))

        for i, s in enumerate(self.steps.data.tolist()):
            ep = by_step.get(s)
            tail = ["", "", "", ""] if ep is None else [cell(v) for v in ep[2:6]]
            writer.writerow([s, int(self.step_epoch.data[i]), cell(self.loss.data[i]), cell(self.lr.data[i]),
                             cell(self.rate.data[i]), *[cell(v) for v in self.grads.data[i]], *tail])
        atomic_write_text(Path(path), buf.getvalue())
