"""The status bar, toolbar and title tell the truth about the run and the file, in glyphs every font has."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QToolBar

from studio.status import is_portable
from tests.studio.test_training_run import open_example, wait_idle, wait_steps


def diverge(window, tmp_path) -> None:
    """Open xor with a learning rate that overflows within a few steps and train it."""
    from studio.panels.training_panel import commit_training

    open_example(window, tmp_path, "xor")
    assert commit_training(window.document, lambda b: b["optimizer"].update(lr=1e4), "lr") is None
    window.training.actions["train"].trigger()


def test_new_after_a_diverged_run_starts_with_empty_plots_and_an_idle_state(window, qtbot, tmp_path):
    diverge(window, tmp_path)
    ws = window.training
    wait_idle(qtbot, ws)
    assert "diverged" in ws.status_label.text()
    window.document.undo_stack.setClean()  # (the learning-rate edit: no question about saving it)
    assert window.files.new()
    assert "diverged" not in ws.status_label.text() and "epoch" not in ws.status_label.text()
    assert "idle" in ws.status_label.text()
    assert ws.progress.value() == 0
    for panel in ws.plots.values():
        assert panel.record is None
    assert ws.curves.step_curve.getData()[0] is None or len(ws.curves.step_curve.getData()[0]) == 0
    assert ws.boundary.X is None
    assert len(ws.controller.runs) == 1  # the history keeps the run


def test_a_long_message_is_elided_before_the_run_state(window, qtbot):
    window.resize(1280, 800)
    qtbot.wait(20)
    long = "diverged at step 3: node 'h' produced inf. " + "Lower the learning rate or clip gradients. " * 6
    window.show_status(long, 10000, warning=True)
    qtbot.wait(20)
    shown = window.message.label
    assert shown.text().endswith("…") and shown.toolTip() == long
    assert window.status_text() == long
    right = shown.mapTo(window, shown.rect().topRight()).x()
    state = window.training.status_label
    assert right < state.mapTo(window, state.rect().topLeft()).x() - 4, "the message runs into the run state"
    assert window.message.icon.isVisible()  # a warning shows an icon, not a glyph


def test_the_divergence_dialog_appears_once_the_run_has_stopped(window, qtbot, tmp_path, monkeypatch):
    ws = window.training
    seen = []

    def warning(parent, title, text, *args, **kwargs):
        seen.append((title, ws.actions["stop"].isEnabled(), ws.actions["pause"].isEnabled(),
                     ws.actions["train"].isEnabled(), ws.actions["train"].text(), ws.status_label.text(),
                     window.document.editable))
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", staticmethod(warning))
    diverge(window, tmp_path)
    wait_idle(qtbot, ws)
    qtbot.waitUntil(lambda: bool(seen), timeout=3000)
    title, stop, pause, train, train_text, state, editable = seen[-1]
    assert title == "Training diverged"
    assert not stop and not pause and train and train_text == "Train"
    assert "diverged" in state and "training" not in state
    assert editable


def test_a_diverged_run_is_not_called_a_healthy_flow(window, qtbot, tmp_path):
    diverge(window, tmp_path)
    ws = window.training
    wait_idle(qtbot, ws)
    ws.panel_docks["gradients"].raise_()
    qtbot.waitUntil(lambda: ws.gradients.draw_count > 0 and ws.gradients.record is not None, timeout=3000)
    ws.gradients.refresh(force=True)
    text = ws.gradients.ratio_label.text
    assert "healthy" not in text and "diverged" in text


def test_after_stop_the_status_says_stopped_like_the_runs_list(window, qtbot, tmp_path):
    open_example(window, tmp_path, "moons_mlp", epochs=100000)
    ws = window.training
    ws.actions["train"].trigger()
    wait_steps(qtbot, ws, 5)
    ws.actions["stop"].trigger()
    wait_idle(qtbot, ws)
    runs_status = ws.runs_panel.tree.topLevelItem(0).text(4)
    assert runs_status == "stopped"
    assert "stopped" in ws.status_label.text() and "finished" not in ws.status_label.text()
    assert "Editing unlocked" not in window.status_text()  # the run's result stays the message


def test_the_title_names_an_opened_trained_model(window, qtbot, tmp_path):
    from engine.graph import Graph
    from engine.modelfile import save_model
    from engine.session import prepare_run
    from tests.studio.test_training_run import EXAMPLES

    graph = Graph.load(EXAMPLES / "xor.json")
    graph.training["epochs"] = 2
    run = prepare_run(graph, EXAMPLES)
    run.trainer.run()
    save_model(tmp_path / "xor.bpmodel", run.model, run.meta())
    assert window.files.open(tmp_path / "xor.bpmodel")
    assert window.windowTitle().startswith("xor.bpmodel")


def test_chrome_texts_use_glyphs_every_font_has(window, qtbot, tmp_path):
    open_example(window, tmp_path, "xor", epochs=3)
    ws = window.training
    texts = []
    for toolbar in window.findChildren(QToolBar):
        texts += [a.text() for a in toolbar.actions()]
    for menu in window.menus.values():
        texts += [a.text() for a in menu.actions()]
    texts += [window.problems_label.text(), ws.status_label.text()]
    ws.actions["train"].trigger()
    window.document.attempt(window.document.check_editable)  # refused: locked while training
    texts += [window.status_text(), ws.status_label.text()]
    wait_idle(qtbot, ws)
    texts += [window.status_text(), ws.status_label.text()]
    bad = [t for t in texts if not is_portable(t)]
    assert not bad, f"characters many fonts lack: {bad}"
