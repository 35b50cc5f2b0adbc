"""``backprop-studio --self-check``: every icon the studio references loads, the style sheet
is applied, templates/lessons/guide are found; and it fails, naming what is missing, when the
resources are not there (what a broken wheel looks like)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication

from engine import resources
from studio import app as app_module
from studio.icons import icon_path
from studio.main_window import MainWindow
from studio.self_check import self_check
from studio.training.workspace import ICONS as TRAINING_ICONS
from tests.studio.conftest import close_quietly


@pytest.fixture
def started(monkeypatch, capsys):
    """Run ``main([... --self-check])`` in this process; (exit status, stdout); windows closed after."""
    monkeypatch.setattr(QApplication, "exec", lambda *a: 0)
    sheet = QApplication.instance().styleSheet()
    before = set(QApplication.topLevelWidgets())

    def run(*args: str) -> tuple[int, str]:
        status = app_module.main(["backprop-studio", *args, "--self-check"])
        return status, capsys.readouterr().out

    yield run
    for widget in set(QApplication.topLevelWidgets()) - before:
        if isinstance(widget, MainWindow):
            close_quietly(widget)
    QApplication.instance().setStyleSheet(sheet)


def test_every_icon_the_studio_references_is_a_file(window):
    names = {str(act.property("icon_name")) for act in window.findChildren(QAction) if act.property("icon_name")}
    names |= set(TRAINING_ICONS.values()) | {"app"}
    assert {"new", "open", "save", "play", "stop", "fit"} <= names
    for name in sorted(names):
        assert icon_path(name).is_file(), name


def test_self_check_passes_on_the_checkout(started):
    status, out = started()
    assert status == 0, out
    assert out.startswith("self-check ok: ") and "from the checkout" in out
    n_icons = int(out.split("self-check ok: ")[1].split(" icons")[0])
    assert n_icons >= 15


def test_self_check_names_what_a_broken_installation_lacks(started, tmp_path, monkeypatch):
    monkeypatch.setattr(resources, "_BESIDE_ENGINE", tmp_path)  # no resources/, examples/, docs/ here
    resources.layout.cache_clear()
    try:
        status, out = started()
    finally:
        resources.layout.cache_clear()
    assert status == 1
    assert "self-check: icon 'play' of action 'Train' did not load (resources/icons/play.svg)" in out
    assert "the window icon did not load" in out
    assert "the style sheet resources/styles/studio.qss is missing or empty" in out
    assert "no example graphs (examples/*.json) found" in out and "no user guide pages" in out
    assert "lessons (resources/lessons/*.toml): " in out and "no lessons folder" in out
    assert out.strip().splitlines()[-1].startswith("self-check FAILED: ")


def test_self_check_sees_a_style_sheet_that_was_not_applied(window):
    app = QApplication.instance()
    sheet = app.styleSheet()
    app.setStyleSheet("")
    try:
        problems, _summary = self_check(window)
    finally:
        app.setStyleSheet(sheet)
    assert problems == ["the style sheet resources/styles/studio.qss was not applied to the application"]
