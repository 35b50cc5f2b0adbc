"""Training from the main window: toolbar, run control, plots, divergence, closing mid-run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.compiler import compile_graph
from engine.graph import Graph
from studio.training.controller import DIVERGED, FINISHED, PAUSED, RUNNING

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COMPILE_MS = 180_000  # a cold Numba cache compiles every kernel once


def open_example(window, tmp_path: Path, name: str, **training) -> Graph:
    """Open examples/<name>.json with training keys overridden (saved to a temporary copy)."""
    graph = Graph.load(EXAMPLES / f"{name}.json")
    graph.training.update(training)
    path = tmp_path / f"{name}.json"
    graph.save(path)
    assert window.files.open(path)
    return graph


def train_example(window, qtbot, tmp_path: Path, name: str, dock: str = "", **training):
    """Open examples/<name>.json (training keys overridden), show ``dock``'s plot, train to the end."""
    open_example(window, tmp_path, name, **training)
    ws = window.training
    if dock:
        ws.panel_docks[dock].raise_()
    ws.actions["train"].trigger()
    wait_idle(qtbot, ws)
    return ws.controller.record


def trainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "backprop-trainer" and t.is_alive()]


def wait_steps(qtbot, ws, n: int, timeout: int = COMPILE_MS) -> None:
    qtbot.waitUntil(lambda: ws.controller.record is not None and ws.controller.record.n_steps >= n,
                    timeout=timeout)


def wait_idle(qtbot, ws, timeout: int = COMPILE_MS) -> None:
    qtbot.waitUntil(lambda: not ws.controller.busy, timeout=timeout)


def settled_step(qtbot, trainer) -> int:
    """The trainer's step once it has stopped moving (a pause takes effect between steps)."""
    last = [-1, time.perf_counter()]

    def still() -> bool:
        if trainer.step != last[0]:
            last[0], last[1] = trainer.step, time.perf_counter()
            return False
        return time.perf_counter() - last[1] > 0.15

    qtbot.waitUntil(still, timeout=5000)
    return trainer.step


def test_train_xor_from_the_toolbar_reaches_full_accuracy(window, qtbot, tmp_path):
    open_example(window, tmp_path, "xor")
    ws = window.training
    button = ws.toolbar.widgetForAction(ws.actions["train"])
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert ws.controller.busy
    assert not window.document.editable  # locked while training
    wait_idle(qtbot, ws)
    rec = ws.controller.record
    assert ws.controller.state == FINISHED
    assert rec.finish.reason == "completed"
    assert rec.summary()["train_acc"] == 1.0
    assert rec.n_steps == 300
    assert window.document.editable
    ws.panel_docks["curves"].raise_()  # hidden plots are not drawn; shown, they catch up at once
    qtbot.waitUntil(lambda: ws.curves.step_curve.getData()[0] is not None, timeout=2000)
    xs, ys = ws.curves.step_curve.getData()
    assert len(xs) > 0 and xs[-1] == 300 and np.all(np.isfinite(ys))
    ex, ey = ws.curves.acc_train.getData()
    assert ey[-1] == 1.0
    assert len(ws.gradients.curves) == len(rec.nodes) == 2
    for curve in ws.gradients.curves:
        assert len(curve.getData()[0]) > 0
    assert "completed" in ws.status_label.text() and "300" in ws.status_label.text()
    assert ws.progress.value() == ws.progress.maximum()
    assert ws.runs_panel.tree.topLevelItemCount() == 1


def test_pause_step_resume_stop_and_reset_weights(window, qtbot, tmp_path):
    graph = open_example(window, tmp_path, "moons_mlp", epochs=100000, batch_size=1)
    ws = window.training
    c = ws.controller
    ws.actions["train"].trigger()
    wait_steps(qtbot, ws, 5)
    ws.actions["pause"].trigger()
    assert c.state == PAUSED
    trainer = c.trainer
    n = settled_step(qtbot, trainer)
    ws.actions["step"].trigger()
    qtbot.waitUntil(lambda: trainer.step == n + 1, timeout=5000)
    assert settled_step(qtbot, trainer) == n + 1  # exactly one batch, then paused again
    qtbot.waitUntil(lambda: c.record.last_step == n + 1, timeout=2000)
    ws.actions["resume"].trigger()
    assert c.state == RUNNING
    qtbot.waitUntil(lambda: trainer.step > n + 20, timeout=5000)
    before = trainer.step
    ws.actions["stop"].trigger()
    wait_idle(qtbot, ws, timeout=5000)
    assert c.record.finish.reason == "stopped"
    assert c.record.finish.step <= before + 2  # the current batch at most, then stop
    assert not trainer_threads()
    trained = c.model.params.copy()
    ws.actions["reset"].trigger()
    fresh = compile_graph(graph, dtype=c.model.dtype, seed=graph.training.get("seed", 0)).params
    assert not np.array_equal(trained, fresh)
    np.testing.assert_array_equal(c.model.params, fresh)


def test_step_from_idle_runs_exactly_one_batch(window, qtbot, tmp_path):
    open_example(window, tmp_path, "xor")
    ws = window.training
    ws.actions["step"].trigger()
    qtbot.waitUntil(lambda: ws.controller.record.n_steps == 1, timeout=COMPILE_MS)
    assert ws.controller.state == PAUSED
    assert settled_step(qtbot, ws.controller.trainer) == 1
    ws.actions["stop"].trigger()
    wait_idle(qtbot, ws, timeout=5000)


