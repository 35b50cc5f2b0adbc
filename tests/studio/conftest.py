"""Studio tests run offscreen, with their own settings, and never block on a dialog.

``QT_QPA_PLATFORM`` is set before anything imports Qt. Settings go to a per-test temporary
INI file under a test organisation name, so the user's layout and recent files are never
read or written. Every modal dialog (message boxes, file dialogs, menus) fails the test
unless the test replaces it with ``monkeypatch``.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import QCoreApplication, QSettings  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path):
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    QCoreApplication.setOrganizationName("BackpropStudioTests")
    QCoreApplication.setApplicationName("studio-tests")
    yield tmp_path / "settings"


class DialogCalls:
    """Records replaced dialogs: ``calls`` holds (kind, title, text)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture(autouse=True)
def dialogs(monkeypatch):
    """Message boxes are recorded (warnings) or refused (questions: a test must answer them)."""
    calls = DialogCalls()

    def record(kind):
        def fn(parent, title, text, *args, **kwargs):
            calls.calls.append((kind, title, text))
            return QMessageBox.StandardButton.Ok
        return staticmethod(fn)

    def unexpected(*args, **kwargs):
        raise AssertionError(f"unexpected modal dialog {args[1:3]!r}")

    for kind in ("warning", "critical", "information", "about"):
        monkeypatch.setattr(QMessageBox, kind, record(kind))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(unexpected))
    monkeypatch.setattr(QMessageBox, "exec", unexpected)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(unexpected))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(unexpected))
    monkeypatch.setattr(QMenu, "exec", unexpected)
    return calls


@pytest.fixture
def window(qtbot):
    """A shown main window with an empty document."""
    from studio.main_window import MainWindow
    from tests.studio.helpers import settle_layout

    win = MainWindow()
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    settle_layout(win)
    yield win
    close_quietly(win)


def close_quietly(win) -> None:
    """Close without the unsaved-changes question (the test is over)."""
    try:
        win.document.undo_stack.setClean()
        win.close()
    except RuntimeError:  # already deleted by the test
        pass
