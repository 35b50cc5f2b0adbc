"""Toolbar and window icons from the SVG files in ``resources/icons``, and the style sheet
``resources/styles/studio.qss`` (both found by :mod:`engine.resources`, from a checkout or a wheel).

The SVGs are drawn with ``currentColor``; :func:`icon` substitutes the palette's text colour,
so icons stay legible in light and dark schemes (call it again after a palette change).
A missing file never stops the studio: the icon is empty, the style the system's, and one line
on stderr names the file (``backprop-studio --self-check`` fails on it; .ci/wheel_smoke.sh).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from engine.resources import ResourceError, resource_path

STYLE_SHEET = ("styles", "studio.qss")


def icon_path(name: str) -> Path:
    """``resources/icons/<name>.svg``; ResourceError naming it if it is missing."""
    return resource_path("icons", f"{name}.svg")


_warned: set[str] = set()


def _warn_missing(kind: str, message: str) -> None:
    """One line on stderr per kind of missing file (not one per icon)."""
    if kind not in _warned:
        _warned.add(kind)
        print(f"backprop-studio: {message}", file=sys.stderr)


def _found(name: str) -> Path | None:
    try:
        return icon_path(name)
    except ResourceError as err:
        _warn_missing("icon", f"{err} (icons that are missing stay blank)")
        return None


def stylesheet() -> str:
    """The studio's style sheet; "" (the plain system style) if the file is missing."""
    try:
        return resource_path(*STYLE_SHEET).read_text(encoding="utf-8")
    except (ResourceError, OSError, UnicodeDecodeError) as err:
        _warn_missing("style", f"{err} (using the plain system style)")
        return ""


@lru_cache(maxsize=128)
def _render(name: str, color: str, disabled: str, size: int) -> QIcon:
    text = icon_path(name).read_text(encoding="utf-8")
    out = QIcon()
    for col, mode in ((color, QIcon.Mode.Normal), (disabled, QIcon.Mode.Disabled)):
        for scale in (1, 2):
            renderer = QSvgRenderer(QByteArray(text.replace("currentColor", col).encode()))
            pix = QPixmap(QSize(size * scale, size * scale))
            pix.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pix)
            renderer.render(painter)
            painter.end()
            pix.setDevicePixelRatio(scale)
            out.addPixmap(pix, mode)
    return out


def icon(name: str, size: int = 20) -> QIcon:
    """A themed icon; an empty icon if the file is missing (never an exception)."""
    if _found(name) is None:
        return QIcon()
    pal = QGuiApplication.palette()
    color = pal.color(QPalette.ColorRole.WindowText).name()
    disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).name()
    return _render(name, color, disabled, size)


def app_icon() -> QIcon:
    path = _found("app")
    return QIcon(str(path)) if path is not None else QIcon()
