"""Help ▸ User guide (the docs in the app) and Help ▸ Keyboard shortcuts (generated from the actions)."""

from __future__ import annotations

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QKeySequence

from studio.help import ShortcutsDialog, UserGuide, docs_dir, guide_pages, shortcut_rows


def native(keys: str) -> str:
    return QKeySequence(keys).toString(QKeySequence.SequenceFormat.NativeText)


def test_shortcuts_table_comes_from_the_actions(window):
    rows = {(name, menu): keys for name, keys, menu in shortcut_rows(window)}
    assert rows[("Train", "Training")] == native("F5")
    assert rows[("User Guide", "Help")] == native("F1")
    assert rows[("Show Lessons", "Lessons")] == native("Ctrl+Shift+L")
    assert native("Delete") in rows[("Delete", "Edit")]  # every sequence of an action is listed
    assert ("Snap to Grid", "View") not in rows  # no shortcut, no row
    extra = QAction("Frobnicate", window)
    extra.setShortcut(QKeySequence("Ctrl+Alt+J"))
    window.menus["view"].addAction(extra)
    assert ("Frobnicate", native("Ctrl+Alt+J"), "View") in shortcut_rows(window)
    dialog = ShortcutsDialog(window)
    cells = {dialog.table.item(r, 0).text() for r in range(dialog.table.rowCount())}
    assert {"Train", "User Guide", "Frobnicate"} <= cells


def test_f1_opens_the_user_guide_with_the_docs(qtbot, window):
    window.actions["user_guide"].trigger()
    guide = window._help_dialogs["guide"]
    assert isinstance(guide, UserGuide) and guide.isVisible()
    assert guide.pages == guide_pages(docs_dir()) and len(guide.pages) >= 5
    assert guide.pages[0].stem == "studio"  # the studio's own page first
    assert "Lessons" in guide.browser.toPlainText()
    guide.follow(QUrl("lessons.md"))  # a link to another page opens it here
    assert guide.current.name == "lessons.md"
    assert "backprop lesson list" in guide.browser.toPlainText()
    assert "<!--" not in guide.browser.toPlainText()


def test_guide_without_docs_says_where_they_are(qtbot, tmp_path):
    guide = UserGuide(None, folder=tmp_path / "missing")
    qtbot.addWidget(guide)
    assert "No user guide found" in guide.browser.toPlainText()
