"""Help ▸ User guide (F1): the project's docs/*.md read in the app; Help ▸ Keyboard shortcuts.

The guide is the Markdown of ``docs/`` (found in a checkout and an installed wheel alike by
:func:`engine.resources.docs_dir`), shown in a QTextBrowser; links between the pages open in
the same browser, images come from ``docs/images``. If an installation lacks ``docs/`` the
guide says where the documentation is instead of showing nothing.

The shortcuts table is generated from the window's actual QActions (text, every key sequence,
the menu that holds it), so it cannot drift from what the keys do.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.resources import docs_dir

PROJECT_URL = "docs/ in the Backprop Studio source repository"
FIRST_PAGES = ("studio", "lessons", "graph-format", "training", "layers", "datasets", "cli", "export", "engine")


def guide_pages(folder: Path | None = None) -> list[Path]:
    """The Markdown pages of the guide, the studio's own page first."""
    folder = folder or docs_dir()
    pages = sorted(folder.glob("*.md")) if folder.is_dir() else []
    rank = {name: i for i, name in enumerate(FIRST_PAGES)}
    return sorted(pages, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def page_title(path: Path) -> str:
    """The page's first heading, else its file name."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].replace("`", "").strip()
    except (OSError, UnicodeDecodeError):
        pass
    return path.stem


class UserGuide(QDialog):
    """The docs as a small help browser: page list left, rendered Markdown right."""

    def __init__(self, parent: QWidget | None = None, folder: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("User guide — Backprop Studio")
        self.folder = folder or docs_dir()
        self.pages = guide_pages(self.folder)
        self.index = QListWidget()
        self.index.setMaximumWidth(260)
        self.index.setWordWrap(True)
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self.follow)
        self.browser.setSearchPaths([str(self.folder)])
        for path in self.pages:
            item = QListWidgetItem(page_title(path))
            item.setData(Qt.ItemDataRole.UserRole, str(path))
            self.index.addItem(item)
        self.index.currentItemChanged.connect(
            lambda item, _old: self.show_page(Path(item.data(Qt.ItemDataRole.UserRole))) if item else None)
        split = QSplitter()
        split.addWidget(self.index)
        split.addWidget(self.browser)
        split.setStretchFactor(1, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(buttons)
        self.resize(980, 680)
        self.current: Path | None = None
        if self.pages:
            self.index.setCurrentRow(0)
        else:
            self.browser.setHtml(f"<h2>No user guide found</h2><p>The guide is the Markdown of "
                                 f"<code>{html.escape(str(self.folder))}</code>, which this installation does not "
                                 f"have (reinstall Backprop Studio to get it back). Read it at {PROJECT_URL}.</p>")

    def show_page(self, path: Path, anchor: str = "") -> bool:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            self.browser.setHtml(f"<p>Cannot read {html.escape(str(path))}: {html.escape(str(err))}</p>")
            return False
        self.current = path
        self.browser.setSearchPaths([str(path.parent)])
        self.browser.setMarkdown(_strip_comments(text))
        if anchor:
            self.browser.scrollToAnchor(anchor)
        for i in range(self.index.count()):
            if self.index.item(i).data(Qt.ItemDataRole.UserRole) == str(path):
                self.index.blockSignals(True)
                self.index.setCurrentRow(i)
                self.index.blockSignals(False)
        return True

    def follow(self, url: QUrl) -> None:
        """A link: another page of the guide opens here, a web address in the browser."""
        if url.scheme() in ("http", "https", "mailto"):
            from PySide6.QtGui import QDesktopServices

            QDesktopServices.openUrl(url)
            return
        target = url.path()
        base = self.current.parent if self.current else self.folder
        path = (base / target).resolve() if target else self.current
        if path is not None and path.suffix == ".md" and path.exists():
            self.show_page(path, url.fragment())
        elif not target and url.fragment():
            self.browser.scrollToAnchor(url.fragment())


def _strip_comments(markdown: str) -> str:
    """Hide the generators' ``<!-- … -->`` markers (Qt would print them)."""
    return re.sub(r"<!--.*?-->", "", markdown, flags=re.S)


# ---- shortcuts -------------------------------------------------------------------------------------
def _menu_paths(window: Any) -> dict[QAction, str]:
    """Every action reachable from the menu bar, with its menu path ("Edit", "View ▸ Panels")."""
    paths: dict[QAction, str] = {}

    def walk(menu: QMenu, path: str) -> None:
        for act in menu.actions():
            sub = act.menu()
            if sub is not None:
                walk(sub, f"{path} ▸ {_clean(sub.title())}")
            elif not act.isSeparator():
                paths.setdefault(act, path)

    for act in window.menuBar().actions():
        if act.menu() is not None:
            walk(act.menu(), _clean(act.menu().title()))
    return paths


def _clean(text: str) -> str:
    text = text.replace("&&", "\x00").replace("&", "").replace("\x00", "&").replace("…", "")
    return re.sub(r"^[^\w(]+", "", text).strip()  # "▶ Train" → "Train": the glyph is the toolbar's


def shortcut_rows(window: Any) -> list[tuple[str, str, str]]:
    """(action, keys, menu) for every action of the window that has a shortcut, in menu order."""
    for menu in window.findChildren(QMenu):
        menu.aboutToShow.emit()  # menus filled on demand (Lessons) fill now, so their actions are found
    paths = _menu_paths(window)
    seen: set[int] = set()
    rows = []
    for act in [*paths, *QWidget.actions(window), *window.findChildren(QAction)]:
        if id(act) in seen or not act.shortcuts():
            continue
        seen.add(id(act))
        keys = ", ".join(k for k in (s.toString(QKeySequence.SequenceFormat.NativeText) for s in act.shortcuts()) if k)
        if not keys:  # a standard key this platform does not bind
            continue
        rows.append((_clean(act.text()), keys, paths.get(act, "(canvas)")))
    return rows


class ShortcutsDialog(QDialog):
    """A table of the window's keyboard shortcuts (generated, see :func:`shortcut_rows`)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts — Backprop Studio")
        rows = shortcut_rows(window)
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Command", "Keys", "Menu"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        self.resize(560, 620)


def install_help(window: Any) -> None:
    """Help ▸ User guide (F1) and Help ▸ Keyboard shortcuts, above About."""
    menu = window.menus["help"]
    first = menu.actions()[0] if menu.actions() else None
    guide = QAction("&User Guide", window)
    guide.setShortcut(QKeySequence(QKeySequence.StandardKey.HelpContents))
    if guide.shortcut().isEmpty():
        guide.setShortcut(QKeySequence("F1"))
    guide.setStatusTip("Read the documentation (docs/) in the app")
    guide.triggered.connect(lambda: _show(window, "guide", lambda: UserGuide(window)))
    keys = QAction("&Keyboard Shortcuts", window)
    keys.setStatusTip("Every keyboard shortcut of this window")
    keys.triggered.connect(lambda: _show(window, "keys", lambda: ShortcutsDialog(window)))
    for act in (guide, keys):
        window.addAction(act)
        menu.insertAction(first, act)
    menu.insertSeparator(first)
    window.actions["user_guide"], window.actions["shortcuts"] = guide, keys


def _show(window: Any, key: str, make: Any) -> QDialog:
    """One non-modal dialog of each kind per window, brought forward when asked again."""
    dialogs = getattr(window, "_help_dialogs", None)
    if dialogs is None:
        dialogs = {}
        window._help_dialogs = dialogs
    dialog = dialogs.get(key)
    if dialog is None or key == "keys":
        if dialog is not None:
            dialog.close()
        dialog = dialogs[key] = make()
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
