"""Dataset and training panels edit the training block undoably; run history, ghosts, exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.graph import Graph
from studio.panels.training_panel import commit_training

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def open_example(window, tmp_path: Path, name: str, **training) -> Path:
    graph = Graph.load(EXAMPLES / f"{name}.json")
    graph.training.update(training)
    path = tmp_path / f"{name}.json"
    graph.save(path)
    assert window.files.open(path)
    return path


def test_training_panel_edits_are_undoable_and_saved_with_the_file(window, tmp_path):
    path = open_example(window, tmp_path, "xor")
    panel = window.training.training_panel
    doc = window.document
    lr = panel.opt_form.editors["lr"]
    lr.setValue(0.5)
    assert doc.graph.training["optimizer"]["lr"] == 0.5
    lr.setValue(0.25)  # the same field again: merges into one undo step
    panel.epochs.setValue(42)
    panel.clip_on.setChecked(True)
    assert doc.graph.training["epochs"] == 42 and doc.graph.training["clip_norm"] == 1.0
    assert doc.modified
    doc.undo()
    doc.undo()
    assert doc.graph.training["epochs"] == 300 and "clip_norm" not in doc.graph.training
    assert panel.epochs.value() == 300  # the panel shows the document
    doc.undo()
    assert doc.graph.training["optimizer"]["lr"] == 0.1
    doc.redo()
    assert doc.graph.training["optimizer"]["lr"] == 0.25
    doc.save(path)
    assert json.loads(path.read_text())["training"]["optimizer"]["lr"] == 0.25


def test_choosing_an_optimizer_rebuilds_its_parameters_from_the_declaration(window, tmp_path):
    from engine.optim import OPTIMIZERS

    open_example(window, tmp_path, "xor")
    panel = window.training.training_panel
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("adam"))
    assert window.document.graph.training["optimizer"]["name"] == "adam"
    assert set(panel.opt_form.editors) == {p.name for p in OPTIMIZERS["adam"].params}
    panel.schedule.setCurrentIndex(panel.schedule.findData("cosine"))
    assert window.document.graph.training["schedule"]["name"] == "cosine"
    assert panel.sched_form.isVisibleTo(panel)


def test_panels_are_disabled_while_training(window, qtbot, tmp_path):
    open_example(window, tmp_path, "moons_mlp", epochs=100000, batch_size=1)
    ws = window.training
    ws.actions["train"].trigger()
    assert not ws.training_panel.body.isEnabled() and not ws.dataset_panel.body.isEnabled()
    assert commit_training(window.document, lambda b: b.update(epochs=3), "epochs") is not None  # refused
    ws.controller.stop()
    qtbot.waitUntil(lambda: not ws.controller.busy, timeout=180_000)
    assert ws.training_panel.body.isEnabled()


def test_dataset_panel_builtin_preview_and_parameters(window, qtbot, tmp_path):
    open_example(window, tmp_path, "moons_mlp")
    panel = window.training.dataset_panel
    qtbot.waitUntil(lambda: panel.dataset is not None, timeout=2000)
    assert len(panel.dataset) == 400
    xs, _ = panel.scatter.getData()
    assert len(xs) == 400
    panel.gen_form.editors["n"].setValue(100)
    assert window.document.graph.training["dataset"]["n"] == 100
    qtbot.waitUntil(lambda: panel.dataset is not None and len(panel.dataset) == 100, timeout=2000)
    assert "100" in panel.summary.text() and "50" in panel.summary.text()  # class balance 50 / 50
    panel.generator.setCurrentIndex(panel.generator.findData("sine"))
    spec = window.document.graph.training["dataset"]
    assert spec["name"] == "sine" and spec["n"] == 100
    qtbot.waitUntil(lambda: panel.dataset is not None and panel.dataset.task == "regression", timeout=2000)
    assert "Input 'x' expects" in panel.error.text()  # sine has 1 feature, the graph's Input 2
    assert panel.fix_input.isVisibleTo(panel)
    panel.fix_input.click()
    assert window.document.graph.nodes["x"].params["shape"] == (1,)
    window.document.undo()
    window.document.undo()
    assert window.document.graph.training["dataset"]["name"] == "moons"


def test_dataset_panel_file_target_preview_balance_and_errors(window, qtbot, tmp_path):
    open_example(window, tmp_path, "moons_mlp")
    rng = np.random.default_rng(0)
    points = rng.normal(size=(30, 2))
    rows = ["a,b,label"] + [f"{x:.3f},{y:.3f},{'yes' if x > y else 'no'}" for x, y in points]
    (tmp_path / "points.csv").write_text("\n".join(rows) + "\n")
    panel = window.training.dataset_panel
    panel.src_file.setChecked(True)
    panel.path.setText("points.csv")
    panel.path.editingFinished.emit()
    assert window.document.graph.training["dataset"] == {"path": "points.csv"}
    qtbot.waitUntil(lambda: panel.dataset is not None and panel.dataset.name != "moons", timeout=2000)
    assert [panel.target.itemText(i) for i in range(panel.target.count())] == ["a", "b", "label"]
    assert panel.table.rowCount() == 20 and panel.table.item(0, 2).text() in ("yes", "no")
    assert "yes" in panel.summary.text() and "no" in panel.summary.text()
    panel.target.setCurrentText("b")
    panel.target.activated.emit(1)
    assert window.document.graph.training["dataset"]["target"] == "b"
    qtbot.waitUntil(lambda: panel.dataset is None or panel.dataset.target_name == "b", timeout=2000)
    panel.path.setText("missing.csv")
    panel.path.editingFinished.emit()
    qtbot.waitUntil(lambda: "missing.csv" in panel.error.text(), timeout=2000)
    assert window.document.graph.training["dataset"]["path"] == "missing.csv"  # kept as typed
    assert panel.path.text() == "missing.csv"


def test_run_history_ghost_and_exports(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    open_example(window, tmp_path, "xor", epochs=50)
    ws = window.training
    for _ in range(2):
        ws.actions["train"].trigger()
        qtbot.waitUntil(lambda: not ws.controller.busy, timeout=180_000)
    first, second = ws.controller.runs
    assert ws.runs_panel.tree.topLevelItemCount() == 2
    ws.runs_panel.set_ghost(first)
    assert ws.gradients.ghost is first and ws.curves.ghost is first
    ws.panel_docks["gradients"].raise_()
    qtbot.waitUntil(lambda: len(ws.gradients.ghost_curves) == len(first.nodes), timeout=2000)
    out = tmp_path / "run.jsonl"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    ws.runs_panel.tree.topLevelItem(0).setSelected(True)
    ws.runs_panel._export("jsonl")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(1 for obj in lines if obj["event"] == "step") == 50
    assert lines[-1]["event"] == "finish"
    png = tmp_path / "gradients.png"
    assert ws.export_plot("gradients", str(png))
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    csv = tmp_path / "run.csv"
    assert ws.export_run(second, "csv", str(csv))
    assert len(csv.read_text().splitlines()) == 51
