"""Everything training adds to a main window: actions, toolbar, menu, docks, status line, overlay.

:class:`TrainingWorkspace` is created by the main window and uses only its extension points
(``add_panel``, ``add_toolbar``, ``add_menu``, the status bar, ``scene.node_item``). It
connects the :class:`TrainingController` to the plots, the canvas overlay, the run list and
the status line, and owns the redraw policy: on every drain of the event buffer (≤ 30 Hz)
each *visible* plot redraws if its run changed; hidden docks cost nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox, QProgressBar, QToolBar

from studio.icons import icon
from studio.panels.runs_panel import RunsPanel
from studio.plots.activations import ActivationPanel
from studio.plots.boundary import BoundaryPanel
from studio.plots.common import PlotPanel
from studio.plots.curves import CurvesPanel
from studio.plots.gradients import GradientPanel
from studio.status import dot
from studio.training.controller import (
    COMPILING,
    DIVERGED,
    FINISHED,
    IDLE,
    PAUSED,
    RUNNING,
    TrainingController,
    format_eta,
)
from studio.training.history import RunRecord
from studio.training.model_io import ModelActions
from studio.training.overlay import GradientOverlay
from studio.views.through_time import ThroughTimePanel

PAINT_TICK_MS = 10  # between two panel redraws while a run streams
LIVE_PLOT_HZ = 27
SHORTCUTS = {"train": "F5", "continue": "Ctrl+F5", "pause": "F6", "resume": "F7", "step": "F10",
             "stop": "Shift+F5", "reset": "Ctrl+Shift+R"}
STATE_TEXT = {IDLE: "idle", COMPILING: "compiling kernels…", RUNNING: "training", PAUSED: "paused",
              FINISHED: "finished", DIVERGED: "diverged"}
#: The colour of the dot before the run state (a finished run is coloured by how it ended).
STATE_COLORS = {IDLE: "#8a8f98", COMPILING: "#e0a030", RUNNING: "#3d7fd9", PAUSED: "#e0a030",
                "completed": "#3f9e55", "early stopping": "#3f9e55", "stopped": "#8a8f98",
                DIVERGED: "#e5484d", "error": "#e5484d"}
ICONS = {"train": "play", "continue": "continue", "pause": "pause", "resume": "play", "step": "step",
         "stop": "stop", "reset": "reset"}


def leave_a_core_for_the_ui() -> None:
    """Cap BLAS threads at (cores − 1) while the studio runs.

    OpenBLAS threads spin while waiting for work; on a 2-core machine its second thread and
    the UI thread fight for one core, and both training and the UI slow down several times
    (benchmarks/bench_studio.py: W1 in the studio went from 91 to 201 steps/s with one
    BLAS thread). The headless CLI keeps every core.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency; without it only speed suffers
        return
    threadpool_limits(max(1, (os.cpu_count() or 2) - 1), user_api="blas")


