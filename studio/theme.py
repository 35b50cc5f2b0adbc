"""Colours and the light/dark theme, all derived from the application palette.

Canvas items never hard-code a foreground or background: they ask :func:`colors` at paint
time, so switching the system (or the View menu's) light/dark scheme repaints everything
correctly. Only the category hues are fixed; they are chosen to read on both backgrounds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

#: Header colour per layer category; unknown future categories get a stable hashed hue.
CATEGORY_COLORS = {
    "io": "#2a9d8f",
    "dense": "#3d7fd9",
    "activation": "#e07a3f",
    "regularisation": "#8e6bbf",
    "merge": "#3f9e55",
    "reshape": "#9a8450",
    "conv": "#d0497a",
    "recurrent": "#c29b1c",
}

THEMES = ("system", "light", "dark")


def category_color(category: str) -> QColor:
    """The header colour of a category (stable for categories added later)."""
    if category in CATEGORY_COLORS:
        return QColor(CATEGORY_COLORS[category])
    hue = zlib.crc32(category.encode()) % 360
    return QColor.fromHsv(hue, 150, 200)


def rank_color(rank: int | None) -> QColor:
    """Port colour by tensor rank: flat features, sequences, images, unknown."""
    return QColor({1: "#5aa9e6", 2: "#f2b134", 3: "#d0497a"}.get(rank or 0, "#8a8f98"))


def is_dark(palette: QPalette | None = None) -> bool:
    palette = palette or QGuiApplication.palette()
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


@dataclass(frozen=True)
class CanvasColors:
    background: QColor
    grid_minor: QColor
    grid_major: QColor
    card: QColor
    card_border: QColor
    text: QColor
    text_dim: QColor
    header_text: QColor
    selection: QColor
    wire: QColor
    wire_selected: QColor
    label_bg: QColor
    label_text: QColor
    error: QColor
    ok: QColor


def colors() -> CanvasColors:
    """Canvas colours for the current application palette."""
    pal = QGuiApplication.palette()
    dark = is_dark(pal)
    base = pal.color(QPalette.ColorRole.Base)
    text = pal.color(QPalette.ColorRole.Text)
    highlight = pal.color(QPalette.ColorRole.Highlight)
    if dark:
        background = base.darker(115) if base.lightness() > 20 else QColor("#1b1d21")
        card = QColor(background).lighter(175)
        grid_minor, grid_major = background.lighter(125), background.lighter(150)
        wire = QColor("#9aa3ad")
        label_bg = QColor(background).lighter(140)
    else:
        background = QColor("#f4f5f7") if base.lightness() > 240 else base.darker(103)
        card = QColor("#ffffff")
        grid_minor, grid_major = background.darker(106), background.darker(114)
        wire = QColor("#6b7480")
        label_bg = QColor("#ffffff")
    dim = QColor(text)
    dim.setAlpha(150)
    border = QColor(text)
    border.setAlpha(45)
    return CanvasColors(
        background=background, grid_minor=grid_minor, grid_major=grid_major, card=card,
        card_border=border, text=text, text_dim=dim, header_text=QColor("#ffffff"),
        selection=highlight, wire=wire, wire_selected=highlight, label_bg=label_bg,
        label_text=text, error=QColor("#e5484d"), ok=QColor("#3f9e55"),
    )


def _palette(dark: bool) -> QPalette:
    """A complete light or dark palette for when the user overrides the system scheme."""
    p = QPalette()
    if dark:
        window, base, alt, text, button = "#2b2d31", "#1f2024", "#26282c", "#e6e6e6", "#33363b"
        disabled = "#7d8087"
    else:
        window, base, alt, text, button = "#eff0f2", "#ffffff", "#f5f6f7", "#1d1f23", "#f5f6f7"
        disabled = "#9a9ca1"
    roles = {
        QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: alt,
        QPalette.ColorRole.ToolTipBase: base, QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: button,
        QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.BrightText: "#ff5555",
        QPalette.ColorRole.Highlight: "#3d7fd9", QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#5aa9e6", QPalette.ColorRole.PlaceholderText: disabled,
        QPalette.ColorRole.Light: QColor(button).lighter(130).name(),
        QPalette.ColorRole.Midlight: QColor(button).lighter(115).name(),
        QPalette.ColorRole.Mid: QColor(button).darker(130).name(),
        QPalette.ColorRole.Dark: QColor(button).darker(160).name(),
        QPalette.ColorRole.Shadow: "#000000",
    }
    for role, value in roles.items():
        p.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(disabled))
    return p


_mode = "system"
_following: set[int] = set()


def current_mode() -> str:
    """The mode last applied: "system", "light" or "dark"."""
    return _mode


def platform_scheme() -> Qt.ColorScheme:
    """What the desktop asks for (Unknown where the platform does not say, e.g. offscreen)."""
    return QGuiApplication.styleHints().colorScheme()


def wants_dark(mode: str, scheme: Qt.ColorScheme, palette_dark: bool) -> bool:
    """Whether ``mode`` means a dark window, given the platform's scheme and palette."""
    if mode in ("light", "dark"):
        return mode == "dark"
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return palette_dark  # the platform says nothing: its palette decides


def apply_theme(mode: str) -> None:
    """Follow the platform (``"system"``) or force ``"light"``/``"dark"``, for the whole window.

    Forcing first asks the platform (Qt ≥ 6.8 can switch native themes); where the platform
    cannot (offscreen, older desktops) an explicit palette is installed instead. "System"
    keeps following the desktop when it switches later. Then the style sheet is applied
    again: widgets polished by a style sheet keep the palette they were polished with
    (canvas, panels and plots stayed light, toolbar texts took the wrong colours).
    """
    global _mode
    app = QGuiApplication.instance()
    if app is None:
        return
    _mode = mode if mode in THEMES else "system"
    hints = QGuiApplication.styleHints()
    if id(hints) not in _following and hasattr(hints, "colorSchemeChanged"):
        _following.add(id(hints))
        hints.colorSchemeChanged.connect(lambda *_: apply_theme(_mode) if _mode == "system" else None)
    if _mode == "system":
        if hasattr(hints, "unsetColorScheme"):
            hints.unsetColorScheme()
    elif hasattr(hints, "setColorScheme"):
        hints.setColorScheme(Qt.ColorScheme.Dark if _mode == "dark" else Qt.ColorScheme.Light)
    QGuiApplication.setPalette(QPalette())  # the platform's own palette for its scheme
    dark = wants_dark(_mode, platform_scheme(), is_dark(QGuiApplication.palette()))
    if is_dark(QGuiApplication.palette()) != dark:
        QGuiApplication.setPalette(_palette(dark))
    sheet = getattr(app, "styleSheet", lambda: "")()
    if sheet:
        app.setStyleSheet(sheet)  # re-polish every widget with the new palette
