"""Runs the engine's trainer in a worker thread and hands its events to the GUI.

The worker thread prepares the run (data, model; :func:`engine.session.prepare_run`) and
calls ``Trainer.run()``; its listener is an :class:`engine.events.EventBuffer`, whose
``put`` is a deque append. The GUI thread drains the buffer on a ~30 Hz ``QTimer``, records
everything into the current :class:`RunRecord` with a few array copies, and emits
``updated`` once per drain; plots redraw from that. The worker never touches a widget and
the GUI never calls the training model: previews use :meth:`TrainingController.preview_model`,
a second compiled model whose flat parameters are copied from the trainer's (a torn read of
floats mid-update is acceptable for a preview, a race on the layers' caches is not).

While a run exists the document is locked: every edit is refused with a message saying to
stop the run first. Closing the window calls :meth:`shutdown`, which stops and joins the
thread.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from engine.compiler import Model
from engine.errors import BackpropError
from engine.events import EventBuffer, FinishEvent, StepEvent
from engine.graph import Graph
from studio.training.history import RunRecord

log = logging.getLogger(__name__)

IDLE, COMPILING, RUNNING, PAUSED = "idle", "compiling", "running", "paused"
FINISHED, DIVERGED = "finished", "diverged"
LOCK_REASON = "training is running; press Stop (Shift+F5) before editing the network"
DRAIN_MS = 33


@dataclass
class _Prepared:
    """Worker → GUI: the run is built (model, data); training starts now."""

    run: Any
    event: str = "prepared"


@dataclass
class _Failed:
    message: str
    event: str = "failed"


@dataclass
class _Ended:
    event: str = "ended"


def _model_key(graph: Graph) -> str:
    """What decides whether trained weights still fit the design: structure, dtype, loss, seed, data."""
    d = graph.to_dict(ui=False, sort=True)
    t = d.pop("training")
    d.pop("name", None)
    d.pop("description", None)
    d["training"] = {k: t.get(k) for k in ("dtype", "loss", "seed", "dataset")}
    return repr(d)


class TrainingController(QObject):
    """Start, pause, resume, step, stop a training run of the document's graph."""

    stateChanged = Signal(str)
    runStarted = Signal(object)  # RunRecord
    updated = Signal()  # new events recorded (≤ ~30 Hz)
    runFinished = Signal(object)  # RunRecord
    weightsChanged = Signal()  # reset or a new model: previews should refresh
    message = Signal(str)  # status-bar text
    failed = Signal(str)  # a run could not start or crashed: the reason
    divergedAt = Signal(str)  # the trainer's divergence message
    drained = Signal(object)  # the trainer events of one drain (a list), for listeners such as lessons

    def __init__(self, document: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.state = IDLE
        self.runs: list[RunRecord] = []
        self.record: RunRecord | None = None
        self.run: Any = None  # engine.session.Run of the current/last run
        self.model: Model | None = None
        self._model_key: str | None = None
        self._normaliser: Any = None
        self._adopted_meta: dict[str, Any] = {}
        self._preview: Model | None = None
        self._thread: threading.Thread | None = None
        self._buffer = EventBuffer(max_steps=20000)
        self._control = threading.Lock()
        self._trainer: Any = None
        self._want_stop = False
        self._want_pause = False
        self._budget = 0
        self._rate_t = 0.0
        self._rate_step = 0
        self.steps_per_s = 0.0
        self.t_started = 0.0
        self.t_first_step: float | None = None
        self.t_first_drawn: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self._on_tick)

    # -- queries ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A worker thread exists (preparing, compiling, running or paused)."""
        return self._thread is not None

    @property
    def trainer(self) -> Any:
        return self._trainer

    def thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def total_steps(self) -> int:
        start = self.record.start if self.record else None
        return start.epochs * start.steps_per_epoch if start else 0

    def progress(self) -> tuple[int, int]:
        """(steps done, total steps) of the current run."""
        return (self.record.last_step if self.record else 0), self.total_steps()

    def eta_seconds(self) -> float | None:
        done, total = self.progress()
        if self.state != RUNNING or not total or self.steps_per_s <= 0:
            return None
        return max(0.0, (total - done) / self.steps_per_s)

    # -- commands ----------------------------------------------------------------------------
    def can_continue(self) -> bool:
        """Whether there are weights a run could continue from: the last run's (or a loaded
        model's) and the design has not changed since."""
        return (not self.busy and self.model is not None
                and self._model_key == _model_key(self.document.graph))

    def start(self, paused: bool = False, budget: int = 0, fresh: bool = True) -> bool:
        """Train the document's graph in a worker thread: from a fresh initialisation, or with
        ``fresh=False`` on from the current weights (:meth:`can_continue`). False, with
        ``failed`` emitted, if it cannot start."""
        if self.busy:
            if self.state == PAUSED:
                self.resume()
                return True
            return False
        graph = self.document.graph.copy()
        problems = graph.problems()
        if problems:
            self.failed.emit(f"cannot train: {problems[0]}")
            return False
        key = _model_key(graph)
        if not fresh and not self.can_continue():
            self.failed.emit("no trained weights to continue from (or the network changed since): "
                             "Train (F5) starts a fresh run")
            return False
        had_weights = self.can_continue()
        model = None if fresh else self.model
        if model is None:
            self.model, self._normaliser, self._model_key = None, None, key
        path = getattr(self.document, "path", None)
        base_dir = Path(path).resolve().parent if path else Path.cwd()
        self._buffer = EventBuffer(max_steps=20000)
        with self._control:
            self._trainer = None
            self._want_stop, self._want_pause, self._budget = False, paused, budget
        self.record = RunRecord(len(self.runs) + 1, graph.name or "untitled",
                                training=copy.deepcopy(graph.training), graph=graph.to_dict())
        self.runs.append(self.record)
        self._preview = None
        self.t_started = time.perf_counter()
        self.t_first_step = self.t_first_drawn = None
        self.steps_per_s = 0.0
        self._rate_t, self._rate_step = self.t_started, 0
        from engine.kernels import graph_categories, kernels_cached

        compiling = not kernels_cached(graph_categories(graph))
        self.document.lock(LOCK_REASON)
        self._thread = threading.Thread(target=self._work, args=(graph, base_dir, model, self._normaliser),
                                        name="backprop-trainer", daemon=True)
        self._thread.start()
        self._timer.start()
        self._set_state(COMPILING if compiling else (PAUSED if paused else RUNNING))
        if compiling:
            self.message.emit("compiling kernels… (first run only; later runs start in about a second)")
        elif model is not None:
            self.message.emit("continuing from the trained weights")
        else:
            self.message.emit("training from a fresh initialisation" + (
                "; Continue Training (Ctrl+F5) trains on from the last weights instead" if had_weights else ""))
        self.runStarted.emit(self.record)
        return True

    def pause(self) -> None:
        if not self.busy or self.state == PAUSED:
            return
        with self._control:
            self._want_pause = True
            if self._trainer is not None:
                self._trainer.pause()
        self._set_state(PAUSED)
        self.message.emit("paused: Step runs one batch, Resume continues")

    def resume(self) -> None:
        if not self.busy:
            return
        with self._control:
            self._want_pause, self._budget = False, 0
            if self._trainer is not None:
                self._trainer.resume()
        self._set_state(COMPILING if self.t_first_step is None and self._compiling_hint() else RUNNING)

    def step(self) -> None:
        """Exactly one batch: pauses a running run; steps a paused one; starts one paused."""
        if not self.busy:
            self.start(paused=True, budget=1)
            return
        if self.state != PAUSED:
            self.pause()
            return
        with self._control:
            if self._trainer is not None:
                self._trainer.step_once()
            else:
                self._budget += 1

    def stop(self, wait: float = 0.0) -> None:
        """Ask the trainer to stop after the current batch; optionally wait for the thread."""
        with self._control:
            self._want_stop = True
            if self._trainer is not None:
                self._trainer.request_stop()
        if wait and self._thread is not None:
            self._thread.join(wait)
            self._on_tick()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop and join the worker (window closing); True if no thread is left running."""
        thread = self._thread
        self.stop()
        if thread is not None:
            thread.join(timeout)
        self._on_tick()
        self._timer.stop()
        return thread is None or not thread.is_alive()

    def reset_weights(self) -> None:
        """A fresh initialisation (stopping a run first); the plots keep the run history."""
        if self.busy:
            self.stop(wait=10.0)
        if self.busy:
            self.failed.emit("the run did not stop in time; try Reset weights again")
            return
        if self.model is None:
            self.message.emit("no trained weights yet: the next run starts from a fresh initialisation")
            return
        seed = int(self.document.graph.training.get("seed", 0))
        self.model.init_weights(seed)
        self._preview = None
        self.message.emit(f"weights reset (fresh initialisation, seed {seed})")
        self.weightsChanged.emit()

    def forget_weights(self) -> None:
        """The next run starts from a fresh initialisation even if the design is unchanged
        (a lesson's run must start as the lesson prepared it)."""
        if not self.busy:
            self.model, self._model_key, self._preview = None, None, None

    def forget_run(self) -> None:
        """The document shows another graph: no current run any more (the history keeps it)."""
        if self.busy:
            return
        self.record, self.run = None, None
        self._set_state(IDLE)

    # -- previews ----------------------------------------------------------------------------
    def adopt(self, model: Model, meta: dict[str, Any], graph: Graph) -> None:
        """Hold weights loaded from a model file: Continue Training trains on from them, Export
        writes them."""
        from engine.data import Normaliser

        if self.busy:
            raise BackpropError("stop the current run before loading a trained model")
        norm = (meta.get("preprocessing") or {}).get("normalise")
        self._normaliser = Normaliser.from_json(norm) if norm else None
        self.model, self._model_key, self._preview, self.run = model, _model_key(graph), None, None
        self._adopted_meta = copy.deepcopy(meta)
        self.weightsChanged.emit()

    def trained(self) -> tuple[Model, dict[str, Any]] | None:
        """The weights a person can save or export now (None while a run is active or before any)."""
        if self.busy or self.model is None or self._model_key != _model_key(self.document.graph):
            return None
        if self.run is not None and self.run.model is self.model:
            return self.model, self.run.meta()
        return self.model, copy.deepcopy(self._adopted_meta)

    def preview_model(self) -> Model | None:
        """A second model with a copy of the training weights (safe to call from the GUI)."""
        model = self.model
        if model is None:
            return None
        if self._preview is None or self._preview.params.size != model.params.size \
                or self._preview.state.size != model.state.size:
            self._preview = Model(model.graph, dtype=model.dtype, seed=0, loss=model.loss)
        self._preview.restore(model.snapshot())
        return self._preview

    # -- worker (runs in its own thread: no Qt here) --------------------------------------
    def _work(self, graph: Graph, base_dir: Path, model: Model | None, normaliser: Any) -> None:
        buffer = self._buffer
        try:
            from engine.session import prepare_run

            run = prepare_run(graph, base_dir, listener=buffer.put, model=model, normaliser=normaliser)
            with self._control:
                trainer = run.trainer
                if self._want_pause:
                    trainer.pause()
                for _ in range(self._budget):
                    trainer.step_once()
                if self._want_stop:
                    trainer.request_stop()
                self._trainer = trainer
            buffer.put(_Prepared(run))
            trainer.run()
        except BackpropError as err:
            buffer.put(_Failed(str(err)))
        except Exception as err:  # a bug, not bad input: keep the GUI alive and say so
            log.error("training crashed:\n%s", traceback.format_exc())
            buffer.put(_Failed(f"internal error while training: {err!r}"))
        finally:
            buffer.put(_Ended())

    # -- GUI side: drain ---------------------------------------------------------------------
    def _compiling_hint(self) -> bool:
        from engine.kernels import graph_categories, kernels_cached

        return not kernels_cached(graph_categories(self.document.graph))

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    def _on_tick(self) -> None:
        events = self._buffer.drain()
        if not events:
            if self._thread is not None and not self._thread.is_alive():
                self._ended()
            return
        record = self.record
        plain: list[Any] = []
        ended = False
        for event in events:
            kind = event.event
            if kind == "prepared":
                self._on_prepared(event.run)
            elif kind == "failed":
                self.failed.emit(event.message)
            elif kind == "ended":
                ended = True
            else:
                plain.append(event)
        if record is not None and plain:
            if self.t_first_step is None and any(type(e) is StepEvent for e in plain):
                self.t_first_step = time.perf_counter()
                if self.state == COMPILING:
                    self._set_state(PAUSED if self._want_pause else RUNNING)
            record.ingest(plain)
            record.dropped = self._buffer.dropped
            self._update_rate(record)
            for event in plain:
                if isinstance(event, FinishEvent):
                    self._on_finish(record, event)
            self.drained.emit(plain)
            self.updated.emit()
        if ended:
            self._ended()

    def _on_prepared(self, run: Any) -> None:
        self.run = run
        self.model = run.model
        self._normaliser = run.normaliser
        if self.record is not None:
            self.record.set_nodes(run.model.param_nodes)
            self.record.task = run.dataset.task
        self.weightsChanged.emit()

    def _update_rate(self, record: RunRecord) -> None:
        now = time.perf_counter()
        dt = now - self._rate_t
        if dt >= 0.25:
            inst = (record.last_step - self._rate_step) / dt
            self.steps_per_s = inst if self.steps_per_s <= 0 else 0.5 * self.steps_per_s + 0.5 * inst
            self._rate_t, self._rate_step = now, record.last_step

    def _on_finish(self, record: RunRecord, event: FinishEvent) -> None:
        if event.reason == "diverged":
            self._model_key = None  # blown-up weights: the next run starts from a fresh initialisation
            self._set_state(DIVERGED)
            self.divergedAt.emit(event.message)
        else:
            self._set_state(FINISHED)
            self.message.emit(f"training {record.state_text}: {event.message}" if event.message
                              else f"training {record.state_text}")

    def _ended(self) -> None:
        """The worker is gone: unlock the document and settle the state."""
        if self._thread is None:
            return
        self._thread.join(1.0)
        self._thread = None
        with self._control:
            self._trainer = None
        self._timer.stop()
        if self.document.locked_reason == LOCK_REASON:
            self.document.unlock()
        record = self.record
        if record is not None and record.finish is None:
            record.finish = FinishEvent("error", 0, record.last_step, "the run ended without finishing")
            record.version += 1
        if record is not None and not record.n_steps and record in self.runs:
            self.runs.remove(record)  # nothing was trained: keep the history list meaningful
        if self.state not in (FINISHED, DIVERGED):
            self._set_state(FINISHED if record is not None and record.n_steps else IDLE)
        if record is not None:
            self.runFinished.emit(record)


def format_eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
