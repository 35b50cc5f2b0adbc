"""The status bar's message area: one elided line that never runs into the run state, an icon
for warnings, and only glyphs every desktop font has.

``QStatusBar.showMessage`` clips a long message at the first permanent widget without an
ellipsis ("…Lower the lea✗ diverged"). :class:`StatusMessage` sits in the bar's stretching
area instead: it elides with "…", keeps the full text in its tooltip, and clears itself after
a timeout. Warnings get the style's warning icon rather than a "⚠" character, which many
fonts lack (it showed as a missing-glyph box).
"""

from __future__ import annotations

import html
import re

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QStyle, QWidget

#: Beyond ASCII and Latin-1, the characters of WGL4 (the glyph list every Windows, macOS and
#: Linux UI font covers) that the studio's chrome uses.
PORTABLE_EXTRA = frozenset("–—‘’“”•…‹›€←↑→↓↔−∞≈≠≤≥■□▪▫▲►▼◄○●")


def is_portable(text: str) -> bool:
    """Whether every character of ``text`` (HTML tags and entities removed) is in every UI font."""
    plain = html.unescape(re.sub(r"<[^>]*>", "", text))
    return all(ch in "\n\t" or 32 <= ord(ch) < 127 or 0xA0 <= ord(ch) <= 0xFF or ch in PORTABLE_EXTRA
               for ch in plain)


def dot(color: str | QColor, text: str) -> str:
    """Rich text: a coloured ● (in every font) before ``text``."""
    return f"<span style='color:{QColor(color).name()}'>●</span> {html.escape(text)}"


class ElidedLabel(QLabel):
    """A one-line label that shows as much of its text as fits, ending in "…"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        one_line = " ".join(self.full_text.split())
        shown = QFontMetrics(self.font()).elidedText(one_line, Qt.TextElideMode.ElideRight,
                                                     max(0, self.width() - 2))
        if shown != self.text():
            self.setText(shown)


class StatusMessage(QWidget):
    """The message area of the status bar (see the module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.icon = QLabel()
        size = 14
        warning = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self._warning = warning.pixmap(size, size)
        if self._warning.isNull():  # a style without the icon: a small amber dot
            self._warning = _dot_pixmap(QColor("#e0a030"), size)
        self.icon.setFixedSize(size, size)
        self.label = ElidedLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 12, 0)  # the gap keeps it off the run state on its right
        layout.setSpacing(5)
        layout.addWidget(self.icon)
        layout.addWidget(self.label, 1)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.clear)
        self.warning = False
        self.icon.hide()

    @property
    def text(self) -> str:
        """The whole message (the label may show it elided)."""
        return self.label.full_text

    def show_message(self, text: str, timeout: int = 5000, warning: bool = False) -> None:
        self.warning = warning
        self.icon.setPixmap(self._warning)
        self.icon.setVisible(warning)
        self.label.set_full_text(text)
        if timeout > 0:
            self._timer.start(timeout)
        else:
            self._timer.stop()

    def clear(self) -> None:
        self._timer.stop()
        self.warning = False
        self.icon.hide()
        self.label.set_full_text("")


def _dot_pixmap(color: QColor, size: int) -> QPixmap:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(color)
    p.drawEllipse(2, 2, size - 4, size - 4)
    p.end()
    return pix
