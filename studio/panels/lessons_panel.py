"""The Lessons dock and menu: pick a lesson, read it, train its graphs, watch the checks get met.

A lesson (``resources/lessons/*.toml``, docs/lessons.md) opens its first graph in the editor;
Train trains it from a fresh initialisation while the engine's live Evaluator is fed the
trainer events the GUI drains (:class:`studio.panels.lesson_session.LessonSession`), so each
expectation is ticked with its measured number as soon as it is decided. "Next step" opens the
next graph of the lesson and keeps the run before it as the ghost in the curves and gradient
plots. When every expectation is decided the lesson ends with a confirmation of what was seen
(and is marked done in the list). Installed by :func:`install_lessons` (a dock and a menu).
"""

from __future__ import annotations

import html
import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine.errors import BackpropError
from engine.lessons import Catalogue, Lesson, Result, load_catalogue
from studio import theme
from studio.panels.lesson_session import DONE, IN_PROGRESS, LessonProgress, LessonSession, measured_text
from studio.panels.lesson_text import markdown_to_html

MARKS = {"met": "✓", "unmet": "✗", "pending": "…"}
STATUS_TEXT = {DONE: "✓ done", IN_PROGRESS: "◐ in progress", "": ""}
PLOT_FOR_HINT = {"loss": "curves", "accuracy": "curves", "learning_rate": "curves", "gradient_flow": "gradients",
                 "layer_std": "activations", "activation_statistics": "activations",
                 "activation_derivatives": "activations", "decision_boundary": "boundary",
                 "mdn_samples": "boundary"}
REFRESH_S = 0.25  # checks are re-evaluated at most 4 times a second while a run streams
LESSON_DOCK_WIDTH = 400


