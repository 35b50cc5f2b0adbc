"""View → Theme: the whole window follows (canvas, panels, plots), enabled actions read better than
disabled ones, and "System" follows the desktop."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage

from studio import theme


@pytest.fixture
def restore_theme():
    yield
    theme.apply_theme("system")


def lightness(widget, x: int | None = None, y: int | None = None) -> np.ndarray:
    """The widget as rendered, as an array of lightness values (0..255)."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    w, h = image.width(), image.height()
    arr = np.frombuffer(image.constBits(), np.uint8).reshape(h, image.bytesPerLine() // 4, 4)[:, :w, :3]
    rgb = arr[..., ::-1].astype(float)  # BGRA in memory
    return 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]


def background(widget) -> float:
    return float(np.median(lightness(widget)))


def text_contrast(button) -> float:
    """How far the button's brightest-differing pixels (its text and icon) stand from its background."""
    lum = lightness(button)
    return float(np.percentile(np.abs(lum - np.median(lum)), 98))


def check_toolbar(window) -> None:
    ws = window.training
    tb = ws.toolbar
    enabled, disabled = tb.widgetForAction(ws.actions["train"]), tb.widgetForAction(ws.actions["stop"])
    assert ws.actions["train"].isEnabled() and not ws.actions["stop"].isEnabled()
    assert text_contrast(enabled) > text_contrast(disabled) + 30, (text_contrast(enabled), text_contrast(disabled))


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000)])
def test_dark_theme_darkens_the_whole_window(window, qtbot, restore_theme, size):
    window.resize(*size)
    ws = window.training
    ws.panel_docks["curves"].raise_()
    qtbot.wait(30)
    assert background(window.view.viewport()) > 180  # light to begin with
    check_toolbar(window)
    window.actions["theme_dark"].trigger()
    qtbot.wait(30)
    assert theme.is_dark()
    assert background(window.view.viewport()) < 70, "the canvas stayed light"
    assert background(ws.curves.glw) < 70, "the plots stayed light"
    assert background(window.palette_panel.tree.viewport()) < 70, "the layer palette stayed light"
    assert background(window.inspector) < 90, "the inspector stayed light"
    check_toolbar(window)
    header = lightness(window.palette_panel.tree.viewport())[:18, :120]
    assert header.max() > 150, "category headers are dark on dark"
    window.actions["theme_light"].trigger()
    qtbot.wait(30)
    assert background(window.view.viewport()) > 180 and background(ws.curves.glw) > 180


def test_system_follows_the_desktop(window, qtbot, restore_theme, monkeypatch):
    scheme = {"now": Qt.ColorScheme.Light}
    monkeypatch.setattr(theme, "platform_scheme", lambda: scheme["now"])
    window.actions["theme_system"].trigger()
    assert not theme.is_dark()
    scheme["now"] = Qt.ColorScheme.Dark
    QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)  # the desktop switches
    qtbot.wait(30)
    assert theme.is_dark() and background(window.view.viewport()) < 70
    window.actions["theme_light"].trigger()  # forced: the desktop no longer decides
    QGuiApplication.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    qtbot.wait(30)
    assert not theme.is_dark()
