"""Toolbar and window icons from the SVG files in ``studio/resources/icons``.

The SVGs are drawn with ``currentColor``; :func:`icon` substitutes the palette's text colour,
so icons stay legible in light and dark schemes (call it again after a palette change).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

RESOURCES = Path(__file__).resolve().parent / "resources"
ICONS = RESOURCES / "icons"


def stylesheet() -> str:
    path = RESOURCES / "style.qss"
    return path.read_text(encoding="utf-8") if path.exists() else ""


@lru_cache(maxsize=128)
def _render(name: str, color: str, disabled: str, size: int) -> QIcon:
    text = (ICONS / f"{name}.svg").read_text(encoding="utf-8")
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
    if not (ICONS / f"{name}.svg").exists():
        return QIcon()
    pal = QGuiApplication.palette()
    color = pal.color(QPalette.ColorRole.WindowText).name()
    disabled = pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText).name()
    return _render(name, color, disabled, size)


def app_icon() -> QIcon:
    path = ICONS / "app.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
