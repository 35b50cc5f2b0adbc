"""The main window: canvas in the middle, palette / inspector / summary / history docks,
menus, toolbar and status bar, settings, clipboard.

Extension points for later features (training panels, plots, overlays): :meth:`add_panel`
adds a dock (remembered in the layout and listed under View ▸ Panels), :meth:`add_toolbar`
and :meth:`add_menu` add controls, ``scene.node_item(id).set_tint(color)`` colours cards,
and ``document.lock(reason)`` makes every edit refuse with that reason.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QCursor, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QToolBar,
    QUndoView,
    QWidget,
)

from engine.graph import Graph
from engine.layers.base import CATEGORY_TITLES
from studio import edits, theme
from studio.about import show_about
from studio.canvas import EditorScene, EditorView, card_size
from studio.canvas.node_item import GRID
from studio.document import Document
from studio.files import FileController, forget_recent, recent_files, templates
from studio.gui_gc import collect_on_gui_thread
from studio.icons import app_icon, icon
from studio.panels.inspector import InspectorPanel
from studio.panels.palette import PalettePanel, palette_entries
from studio.panels.summary import SummaryPanel
from studio.status import StatusMessage, dot

APP_NAME = "Backprop Studio"
STATE_VERSION = 1
_open_windows: list["MainWindow"] = []


def redo_keys() -> list[QKeySequence]:
    """The platform's Redo keys plus Ctrl+Y, the Windows/Linux habit (Ctrl+Shift+Z stays)."""
    keys = list(QKeySequence.keyBindings(QKeySequence.StandardKey.Redo))
    for extra in ("Ctrl+Y", "Ctrl+Shift+Z"):
        if QKeySequence(extra) not in keys:
            keys.append(QKeySequence(extra))
    return keys