class TrainingWorkspace(QObject):
    """Training UI of one main window (see module docstring)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        leave_a_core_for_the_ui()
        self.window = window
        self.document = window.document
        self.controller = TrainingController(self.document, self)
        self.model_io = ModelActions(window, self.controller)
        self.shown: RunRecord | None = None
        self.ghost: RunRecord | None = None
        self.curves = CurvesPanel()
        self.gradients = GradientPanel()
        self.activations = ActivationPanel()
        self.boundary = BoundaryPanel()
        self.boundary.model_source = self.controller.preview_model
        self.through_time = ThroughTimePanel()
        self.through_time.model_source = self.controller.preview_model
        self.plots: dict[str, PlotPanel] = {"curves": self.curves, "gradients": self.gradients,
                                            "activations": self.activations, "boundary": self.boundary,
                                            "through_time": self.through_time}
        from studio.views.cnn import cnn_views  # feature maps, filters, class report

        self.plots.update(cnn_views(self.controller))
        self.runs_panel = RunsPanel()
        self.overlay = GradientOverlay(window.scene, window.view, self.document)
        self.actions: dict[str, QAction] = {}
        self._last_runs_refresh = 0.0
        self._boundary_run: Any = None
        self._create_actions()
        self._create_toolbar_and_menu()
        self._create_status()
        self._create_docks()
        self._connect()
        self._on_state(IDLE)

    # -- construction -------------------------------------------------------------------------
    def _action(self, key: str, text: str, slot: Any, tip: str) -> QAction:
        act = QAction(text, self.window)
        if key in ICONS:
            act.setIcon(icon(ICONS[key]))
            act.setProperty("icon_name", ICONS[key])  # re-themed by the main window
        if key in SHORTCUTS:
            act.setShortcut(QKeySequence(SHORTCUTS[key]))
            tip = f"{tip} ({SHORTCUTS[key]})"
        act.setToolTip(tip)
        act.setStatusTip(tip)
        act.triggered.connect(slot)
        self.window.addAction(act)
        self.actions[key] = act
        return act

    def _create_actions(self) -> None:
        c = self.controller
        self._action("train", "Train", self.train, "Train the network from a fresh initialisation")
        self._action("continue", "Continue Training", self.continue_training,
                     "Train on from the current weights (the last run's, or an opened .bpmodel's)")
        self._action("pause", "Pause", c.pause, "Pause after the current batch")
        self._action("resume", "Resume", c.resume, "Continue a paused run")
        self._action("step", "Step", c.step, "Run exactly one batch, then stay paused")
        self._action("stop", "Stop", lambda: c.stop(), "Stop the run (the curves stay)")
        self._action("reset", "Reset Weights", c.reset_weights, "Fresh initialisation of all weights")
        tint = self._action("tint", "Gradient Tint on Canvas", self.overlay.set_enabled,
                            "Colour every layer card by its current gradient norm")
        tint.setCheckable(True)
        tint.setChecked(True)

    def _create_toolbar_and_menu(self) -> None:
        a = self.actions
        tb = QToolBar("Training")
        tb.setObjectName("toolbar_training")
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        tb.addActions([a["train"], a["continue"], a["pause"], a["resume"], a["step"], a["stop"]])
        tb.addSeparator()
        tb.addAction(a["reset"])
        self.toolbar = tb
        self.window.add_toolbar(tb)
        menu = self.window.add_menu("&Training")
        menu.addActions([a["train"], a["continue"], a["pause"], a["resume"], a["step"], a["stop"]])
        menu.addSeparator()
        menu.addActions([a["reset"], a["tint"]])
        menu.addSeparator()
        export = menu.addMenu("Export Plot as &PNG")
        for key, panel in self.plots.items():
            export.addAction(f"{panel.title}…").triggered.connect(lambda _=False, k=key: self.export_plot(k))
        metrics = menu.addMenu("Export Run &Metrics")
        metrics.addAction("CSV…").triggered.connect(
            lambda: self.export_run(self.runs_panel.selected(), "csv"))
        metrics.addAction("JSON Lines…").triggered.connect(
            lambda: self.export_run(self.runs_panel.selected(), "jsonl"))
        self.menu = menu

    def _create_status(self) -> None:
        bar = self.window.statusBar()
        self.status_label = QLabel()
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setMinimumWidth(320)
        self.progress = QProgressBar()
        self.progress.setFixedWidth(160)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        bar.insertPermanentWidget(1, self.status_label)  # after the message area, before the problems
        bar.insertPermanentWidget(2, self.progress)

    def _create_docks(self) -> None:
        w = self.window
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        docks = {}
        for key, panel in self.plots.items():
            docks[key] = w.add_panel(panel, panel.title, f"dock_plot_{key}", bottom)
            # a tab brought to the front is not "shown" again: redraw it when it becomes visible
            docks[key].visibilityChanged.connect(
                lambda visible, p=panel: QTimer.singleShot(0, p.refresh) if visible else None)
        self.panel_docks = docks
        self.runs_dock = w.add_panel(self.runs_panel, "Runs", "dock_runs", right)
        self.dataset_dock = self.training_dock = None
        try:
            from studio.panels.dataset_panel import DatasetPanel
            from studio.panels.training_panel import TrainingPanel
        except ImportError:  # the engine's data/optim modules are not there yet
            pass
        else:
            self.dataset_panel = DatasetPanel(self.document)
            self.training_panel = TrainingPanel(self.document)
            self.dataset_dock = w.add_panel(self.dataset_panel, "Dataset", "dock_dataset", right)
            self.training_dock = w.add_panel(self.training_panel, "Training", "dock_training", right)
        if not getattr(w, "_restored", False):
            first = docks["gradients"]
            for key in docks:
                if key != "gradients":
                    w.tabifyDockWidget(first, docks[key])
            # History among the bottom tabs: split below the Inspector it left a convolution's
            # parameters about 200 px at 1280x800
            for key in ("dock_summary", "dock_history"):
                if w.docks.get(key) is not None:
                    w.tabifyDockWidget(first, w.docks[key])
            first.raise_()
            QTimer.singleShot(0, lambda: w.resizeDocks([first], [max(300, w.height() * 2 // 5)],
                                                       Qt.Orientation.Vertical))
            inspector = w.docks.get("dock_inspector")
            for dock in (self.training_dock, self.dataset_dock, self.runs_dock):
                if dock is not None and inspector is not None:
                    w.tabifyDockWidget(inspector, dock)
            inspector.raise_() if inspector is not None else None

    def _connect(self) -> None:
        c = self.controller
        c.stateChanged.connect(self._on_state)
        c.runStarted.connect(self._on_run_started)
        c.updated.connect(self._on_updated)
        c.runFinished.connect(self._on_run_finished)
        c.weightsChanged.connect(self._on_weights_changed)
        c.weightsChanged.connect(self._update_actions)
        c.message.connect(lambda text: self.window.show_status(text, 8000))
        c.failed.connect(self._on_failed)
        self._diverged_message = ""
        c.divergedAt.connect(self._on_diverged)
        self.runs_panel.showRequested.connect(self.show_run)
        self.runs_panel.ghostChanged.connect(self.set_ghost)
        self.runs_panel.exportRequested.connect(self.export_run)
        self.document.lockChanged.connect(self._update_actions)
        self.document.graphReset.connect(self._on_graph_reset)
        self.document.changed.connect(self._update_actions)  # an edit can make the weights stale
        self._status_timer = QTimer(self)
        self._status_timer.setInterval(250)
        self._status_timer.timeout.connect(self._update_status)
        # One plot panel per turn of the event loop: a drain that redrew every panel at once
        # painted ~30 ms in one go, making the UI late by as much (T3 in bench_studio.py).
        self._paint_timer = QTimer(self)
        self._paint_timer.setInterval(PAINT_TICK_MS)
        self._paint_timer.timeout.connect(self._paint_next)
        self._pending: list[PlotPanel] = []

    # -- commands -----------------------------------------------------------------------------
    def train(self) -> None:
        """F5: a fresh run (a paused one resumes)."""
        if self.controller.state == PAUSED:
            self.controller.resume()
        else:
            self.controller.start(fresh=True)

    def continue_training(self) -> None:
        """Ctrl+F5: train on from the current weights."""
        self.controller.start(fresh=False)

    def shutdown(self) -> bool:
        """Stop and join the training thread (window closing)."""
        self._status_timer.stop()
        return self.controller.shutdown()

    def show_run(self, record: RunRecord | None) -> None:
        self.shown = record
        for panel in self.plots.values():
            if panel is not self.boundary:
                panel.set_record(record)
        self.overlay.update_from(record)

    def set_ghost(self, record: RunRecord | None) -> None:
        self.ghost = record
        for key in ("curves", "gradients", "through_time"):
            self.plots[key].set_ghost(record)

    def export_plot(self, key: str, path: str | None = None) -> bool:
        panel = self.plots[key]
        if path is None:
            name = f"{self.shown.name if self.shown else 'plot'}_{key}.png"
            path, _ = QFileDialog.getSaveFileName(self.window, f"Export {panel.title} as PNG", name,
                                                  "PNG image (*.png)")
            if not path:
                return False
        try:
            panel.export_png(path)
        except OSError as err:
            QMessageBox.warning(self.window, "Export failed", str(err))
            return False
        self.window.show_status(f"Saved {Path(path).name}")
        return True

    def export_run(self, record: RunRecord | None, kind: str, path: str | None = None) -> bool:
        if record is None:
            self.window.show_status("No run to export yet: train first")
            return False
        if path is None:
            filt = "CSV table (*.csv)" if kind == "csv" else "JSON lines (*.jsonl)"
            default = f"run{record.number}_{record.name}.{kind}"
            title = f"Export {record.label} metrics"
            path, _ = QFileDialog.getSaveFileName(self.window, title, default, filt)
            if not path:
                return False
        try:
            (record.export_csv if kind == "csv" else record.export_jsonl)(path)
        except OSError as err:
            QMessageBox.warning(self.window, "Export failed", f"{path}: {err}")
            return False
        self.window.show_status(f"Saved {record.label} metrics to {Path(path).name}")
        return True

    # -- slots ----------------------------------------------------------------------------------
    def _on_graph_reset(self) -> None:
        """Another graph (New, Open): its plots, canvas tint and run state start empty, and a
        ghost of the previous graph is dropped rather than kept silently over a graph it does
        not belong to. Runs keeps every run, to show or ghost again."""
        if self.controller.busy:  # (replacing the document is refused while a run holds it)
            return
        if self.ghost is not None:
            self.runs_panel.set_ghost(None)  # → ghostChanged → set_ghost(None)
            self.set_ghost(None)
        self.controller.forget_run()
        self.show_run(None)
        self.boundary.record = None
        self._boundary_run = None
        self.boundary.set_data(None, None, "classification", 2)
        self._update_status()

    def _on_run_started(self, record: RunRecord) -> None:
        self.overlay.clear()
        self.show_run(record)
        self.boundary.record = record  # redraws as this run's weights move (the live model)
        self.runs_panel.set_runs(self.controller.runs)
        self._status_timer.start()

    def _on_updated(self) -> None:
        c = self.controller
        for panel in self.plots.values():
            if panel not in self._pending:
                self._pending.append(panel)
        if not self._paint_timer.isActive():
            self._paint_next()
            self._paint_timer.start()
        if self.shown is c.record:
            self.overlay.update_from(c.record)
        if c.t_first_step is not None and c.t_first_drawn is None:
            c.t_first_drawn = time.perf_counter()
        now = time.perf_counter()
        if now - self._last_runs_refresh > 1.0:
            self._last_runs_refresh = now
            self.runs_panel.refresh()

    def _paint_next(self) -> None:
        """Redraw the panel that has waited longest (those off screen cost nothing and drop out).

        Each panel redraws at most LIVE_PLOT_HZ: the GUI's Python time is taken from the
        trainer (one GIL), and 25 frames a second already look continuous.
        """
        now = time.perf_counter()
        for panel in list(self._pending):
            if panel.draw_times and now - panel.draw_times[-1] < 1.0 / LIVE_PLOT_HZ:
                continue
            self._pending.remove(panel)
            if panel.refresh():
                return
        if not self._pending:
            self._paint_timer.stop()

    def _on_run_finished(self, record: RunRecord) -> None:
        self._status_timer.stop()
        self.runs_panel.set_runs(self.controller.runs)
        for panel in self.plots.values():
            panel.refresh()
        if self.shown is record:
            self.overlay.update_from(record, force=True)
        self.boundary.settle()
        self._update_actions()
        self._update_status()
        self._tell_divergence()

    def _on_weights_changed(self) -> None:
        run = self.controller.run
        if run is not None and run is not self._boundary_run:
            self._boundary_run = run
            train = run.train
            self.boundary.set_data(train.X, train.y, train.task, run.dataset.n_classes)
            self.through_time.set_data(train.X, train.y, train.task)
        self.boundary.weights_changed()
        self.through_time.weights_changed()
        if self.controller.state in (IDLE, FINISHED, DIVERGED) and not self.controller.busy:
            self.overlay.clear()

    def _on_failed(self, message: str) -> None:
        self.window.show_status(message, 15000, warning=True)
        QMessageBox.warning(self.window, "Cannot train", message)

    def _on_diverged(self, message: str) -> None:
        """Said at once in the status bar; the dialog waits until the run has really ended
        (the toolbar and status then show a stopped run, not a running one behind the dialog)."""
        self.window.show_status(message, 20000, warning=True)
        self._diverged_message = message

    def _tell_divergence(self) -> None:
        message, self._diverged_message = self._diverged_message, ""
        if message:
            QMessageBox.warning(self.window, "Training diverged", message)

    def _on_state(self, state: str) -> None:
        self._update_actions()
        self._update_status()

    def _update_actions(self, *_: Any) -> None:
        s, busy = self.controller.state, self.controller.busy
        a = self.actions
        a["train"].setEnabled(not busy or s == PAUSED)
        a["train"].setText("Train" if not busy else "Train (resume)")
        a["pause"].setEnabled(busy and s in (RUNNING, COMPILING))
        a["resume"].setEnabled(busy and s == PAUSED)
        a["step"].setEnabled(True)
        a["stop"].setEnabled(busy)
        a["continue"].setEnabled(self.controller.can_continue() and self.document.editable)
        a["reset"].setEnabled(self.controller.model is not None or busy)

    def _update_status(self) -> None:
        c = self.controller
        rec = c.record
        state = c.state
        if state == FINISHED and rec is not None and rec.finish is not None:
            state = rec.state_text  # the same word as the Runs list: completed, stopped, early stopping
        text = STATE_TEXT.get(state, state)
        done, total = c.progress()
        if rec is not None and rec.n_steps:
            epoch = int(rec.step_epoch.data[-1]) + 1 if len(rec.step_epoch) else 0
            epochs = rec.start.epochs if rec.start else 0
            text += f" · epoch {min(epoch, epochs or epoch)}/{epochs} · step {done:,}"
            if c.state == RUNNING:
                rate = float(rec.rate.data[-1]) if len(rec.rate) else 0.0
                text += f" · {rate / 1000:.1f}k samples/s" if rate >= 1000 else f" · {rate:.0f} samples/s"
                text += f" · ETA {format_eta(c.eta_seconds())}"
        self.status_label.setText(dot(STATE_COLORS.get(state, STATE_COLORS[IDLE]), text))
        if c.state == COMPILING or (c.busy and not total):
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total) if total else 0)
