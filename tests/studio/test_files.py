"""Files and the window around them: open, save (atomic), round trip, unsaved-changes
question, failed loads, templates, recent files, remembered layout, About, theme, main()."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from engine.graph import Graph
from studio import edits, files, theme
from studio.main_window import MainWindow
from tests.studio.conftest import close_quietly

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
XOR_FILE = EXAMPLES / "xor.json"
Button = QMessageBox.StandardButton


@pytest.fixture
def xor_copy(tmp_path) -> Path:
    path = tmp_path / "xor.json"
    path.write_text(XOR_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def answer(monkeypatch, button):
    asked = []

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return button
    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def save_dialog_returns(monkeypatch, path: Path):
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(path), "")))


def test_open_lays_out_a_file_without_positions_and_titles_the_window(window, xor_copy):
    assert window.files.open(xor_copy)
    doc = window.document
    assert doc.graph == Graph.load(xor_copy) and doc.path == xor_copy
    for e in doc.graph.edges:  # auto-layout: every wire points right
        assert doc.position(e.src)[0] < doc.position(e.dst)[0]
    assert window.windowTitle().startswith("xor.json[*]")
    assert not window.isWindowModified()
    edits.set_param(doc, "h", "units", 4)
    assert window.isWindowModified()


def test_save_then_reopen_round_trip(window, xor_copy, tmp_path, monkeypatch):
    window.files.open(xor_copy)
    doc = window.document
    edits.set_param(doc, "h", "units", 8)
    edits.move(doc, {"o": (1000.0, 200.0)})
    target = tmp_path / "sub" / "mine"
    target.parent.mkdir()
    save_dialog_returns(monkeypatch, target)
    assert window.actions["save_as"].trigger() is None and doc.path == target.with_suffix(".json")
    assert not doc.modified and window.windowTitle().startswith("mine.json")
    other = MainWindow()
    try:
        other.files.open(doc.path)
        assert other.document.graph.to_dict() == doc.graph.to_dict()  # positions included
        assert other.document.position("o") == (1000.0, 200.0)
    finally:
        close_quietly(other)


def test_save_is_atomic_a_failed_write_leaves_the_old_file_and_the_document_modified(
        window, xor_copy, monkeypatch, dialogs):
    window.files.open(xor_copy)
    original = xor_copy.read_bytes()
    edits.set_param(window.document, "h", "units", 9)

    def broken_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken_replace)
    assert not window.files.save()
    assert xor_copy.read_bytes() == original
    assert [p.name for p in xor_copy.parent.iterdir() if p.name.startswith(".xor")] == []  # no debris
    assert window.document.modified
    assert dialogs.kinds() == ["warning"] and "disk full" in dialogs.calls[0][2]
    monkeypatch.undo()
    assert window.files.save()
    assert Graph.load(xor_copy).node("h").params["units"] == 9


def test_unsaved_changes_cancel_keeps_the_document(window, xor_copy, monkeypatch):
    window.files.open(xor_copy)
    edits.set_param(window.document, "h", "units", 5)
    asked = answer(monkeypatch, Button.Cancel)
    assert not window.files.new()
    assert asked and "xor.json" in asked[0]
    assert window.document.graph.node("h").params["units"] == 5 and window.document.modified
    window.close()
    assert window.isVisible()  # closing was cancelled too


def test_unsaved_changes_discard_and_save(window, xor_copy, monkeypatch):
    window.files.open(xor_copy)
    edits.set_param(window.document, "h", "units", 5)
    answer(monkeypatch, Button.Save)
    assert window.files.new()
    assert Graph.load(xor_copy).node("h").params["units"] == 5  # saved before replacing
    assert window.document.graph.nodes == {}
    edits.add_node(window.document, "Dense")
    answer(monkeypatch, Button.Discard)
    assert window.files.open(xor_copy)
    assert "dense1" not in window.document.graph.nodes


def test_no_question_when_nothing_changed(window, xor_copy):
    window.files.open(xor_copy)
    assert window.files.new()  # the autouse fixture fails the test if a question is asked


def test_a_file_that_fails_to_load_shows_the_engine_message_and_keeps_the_document(
        window, xor_copy, tmp_path, dialogs):
    window.files.open(xor_copy)
    edits.set_param(window.document, "h", "units", 6)
    before = window.document.graph.to_dict()
    for name, text in [("bad.json", "{not json"), ("future.json", json.dumps(
            {"format": "backprop-studio.graph", "version": 99, "nodes": [], "edges": []}))]:
        bad = tmp_path / name
        bad.write_text(text)
        with pytest.raises(Exception) as err:
            Graph.load(bad)
        dialogs.calls.clear()
        window.document.undo_stack.setClean()  # (no question: this is about the failure)
        assert not window.files.open(bad)
        assert dialogs.kinds() == ["warning"] and dialogs.calls[0][2] == str(err.value)
        assert window.document.graph.to_dict() == before and window.document.path == xor_copy
    assert window.document.undo_stack.count() == 1  # history intact


def test_new_from_template_offers_every_example(window):
    menu = window.menus["templates"]
    menu.aboutToShow.emit()
    titles = [a.text() for a in menu.actions()]
    assert titles == [p.stem.replace("_", " ") for p in sorted(EXAMPLES.glob("*.json"))]
    assert titles, "examples/ should hold graph files"
    menu.actions()[titles.index("xor")].trigger()
    assert window.document.path is None and window.document.graph == Graph.load(XOR_FILE)
    assert window.windowTitle().startswith("Untitled")


def test_recent_files_are_remembered_in_isolated_settings(window, xor_copy, isolated_settings):
    window.files.open(xor_copy)
    menu = window.menus["recent"]
    menu.aboutToShow.emit()
    assert menu.actions()[0].statusTip() == str(xor_copy.resolve())
    assert files.recent_files() == [str(xor_copy.resolve())]
    assert any(isolated_settings.rglob("*.ini"))


def test_dock_layout_is_remembered(window, qtbot):
    window.docks["dock_summary"].hide()
    window.close()
    again = MainWindow()
    again.show()
    qtbot.waitExposed(again)
    try:
        assert not again.docks["dock_summary"].isVisible()
        assert again.docks["dock_inspector"].isVisible()
    finally:
        close_quietly(again)


def test_add_panel_is_an_extension_point(window):
    from PySide6.QtWidgets import QLabel

    dock = window.add_panel(QLabel("loss"), "Training", "dock_training")
    assert window.docks["dock_training"] is dock
    assert dock.toggleViewAction() in window.menus["panels"].actions()


def test_about_box_lists_versions(window, dialogs):
    window.actions["about"].trigger()
    kind, title, text = dialogs.calls[0]
    assert kind == "about"
    for name in ("Backprop Studio", "Qt", "PySide6", "NumPy", "Numba", "Python"):
        assert name in text


def test_theme_follows_the_palette(window):
    try:
        window.set_theme("dark")
        assert theme.is_dark() and theme.colors().background.lightness() < 80
        window.set_theme("light")
        assert not theme.is_dark() and theme.colors().background.lightness() > 200
    finally:
        window.set_theme("system")


def test_main_opens_the_file_given_on_the_command_line(monkeypatch, xor_copy):
    from studio import app as app_module

    monkeypatch.setattr(QApplication, "exec", lambda *a: 0)
    assert app_module.main(["backprop-studio", str(xor_copy)]) == 0
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    opened = [w for w in windows if w.document.path == xor_copy]
    try:
        assert len(opened) == 1 and set(opened[0].document.graph.nodes) == {"x", "h", "a", "o"}
    finally:
        for w in opened:
            close_quietly(w)


def test_python_m_studio_entry_point():
    out = subprocess.run([sys.executable, "-m", "studio", "--version"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.returncode == 0 and "backprop-studio" in out.stdout