class MainWindow(QMainWindow):
    """One document in one window. See the module docstring for extension points."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        collect_on_gui_thread()
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowIcon(app_icon())
        self.setDockNestingEnabled(True)
        self.document = Document(parent=self)
        self.scene = EditorScene(self.document, self)
        self.view = EditorView(self.scene)
        self.setCentralWidget(self.view)
        self.files = FileController(self.document, self, self.show_status)
        self.actions: dict[str, QAction] = {}
        self.menus: dict[str, QMenu] = {}
        self._create_actions()
        self._create_menus()
        self._create_toolbar()
        self._create_panels()
        self._create_status_bar()
        self._connect()
        from studio.training.workspace import TrainingWorkspace  # docks, toolbar, plots, overlay

        self.training = TrainingWorkspace(self)
        from studio.import_onnx import ImportActions  # File → Import ONNX… (adopts weights like File → Open)

        self.importer = ImportActions(self)
        from studio.help import install_help
        from studio.panels.lessons_panel import install_lessons

        self.lessons = install_lessons(self)
        install_help(self)
        self._restore_settings()
        self._update_title()
        self._on_selection_changed()

    # -- construction ---------------------------------------------------------------------
    def _action(self, key: str, text: str, slot, shortcut=None, icon_name: str = "", tip: str = "",
                checkable: bool = False) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([QKeySequence(s) for s in shortcuts])
        if icon_name:
            act.setIcon(icon(icon_name))
            act.setProperty("icon_name", icon_name)
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        act.setCheckable(checkable)
        act.triggered.connect(slot)
        self.addAction(act)
        self.actions[key] = act
        return act

    def _create_actions(self) -> None:
        S = QKeySequence.StandardKey
        f, d = self.files, self.document
        self._action("new", "&New", f.new, S.New, "new", "Start an empty graph")
        self._action("new_window", "New &Window", self.new_window, "Ctrl+Shift+N", tip="Open another window")
        self._action("open", "&Open…", lambda: f.open(), S.Open, "open", "Open a graph file")
        self._action("save", "&Save", f.save, S.Save, "save", "Save the graph")
        self._action("save_as", "Save &As…", f.save_as, S.SaveAs, tip="Save the graph under a new name")
        self._action("close", "&Close Window", self.close, S.Close)
        self._action("quit", "&Quit", QApplication.closeAllWindows, S.Quit)
        self._action("undo", "&Undo", lambda: d.attempt(d.undo), S.Undo, "undo", "Undo the last edit")
        self._action("redo", "&Redo", lambda: d.attempt(d.redo), redo_keys(), "redo", "Redo")
        self._action("cut", "Cu&t", self.cut, S.Cut)
        self._action("copy", "&Copy", self.copy, S.Copy)
        self._action("paste", "&Paste", lambda: self.paste(), S.Paste)
        self._action("duplicate", "D&uplicate", self.duplicate, "Ctrl+D", "duplicate",
                     "Duplicate the selection")
        self._action("delete", "&Delete", self.delete_selection, [S.Delete, "Backspace"], "delete",
                     "Delete the selected nodes and wires")
        self._action("select_all", "Select &All", self.select_all, S.SelectAll)
        self._action("rename", "&Rename Node", self.rename_selected, "F2")
        self._action("zoom_in", "Zoom &In", self.view.zoom_in, [S.ZoomIn, "Ctrl+="], "zoom-in", "Zoom in")
        self._action("zoom_out", "Zoom &Out", self.view.zoom_out, S.ZoomOut, "zoom-out", "Zoom out")
        self._action("zoom_reset", "&Actual Size", lambda: self.view.reset_zoom(), "Ctrl+0", "zoom-reset",
                     "Zoom to 100 % (Ctrl+0)")
        self._action("fit", "&Fit to View", lambda: self.view.fit_all(), ["Home", "F"], "fit",
                     "Show the whole graph (or the selection)")
        self._action("layout", "Auto-&Layout", self.auto_layout, "Ctrl+L", "layout",
                     "Arrange the graph in columns, left to right")
        self._action("snap", "&Snap to Grid", self._on_snap_toggled, checkable=True).setChecked(True)
        self._action("about", f"&About {APP_NAME}", lambda: show_about(self))
        self._action("about_qt", "About &Qt", QApplication.aboutQt)
        for key in ("undo", "redo"):
            self.actions[key].setEnabled(False)

    def _create_menus(self) -> None:
        bar = self.menuBar()
        a = self.actions
        m = self.menus["file"] = bar.addMenu("&File")
        m.addActions([a["new"], a["new_window"]])
        self.menus["templates"] = m.addMenu("New from &Template")
        self.menus["templates"].aboutToShow.connect(self._fill_templates)
        m.addAction(a["open"])
        self.menus["recent"] = m.addMenu("Open &Recent")
        self.menus["recent"].aboutToShow.connect(self._fill_recent)
        m.addSeparator()
        m.addActions([a["save"], a["save_as"]])
        m.addSeparator()
        m.addActions([a["close"], a["quit"]])
        m = self.menus["edit"] = bar.addMenu("&Edit")
        m.addActions([a["undo"], a["redo"]])
        m.addSeparator()
        m.addActions([a["cut"], a["copy"], a["paste"], a["duplicate"], a["delete"]])
        m.addSeparator()
        m.addActions([a["select_all"], a["rename"]])
        m = self.menus["view"] = bar.addMenu("&View")
        m.addActions([a["zoom_in"], a["zoom_out"], a["zoom_reset"], a["fit"]])
        m.addSeparator()
        m.addActions([a["layout"], a["snap"]])
        m.addSeparator()
        self.menus["panels"] = m.addMenu("&Panels")
        theme_menu = m.addMenu("&Theme")
        self._theme_group = QActionGroup(self)
        for mode in theme.THEMES:
            act = theme_menu.addAction(mode.capitalize())
            act.setCheckable(True)
            act.setData(mode)
            self._theme_group.addAction(act)
            self.actions[f"theme_{mode}"] = act
        self._theme_group.triggered.connect(lambda act: self.set_theme(act.data()))
        m = self.menus["help"] = bar.addMenu("&Help")
        m.addActions([a["about"], a["about_qt"]])

    def _create_toolbar(self) -> None:
        tb = QToolBar("Main toolbar")
        tb.setObjectName("toolbar_main")
        tb.setMovable(False)
        a = self.actions
        tb.addActions([a["new"], a["open"], a["save"]])
        tb.addSeparator()
        tb.addActions([a["undo"], a["redo"]])
        tb.addSeparator()
        tb.addActions([a["duplicate"], a["delete"]])
        tb.addSeparator()
        tb.addActions([a["zoom_out"], a["zoom_in"], a["zoom_reset"], a["fit"], a["layout"]])
        self.add_toolbar(tb)

    def _create_panels(self) -> None:
        self.palette_panel = PalettePanel()
        self.inspector = InspectorPanel(self.document)
        self.summary = SummaryPanel(self.document)
        self.history = QUndoView(self.document.undo_stack)
        self.history.setEmptyLabel("Opened")
        left, right, bottom = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                               Qt.DockWidgetArea.BottomDockWidgetArea)
        self.add_panel(self.palette_panel, "Layers", "dock_palette", left)
        self.add_panel(self.inspector, "Inspector", "dock_inspector", right)
        self.add_panel(self.summary, "Summary", "dock_summary", bottom)
        history = self.add_panel(self.history, "History", "dock_history", right)
        self.splitDockWidget(self.docks["dock_inspector"], history, Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["dock_palette"], self.docks["dock_inspector"]], [210, 300],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["dock_inspector"], history], [520, 200], Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["dock_summary"]], [190], Qt.Orientation.Vertical)

    def _create_status_bar(self) -> None:
        bar = self.statusBar()
        self.message = StatusMessage()
        bar.addWidget(self.message, 1)
        self.problems_label = QLabel()
        self.zoom_label = QLabel("100%")
        self.zoom_label.setMinimumWidth(48)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar.addPermanentWidget(self.problems_label)
        bar.addPermanentWidget(self.zoom_label)

    def _connect(self) -> None:
        d, s = self.document, self.scene
        d.pathChanged.connect(self._update_title)
        d.modifiedChanged.connect(self._update_title)
        d.changed.connect(self._update_problems)
        d.editRefused.connect(lambda msg: self.show_status(msg, 10000, warning=True))
        d.lockChanged.connect(self._on_lock_changed)
        st = d.undo_stack
        st.canUndoChanged.connect(lambda ok: self.actions["undo"].setEnabled(ok and d.editable))
        st.canRedoChanged.connect(lambda ok: self.actions["redo"].setEnabled(ok and d.editable))
        st.undoTextChanged.connect(lambda t: self.actions["undo"].setText(f"&Undo {t}".strip()))
        st.redoTextChanged.connect(lambda t: self.actions["redo"].setText(f"&Redo {t}".strip()))
        s.selectionChanged.connect(self._on_selection_changed)
        s.message.connect(lambda msg: self.show_status(msg, 6000, warning=True))
        s.nodeActivated.connect(lambda _id: self.rename_selected())
        s.contextMenuRequested.connect(self._on_context_menu)
        self.view.zoomChanged.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.view.layerDropped.connect(self._on_layer_dropped)
        self.palette_panel.addRequested.connect(self.add_layer_at_center)
        self.summary.nodeClicked.connect(self._on_summary_clicked)
        self.inspector.refused.connect(lambda msg: self.show_status(msg, 10000, warning=True))
        self.files.opened.connect(self._on_opened)
        self._update_problems()

    # -- extension points ------------------------------------------------------------------
    @property
    def docks(self) -> dict[str, QDockWidget]:
        return {d.objectName(): d for d in self.findChildren(QDockWidget)}

    def add_panel(self, widget: QWidget, title: str, object_name: str,
                  area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        """Dock ``widget``; its place is remembered with the layout and it is listed in View ▸ Panels."""
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        self.menus["panels"].addAction(dock.toggleViewAction())
        if getattr(self, "_restored", False):
            self.restoreDockWidget(dock)
        return dock

    def add_toolbar(self, toolbar: QToolBar) -> None:
        if not toolbar.objectName():
            toolbar.setObjectName(f"toolbar_{toolbar.windowTitle().lower().replace(' ', '_')}")
        self.addToolBar(toolbar)

    def add_menu(self, title: str) -> QMenu:
        """A new top-level menu, placed before Help."""
        menu = QMenu(title, self)
        self.menuBar().insertMenu(self.menus["help"].menuAction(), menu)
        return menu

    # -- status --------------------------------------------------------------------------------
    def show_status(self, text: str, timeout: int = 5000, warning: bool = False) -> None:
        """A message in the status bar for ``timeout`` ms, elided to fit (full text as tooltip)."""
        self.message.show_message(text, timeout, warning)

    def status_text(self) -> str:
        """The status bar's current message, whole."""
        return self.message.text

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.document.display_name}[*] — {APP_NAME}")
        self.setWindowFilePath(str(self.document.path) if self.document.path else "")
        self.setWindowModified(self.document.modified)

    def _update_problems(self) -> None:
        graph = self.document.graph
        problems = graph.problems() if graph.nodes else []
        _, total = graph.summary()
        counts = f"{len(graph.nodes)} nodes · {total:,} params"
        if problems:
            self.problems_label.setText(f"{html.escape(counts)} · "
                                        + dot(theme.colors().error, f"{len(problems)} problem"
                                              f"{'s' if len(problems) > 1 else ''}"))
            self.problems_label.setToolTip("<br>".join(html.escape(str(p)) for p in problems))
        else:
            self.problems_label.setText(f"{html.escape(counts)} · {dot(theme.colors().ok, 'ready')}"
                                        if graph.nodes else "empty graph")
            self.problems_label.setToolTip("")

    # -- editing ------------------------------------------------------------------------------
    def add_layer_at_center(self, type_name: str, params: dict, base: str = "") -> str | None:
        node = Graph().add_node(type_name, params or {})
        w, h = card_size(node)
        c = self.view.center_scene_pos()
        return self._add_layer(type_name, params, base, QPointF(c.x() - w / 2, c.y() - h / 2))

    def _on_layer_dropped(self, type_name: str, params: dict, base: str, pos: QPointF) -> None:
        w, h = card_size(Graph().add_node(type_name, params or {}))
        self._add_layer(type_name, params, base, QPointF(pos.x() - w / 2, pos.y() - h / 2))

    def _add_layer(self, type_name: str, params: dict, base: str, pos: QPointF) -> str | None:
        x, y = pos.x(), pos.y()
        if self.scene.snap_to_grid:
            x, y = round(x / GRID) * GRID, round(y / GRID) * GRID
        taken = {self.document.position(n) for n in self.document.graph.nodes}
        while (x, y) in taken:  # repeated adds do not stack exactly on top of each other
            x, y = x + GRID, y + 2 * GRID
        doc = self.document
        node_id = doc.attempt(edits.add_node, doc, type_name, params, (x, y), base or None)
        if node_id:
            self.scene.select_nodes([node_id])
            self.view.setFocus()
        return node_id

    def delete_selection(self) -> None:
        d = self.document
        d.attempt(edits.delete, d, self.scene.selected_node_ids(), self.scene.selected_edges())

    def select_all(self) -> None:
        for item in self.scene.item_for_node.values():
            item.setSelected(True)

    def rename_selected(self) -> None:
        if len(self.scene.selected_node_ids()) == 1:
            self.docks["dock_inspector"].show()
            self.docks["dock_inspector"].raise_()
            self.inspector.name_edit.setFocus()
            self.inspector.name_edit.selectAll()

    def auto_layout(self) -> None:
        self.document.attempt(edits.auto_layout, self.document, card_size)
        self.view.fit_all()

    def copy(self) -> bool:
        ids = self.scene.selected_node_ids()
        if not ids:
            return False
        text = edits.copy_text(self.document, ids)
        data = QMimeData()
        data.setData(edits.MIME_GRAPH, text.encode("utf-8"))
        data.setText(text)
        QApplication.clipboard().setMimeData(data)
        self.show_status(f"Copied {len(ids)} node{'s' if len(ids) > 1 else ''}")
        return True

    def cut(self) -> None:
        if self.document.editable and self.copy():
            self.document.attempt(edits.delete, self.document, self.scene.selected_node_ids(),
                                  text=f"Cut {len(self.scene.selected_node_ids())} nodes")

    def paste(self, scene_pos: QPointF | None = None) -> None:
        """Paste at ``scene_pos`` (the context menu's point), at the mouse when Ctrl+V is
        pressed over the canvas, or else beside what was copied."""
        data = QApplication.clipboard().mimeData()
        if data is not None and data.hasFormat(edits.MIME_GRAPH):
            text = bytes(data.data(edits.MIME_GRAPH)).decode("utf-8")
        else:
            text = data.text() if data is not None else ""
        if not text.strip():
            self.show_status("Nothing to paste")
            return
        at = self._paste_point(scene_pos)
        self._select_new(self.document.attempt(edits.paste, self.document, text, card_size, at))

    def _paste_point(self, scene_pos: QPointF | None) -> tuple[float, float] | None:
        if scene_pos is None:
            viewport = self.view.viewport()
            local = viewport.mapFromGlobal(QCursor.pos())
            if not (self.view.underMouse() and viewport.rect().contains(local)):
                return None
            scene_pos = self.view.mapToScene(local)
        x, y = scene_pos.x(), scene_pos.y()
        if self.scene.snap_to_grid:
            x, y = round(x / GRID) * GRID, round(y / GRID) * GRID
        return x, y

    def duplicate(self) -> None:
        ids = self.scene.selected_node_ids()
        if ids:
            self._select_new(self.document.attempt(edits.duplicate, self.document, ids, card_size))

    def _select_new(self, ids: list[str] | None) -> None:
        if not ids:
            return
        self.scene.select_nodes(ids)
        rect = None
        for node_id in ids:
            item = self.scene.node_item(node_id)
            if item is not None:
                rect = item.sceneBoundingRect() if rect is None else rect.united(item.sceneBoundingRect())
        visible = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
        if rect is not None and not visible.intersects(rect):
            self.view.centerOn(rect.center())

    # -- slots ------------------------------------------------------------------------------------
    def _on_selection_changed(self) -> None:
        ids = self.scene.selected_node_ids()
        self.inspector.set_node(ids[0] if len(ids) == 1 else None, count=len(ids))
        has_nodes = bool(ids)
        anything = has_nodes or bool(self.scene.selected_edges())
        editable = self.document.editable
        for key in ("cut", "duplicate"):
            self.actions[key].setEnabled(has_nodes and editable)
        self.actions["copy"].setEnabled(has_nodes)
        self.actions["delete"].setEnabled(anything and editable)
        self.actions["rename"].setEnabled(len(ids) == 1 and editable)

    def _on_summary_clicked(self, node_id: str) -> None:
        self.scene.select_nodes([node_id])
        item = self.scene.node_item(node_id)
        if item is not None:
            self.view.ensureVisible(item.sceneBoundingRect(), 60, 60)

    def _on_opened(self) -> None:
        self.view.show_start()
        QTimer.singleShot(0, self.view.show_start)  # again once the window has its final size

    def _on_lock_changed(self, reason: str) -> None:
        st = self.document.undo_stack
        self.actions["undo"].setEnabled(st.canUndo() and not reason)
        self.actions["redo"].setEnabled(st.canRedo() and not reason)
        self.history.setEnabled(not reason)
        for key in ("paste", "layout"):
            self.actions[key].setEnabled(not reason)
        self._on_selection_changed()
        if reason:  # unlocking says nothing: the run's own result is the message to keep
            self.show_status(f"Editing locked: {reason}", 8000)

    def _on_snap_toggled(self, on: bool) -> None:
        self.scene.snap_to_grid = on

    def _on_context_menu(self, screen_pos, scene_pos: QPointF) -> None:
        menu = QMenu(self)
        a = self.actions
        if self.scene.selectedItems():
            menu.addActions([a["rename"], a["duplicate"], a["copy"], a["cut"], a["delete"]])
            menu.addSeparator()
        add = menu.addMenu("Add Layer")
        for category, entries in palette_entries().items():
            sub = add.addMenu(CATEGORY_TITLES.get(category, category.title()))
            for entry in entries:
                act = sub.addAction(entry.title)
                act.triggered.connect(
                    lambda _=False, e=entry, p=scene_pos: self._add_layer(e.type, e.params, e.base, p))
        paste_here = menu.addAction("Paste Here")
        paste_here.setEnabled(a["paste"].isEnabled())
        paste_here.triggered.connect(lambda _=False, p=scene_pos: self.paste(p))
        menu.addAction(a["select_all"])
        menu.addSeparator()
        menu.addActions([a["fit"], a["layout"]])
        menu.exec(screen_pos)

    def _fill_templates(self) -> None:
        menu = self.menus["templates"]
        menu.clear()
        found = templates()
        for path, title, description in found:
            act = menu.addAction(title)
            act.setStatusTip(description or str(path))
            act.setToolTip(description)
            act.triggered.connect(lambda _=False, p=path: self.files.open_template(p))
        if not found:
            menu.addAction("(no examples found)").setEnabled(False)
        menu.setToolTipsVisible(True)

    def _fill_recent(self) -> None:
        menu = self.menus["recent"]
        menu.clear()
        for i, path in enumerate(recent_files()):
            act = menu.addAction(f"&{i + 1 if i < 9 else 0}  {Path(path).name}")
            act.setStatusTip(path)
            act.triggered.connect(lambda _=False, p=path: self._open_recent(p))
        if menu.isEmpty():
            menu.addAction("(none)").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear Menu").triggered.connect(lambda: forget_recent())

    def _open_recent(self, path: str) -> None:
        if not Path(path).exists():
            forget_recent(path)
        self.files.open(path)

    def new_window(self) -> "MainWindow":
        win = MainWindow()
        _open_windows.append(win)
        win.destroyed.connect(lambda *_: _open_windows.remove(win) if win in _open_windows else None)
        win.show()
        return win

    # -- theme and settings -----------------------------------------------------------------------
    def set_theme(self, mode: str) -> None:
        theme.apply_theme(mode)
        QSettings().setValue("view/theme", mode)
        self.actions[f"theme_{mode}"].setChecked(True)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            for act in self.findChildren(QAction):  # the training toolbar's too
                name = act.property("icon_name")
                if name:
                    act.setIcon(icon(name))
            self.scene.update()
            self.summary.refresh()
        super().changeEvent(event)

    def _restore_settings(self) -> None:
        s = QSettings()
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = s.value("window/state")
        self._first_show_layout = state is None or not self.restoreState(state, STATE_VERSION)
        self._restored = True
        snap = s.value("view/snap", True)
        self.actions["snap"].setChecked(snap in (True, "true", "1", 1))
        self.scene.snap_to_grid = self.actions["snap"].isChecked()
        mode = str(s.value("view/theme", "system"))
        self.actions[f"theme_{mode if mode in theme.THEMES else 'system'}"].setChecked(True)

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        if getattr(self, "_first_show_layout", False):
            self._first_show_layout = False
            QTimer.singleShot(0, self.default_dock_sizes)  # once the docks have their first sizes

    def default_dock_sizes(self) -> None:
        """First run: the canvas gets most of the window; side and bottom docks stay slim."""
        by_area: dict[Qt.DockWidgetArea, list[QDockWidget]] = {}
        for dock in self.docks.values():
            if dock.isVisible() and not dock.isFloating():
                by_area.setdefault(self.dockWidgetArea(dock), []).append(dock)
        bottom = by_area.get(Qt.DockWidgetArea.BottomDockWidgetArea, [])
        if bottom:
            self.resizeDocks(bottom[:1], [max(200, self.height() // 3)], Qt.Orientation.Vertical)
        sides = [(Qt.DockWidgetArea.LeftDockWidgetArea, 200), (Qt.DockWidgetArea.RightDockWidgetArea, 320)]
        for area, width in sides:
            if by_area.get(area):
                self.resizeDocks(by_area[area][:1], [width], Qt.Orientation.Horizontal)

    def save_settings(self) -> None:
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(STATE_VERSION))
        s.setValue("view/snap", self.actions["snap"].isChecked())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self.files.maybe_save():
            event.ignore()
            return
        self.training.shutdown()  # stop and join the trainer thread before the window goes
        self.save_settings()
        event.accept()