class LessonsPanel(QWidget):
    """The list of lessons (with progress) and the lesson being walked."""

    lessonOpened = Signal(str)  # lesson id
    confirmed = Signal(str, bool)  # lesson id, every expectation held

    def __init__(self, window: Any, progress: LessonProgress | None = None) -> None:
        super().__init__()
        self.window = window
        self.training = window.training
        self.controller = window.training.controller
        self.progress = progress or LessonProgress()
        self.catalogue: Catalogue | None = None
        self.session: LessonSession | None = None
        self._last_refresh = 0.0
        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_list_page())
        self.pages.addWidget(self._build_lesson_page())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.pages)
        c = self.controller
        c.runStarted.connect(self._on_run_started)
        c.drained.connect(self._on_drained)
        c.runFinished.connect(self._on_run_finished)

    # -- construction ---------------------------------------------------------------------------
    def _build_list_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 0, 0, 0)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.currentItemChanged.connect(self._on_list_selection)
        self.list.itemActivated.connect(lambda item: self.start_lesson(item.data(Qt.ItemDataRole.UserRole)))
        self.about = QLabel()
        self.about.setWordWrap(True)
        self.about.setTextFormat(Qt.TextFormat.RichText)
        self.start_button = QPushButton("Start lesson")
        self.start_button.clicked.connect(self._start_selected)
        lay.addWidget(self.list, 1)
        lay.addWidget(self.about)
        lay.addWidget(self.start_button)
        return page

    def _build_lesson_page(self) -> QWidget:
        page = QWidget()
        lay = QVBoxLayout(page)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.back_button = QPushButton("◂ Lessons")
        self.back_button.setToolTip("Back to the list of lessons (the current lesson's runs stay in Runs)")
        self.back_button.clicked.connect(self.show_list)
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: 600;")
        top.addWidget(self.back_button)
        top.addWidget(self.title, 1)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.checks = QTextBrowser()
        self.checks.setOpenLinks(False)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.text)
        split.addWidget(self.checks)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        self.step_label = QLabel()
        self.step_label.setWordWrap(True)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("▶ Train")
        self.train_button.setToolTip("Train this step's graph from a fresh initialisation; the checks follow it")
        self.train_button.clicked.connect(self.train_step)
        self.next_button = QPushButton("Next step ▸")
        self.next_button.setToolTip("Open the lesson's next graph; this run stays as the ghost in the plots")
        self.next_button.clicked.connect(self.next_step)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.next_button)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        lay.addWidget(self.step_label)
        lay.addLayout(buttons)
        return page

    # -- the list -------------------------------------------------------------------------------
    def ensure_loaded(self) -> Catalogue:
        """Read the lessons folder (once; 'Reload' in the menu reads it again)."""
        if self.catalogue is None:
            self.reload()
        assert self.catalogue is not None
        return self.catalogue

    def reload(self) -> None:
        try:
            self.catalogue = load_catalogue()
        except BackpropError as err:
            self.catalogue = Catalogue([], [str(err)])
        self.refresh_list()

    def refresh_list(self) -> None:
        catalogue = self.catalogue or Catalogue([])
        current = self.list.currentItem().data(Qt.ItemDataRole.UserRole) if self.list.currentItem() else None
        self.list.blockSignals(True)
        self.list.clear()
        for lesson in catalogue.lessons:
            status = STATUS_TEXT[self.progress.status(lesson.id)]
            item = QListWidgetItem(f"{lesson.number}. {lesson.title}" + (f"   {status}" if status else ""))
            item.setData(Qt.ItemDataRole.UserRole, lesson.id)
            item.setToolTip(lesson.summary)
            self.list.addItem(item)
            if lesson.id == current:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        self._on_list_selection()

    def _on_list_selection(self, *_: Any) -> None:
        lesson = self._selected()
        problems = (self.catalogue.problems if self.catalogue else [])
        broken = "".join(f"<p style='color:{theme.colors().error.name()}'>⚠ {html.escape(p)}</p>" for p in problems)
        if lesson is None:
            self.about.setText(broken or "No lessons found.")
            self.start_button.setEnabled(False)
            return
        self.about.setText(f"<p>{html.escape(lesson.summary)}</p><p style='color:gray'>Topic: "
                           f"{html.escape(lesson.seed_topic)} · {len(lesson.runs)} graphs · "
                           f"{len(lesson.expectations)} checks</p>{broken}")
        self.start_button.setEnabled(True)

    def _selected(self) -> Lesson | None:
        item = self.list.currentItem()
        if item is None or self.catalogue is None:
            return None
        return self.catalogue.find(item.data(Qt.ItemDataRole.UserRole))

    def _start_selected(self) -> None:
        lesson = self._selected()
        if lesson is not None:
            self.start_lesson(lesson.id)

    def show_list(self) -> None:
        self.refresh_list()
        self.pages.setCurrentIndex(0)

    def showEvent(self, event: Any) -> None:  # noqa: N802
        self.ensure_loaded()
        QTimer.singleShot(0, lambda: hide_stale_tab_bars(self.window))
        super().showEvent(event)

    # -- walking a lesson -----------------------------------------------------------------------
    def start_lesson(self, lesson_id: str) -> bool:
        """Open a lesson at its first step (asks to save an edited graph first)."""
        try:
            lesson = self.ensure_loaded().find(lesson_id)
        except BackpropError as err:
            self.window.show_status(f"⚠ {err}", 10000)
            return False
        if not self._stop_training() or not self.window.files.maybe_save():
            return False
        self.session = LessonSession(lesson)
        self.progress.mark(lesson.id, IN_PROGRESS)
        self.title.setText(f"{lesson.number}. {html.escape(lesson.title)}")
        self.text.setHtml(self._lesson_html(lesson))
        self.pages.setCurrentIndex(1)
        dock = getattr(self, "dock", None)
        if dock is not None:
            show_dock(self.window, dock)
            QTimer.singleShot(0, lambda: show_dock(self.window, dock))  # again once the window is laid out
        self.open_step(0)
        self.lessonOpened.emit(lesson.id)
        return True

    def _lesson_html(self, lesson: Lesson) -> str:
        body = markdown_to_html(lesson.text)
        if lesson.change is not None:
            body += (f"<p style='margin-top:8px'><b>The change:</b> {html.escape(lesson.change.text)}</p>")
        topic = f"<p style='color:gray'>{html.escape(lesson.seed_topic)}</p>" if lesson.seed_topic else ""
        return topic + body

    def open_step(self, index: int) -> None:
        """Open step ``index``'s graph in the editor; the step before stays as the ghost."""
        session = self.session
        if session is None or not self._stop_training():
            return
        session.index = index
        graph = session.graph_for(session.current)
        from studio.canvas import card_size
        from studio.edits import apply_layout_in_place, needs_layout

        if needs_layout(graph):
            apply_layout_in_place(graph, card_size)
        self.window.document.reset(graph, None)
        self.controller.forget_weights()
        self.window.files.opened.emit()
        ghost = session.previous_record()
        if ghost is not None:
            self.training.runs_panel.set_ghost(ghost)
        self._raise_plot()
        self.refresh_checks(force=True)

    def train_step(self) -> None:
        """Train the open step from a fresh initialisation."""
        if self.session is None or self.controller.busy:
            return
        self.controller.forget_weights()
        self.training.train()

    def next_step(self) -> None:
        session = self.session
        if session is not None and session.has_next:
            self.open_step(session.index + 1)

    def _stop_training(self) -> bool:
        if self.controller.busy:
            self.controller.stop(wait=10.0)
        if self.controller.busy:
            self.window.show_status("⚠ the run did not stop in time; press Stop and try again", 10000)
            return False
        return True

    def _raise_plot(self) -> None:
        hints = self.session.lesson.plots if self.session else ()
        for hint in hints:
            key = PLOT_FOR_HINT.get(hint)
            dock = self.training.panel_docks.get(key) if key else None
            if dock is not None:
                dock.show()
                dock.raise_()
                return

    # -- the trainer's events -------------------------------------------------------------------
    def _on_run_started(self, record: Any) -> None:
        if self.session is None:
            return
        continuing = self.controller.model is not None  # a fresh run has no model until it is prepared
        live = self.session.run_started(record, self.window.document.graph, continuing)
        ghost = self.session.previous_record()
        if ghost is not None and ghost is not record:
            # the plots drop a ghost that is their current run, so the step before is set again now
            # that the new run is shown (the workspace showed it on the same signal, connected first)
            self.training.set_ghost(ghost)
        if live.reason:
            self.window.show_status(f"Lesson: {live.reason}", 12000)
        self.refresh_checks(force=True)

    def _on_drained(self, events: list) -> None:
        session = self.session
        if session is not None and session.feed(self.controller.record, events):
            self.refresh_checks()

    def _on_run_finished(self, record: Any) -> None:
        session = self.session
        if session is None:
            return
        from engine.lessons.runner import test_record

        run = self.controller.run
        extra = trained = None
        if run is not None and run.model is self.controller.model and record.n_steps:
            try:
                extra, trained = test_record(run), run
            except BackpropError as err:
                self.window.show_status(f"⚠ lesson: {err}", 10000)
        if session.run_finished(record, extra, trained) is not None:
            self.refresh_checks(force=True)
            if session.complete():
                self.progress.mark(session.lesson.id, DONE if session.passed() else IN_PROGRESS)
                self.confirmed.emit(session.lesson.id, session.passed())
        else:
            self.refresh_checks(force=True)

    # -- the checks -----------------------------------------------------------------------------
    def refresh_checks(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.session is None or (not force and now - self._last_refresh < REFRESH_S):
            return
        self._last_refresh = now
        session = self.session
        bar = self.checks.verticalScrollBar()
        keep = bar.value()
        self.checks.setHtml(checks_html(session, self.controller.busy))
        bar.setValue(keep)
        run = session.lesson.run(session.current)
        self.step_label.setText(f"Step {session.index + 1} of {len(session.steps)}: <b>{html.escape(run.label)}</b>"
                                + (f" — {html.escape(run.note)}" if run.note else ""))
        busy = self.controller.busy
        self.train_button.setEnabled(not busy)
        self.next_button.setEnabled(not busy and session.has_next and session.trained(session.current))
        self.next_button.setToolTip("Open the lesson's next graph; this run stays as the ghost in the plots"
                                    if session.trained(session.current) else "Train this step first")


def checks_html(session: LessonSession, busy: bool) -> str:
    """The checks with their marks and measured numbers, the steps, and the final confirmation."""
    c = theme.colors()
    color = {"met": c.ok.name(), "unmet": c.error.name(), "pending": "gray"}
    rows = []
    for r in session.results():
        note = f" <span style='color:gray'>({html.escape(r.note)})</span>" if r.note else ""
        rows.append(f"<tr><td style='color:{color[r.status]}; font-size:14pt; padding-right:6px'>"
                    f"{MARKS[r.status]}</td><td>{html.escape(r.text)}<br><span style='color:gray'>"
                    f"{html.escape(_measured(r))}</span>{note}</td></tr>")
    live = session.live
    steps = []
    for i, name in enumerate(session.steps):
        label = html.escape(session.lesson.run(name).label)
        state = "✓" if session.trained(name) else ("●" if live and live.run == name and busy else "○")
        here = " <b>◂ open</b>" if i == session.index else ""
        steps.append(f"{state} {label}{here}")
    parts = ["<h4 style='margin:0'>Checks</h4>", f"<table cellspacing='2'>{''.join(rows)}</table>",
             "<h4 style='margin-bottom:0'>Steps</h4>", "<br>".join(steps)]
    if live is not None and live.reason:
        parts.append(f"<p style='color:{c.error.name()}'>⚠ {html.escape(live.reason)}</p>")
    if session.complete():
        parts.insert(0, confirmation_html(session.lesson, session.results()))
    return "".join(parts)


def _measured(r: Result) -> str:
    return "waiting for its runs" if r.value is None else f"measured {measured_text(r)}"


def confirmation_html(lesson: Lesson, results: list[Result]) -> str:
    """What was seen, in the lesson's own words, with the numbers that show it."""
    c = theme.colors()
    held = [r for r in results if r.met]
    if len(held) == len(results):
        head = f"✓ Lesson complete: you saw it. {html.escape(lesson.summary)}"
        color = c.ok.name()
    else:
        head = (f"✗ {len(results) - len(held)} of {len(results)} checks did not hold: train those steps again "
                "(▶ Train starts fresh) or compare with backprop lesson run " + html.escape(lesson.id))
        color = c.error.name()
    seen = "".join(f"<li>{MARKS[r.status]} {html.escape(r.text)} <i>({html.escape(measured_text(r))})</i></li>"
                   for r in results)
    return (f"<div style='border:1px solid {color}; padding:4px'><p style='color:{color}; font-weight:600'>"
            f"{head}</p><ul style='margin-top:0'>{seen}</ul></div>")


def install_lessons(window: Any) -> LessonsPanel:
    """The Lessons dock (left, beside the layer palette) and the Lessons menu."""
    panel = LessonsPanel(window)
    dock = window.add_panel(panel, "Lessons", "dock_lessons", Qt.DockWidgetArea.LeftDockWidgetArea)
    palette = window.docks.get("dock_palette")
    if palette is not None and not getattr(window, "_restored", False):
        window.tabifyDockWidget(palette, dock)
        palette.raise_()
        QTimer.singleShot(0, lambda: hide_stale_tab_bars(window))
    menu = window.add_menu("&Lessons")
    show = QAction("Show &Lessons", window)
    show.setShortcut(QKeySequence("Ctrl+Shift+L"))
    show.setStatusTip("Open the Lessons panel: guided experiments that check what you should see")
    show.triggered.connect(lambda: show_dock(window, dock))
    window.addAction(show)
    window.actions["lessons"] = show
    next_action = QAction("&Next Lesson Step", window)
    next_action.setShortcut(QKeySequence("Ctrl+Shift+Right"))
    next_action.triggered.connect(panel.next_step)
    window.addAction(next_action)
    window.actions["lesson_next"] = next_action

    def fill() -> None:
        menu.clear()
        menu.addActions([show, next_action])
        menu.addSeparator()
        for lesson in panel.ensure_loaded().lessons:
            status = STATUS_TEXT[panel.progress.status(lesson.id)]
            act = menu.addAction(f"{lesson.number}. {lesson.title}" + (f"  ({status})" if status else ""))
            act.setStatusTip(lesson.summary)
            act.triggered.connect(lambda _=False, lid=lesson.id: (show_dock(window, dock), panel.start_lesson(lid)))
        menu.addSeparator()
        menu.addAction("Reload Lessons").triggered.connect(panel.reload)

    menu.aboutToShow.connect(fill)
    panel.menu, panel.dock, panel.fill_menu = menu, dock, fill
    menu.addActions([show, next_action])
    return panel


def hide_stale_tab_bars(window: Any) -> None:
    """Hide dock tab bars Qt left behind when docks were tabified before the first layout.

    QMainWindow keeps such a bar visible at its old place (over the canvas or a dock title)
    although the group has a live bar below its docks; the stale one repeats the live one's tabs.
    """
    from PySide6.QtWidgets import QTabBar

    bars = [b for b in window.findChildren(QTabBar) if b.parentWidget() is window and b.isVisible()]
    docks = {d.windowTitle(): d for d in window.docks.values()}
    for bar in bars:
        tabs = [bar.tabText(i) for i in range(bar.count())]
        group = [docks[t] for t in tabs if t in docks]
        if not group:
            continue
        shown = [d for d in group if d.isVisible() and not d.isFloating()]
        edge = max((d.geometry().bottom() for d in shown), default=None)
        near = edge is not None and abs(bar.geometry().top() - edge) <= 8
        twin = any(b is not bar and set(tabs) <= {b.tabText(i) for i in range(b.count())} for b in bars)
        if twin and not near:
            bar.hide()


def show_dock(window: Any, dock: Any) -> None:
    """Bring the Lessons dock forward, wide enough to read a lesson beside the canvas."""
    dock.show()
    dock.raise_()
    if not dock.isFloating():
        window.resizeDocks([dock], [max(dock.width(), LESSON_DOCK_WIDTH)], Qt.Orientation.Horizontal)
    hide_stale_tab_bars(window)