def test_deep_sigmoid_gradients_vanish_in_the_bars_and_on_the_canvas(window, qtbot, tmp_path):
    train_example(window, qtbot, tmp_path, "deep_sigmoid", "gradients", epochs=2)
    ws = window.training
    qtbot.waitUntil(lambda: ws.gradients.bar_values().size > 0, timeout=2000)
    bars = ws.gradients.bar_values()
    nodes = ws.controller.record.nodes
    assert len(bars) == len(nodes) == 21
    assert bars[0] * 100 <= bars[-1], bars
    first, last = window.scene.node_item(nodes[0]), window.scene.node_item(nodes[-1])
    assert first.tint is not None and last.tint is not None
    assert first.tint != last.tint
    assert "gradient norm" in first.toolTip()
    assert ws.overlay.legend.isVisible()


def test_huge_learning_rate_diverges_with_a_message_and_the_ui_stays_usable(window, qtbot, tmp_path, dialogs):
    graph = open_example(window, tmp_path, "xor")  # SGD: lr = 1e4 overflows within a few steps
    from studio.panels.training_panel import commit_training

    assert commit_training(window.document, lambda b: b["optimizer"].update(lr=1e4), "lr") is None
    ws = window.training
    ws.actions["train"].trigger()
    wait_idle(qtbot, ws)
    assert ws.controller.state == DIVERGED
    rec = ws.controller.record
    assert rec.diverged is not None
    warnings = [c for c in dialogs.calls if c[0] == "warning"]
    assert warnings and warnings[-1][1] == "Training diverged"
    text = warnings[-1][2]
    assert f"step {rec.diverged.step}" in text and "learning rate" in text
    if rec.diverged.node:
        assert rec.diverged.node in text
    assert rec.n_steps >= 1  # the curves so far stay
    assert not trainer_threads()
    assert window.document.editable
    assert ws.actions["train"].isEnabled()
    window.document.undo()  # back to the example's learning rate: train again
    assert window.document.graph.training["optimizer"]["lr"] == graph.training["optimizer"]["lr"]
    ws.actions["train"].trigger()
    wait_idle(qtbot, ws)
    assert ws.controller.state == FINISHED and len(ws.controller.runs) == 2


def test_editing_during_a_run_is_refused_with_a_message(window, qtbot, tmp_path):
    open_example(window, tmp_path, "moons_mlp", epochs=100000, batch_size=1)
    ws = window.training
    ws.actions["train"].trigger()
    wait_steps(qtbot, ws, 1)
    before = window.document.graph.to_dict()
    with qtbot.waitSignal(window.document.editRefused, timeout=1000) as refused:
        window.document.attempt(window.document.undo)
    assert "Stop" in refused.args[0]
    with qtbot.waitSignal(window.document.editRefused, timeout=1000):
        window.add_layer_at_center("Dense", {})
    assert window.document.graph.to_dict() == before
    ws.controller.stop()
    wait_idle(qtbot, ws, timeout=5000)


def test_closing_the_window_mid_run_leaves_no_thread(qtbot, tmp_path):
    from studio.main_window import MainWindow

    win = MainWindow()
    win.show()
    open_example(win, tmp_path, "moons_mlp", epochs=100000, batch_size=1)
    win.training.actions["train"].trigger()
    wait_steps(qtbot, win.training, 3)
    assert trainer_threads()
    assert win.close()
    assert not trainer_threads()


def test_closing_mid_run_still_asks_about_unsaved_changes(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from studio.main_window import MainWindow
    from studio.panels.training_panel import commit_training

    win = MainWindow()
    win.show()
    open_example(win, tmp_path, "moons_mlp", epochs=100000, batch_size=1)
    assert commit_training(win.document, lambda b: b.update(seed=5), "seed") is None  # unsaved change
    win.training.actions["train"].trigger()
    wait_steps(qtbot, win.training, 3)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", staticmethod(
        lambda *a, **k: asked.append(a[1]) or QMessageBox.StandardButton.Cancel))
    assert not win.close()  # cancelled: the run goes on
    assert asked == ["Unsaved changes"] and trainer_threads()
    discard = QMessageBox.StandardButton.Discard
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: discard))
    assert win.close()
    assert not trainer_threads()


@pytest.mark.slow
def test_live_plots_survive_seconds_of_streaming(window, qtbot, tmp_path):
    """Guards against redraw crashes (e.g. PySide6 6.12 + pyqtgraph 0.14 'none_dealloc')."""
    open_example(window, tmp_path, "moons_mlp", epochs=100000, batch_size=4, stats_every=5)
    ws = window.training
    for dock in ws.panel_docks.values():
        dock.setFloating(True)
        dock.show()
    ws.actions["train"].trigger()
    wait_steps(qtbot, ws, 1)
    t0 = time.perf_counter()
    qtbot.waitUntil(lambda: time.perf_counter() - t0 > 3.0, timeout=10000)
    ws.controller.stop()
    wait_idle(qtbot, ws, timeout=5000)
    for key in ("curves", "gradients", "activations"):
        assert ws.plots[key].draw_count >= 10, key
    assert ws.boundary.frames >= 3
