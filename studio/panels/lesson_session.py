"""The state of one lesson being walked in the studio, and the progress kept across sessions.

:class:`LessonSession` knows the steps (the lesson's runs in teaching order), which step is
open, which trained :class:`RunRecord` belongs to which run, and feeds the engine's live
:class:`engine.lessons.Evaluator` with the trainer events the GUI drains. A run counts for a
lesson only if it trained exactly the lesson's graph from a fresh initialisation: a run the
student changed, or one continuing from trained weights, would make the checks say something
the lesson did not set up, so it is shown but not counted (with the reason).

:class:`LessonProgress` stores "in progress" / "done" per lesson id in QSettings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QSettings

from engine.errors import BackpropError
from engine.graph import Graph
from engine.lessons import Evaluator, Lesson, Result
from engine.lessons.runner import format_value

IN_PROGRESS, DONE = "in_progress", "done"
PROGRESS_GROUP = "lessons/progress"


class LessonProgress:
    """Which lessons were started and which were completed (every expectation seen)."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> QSettings:
        return self._settings if self._settings is not None else QSettings()

    def status(self, lesson_id: str) -> str:
        value = str(self.settings.value(f"{PROGRESS_GROUP}/{lesson_id}", "") or "")
        return value if value in (IN_PROGRESS, DONE) else ""

    def mark(self, lesson_id: str, status: str) -> None:
        """Record a status; a completed lesson stays completed when it is walked again."""
        if status not in (IN_PROGRESS, DONE):
            raise ValueError(f"unknown lesson status {status!r}")
        if status == IN_PROGRESS and self.status(lesson_id) == DONE:
            return
        s = self.settings
        s.setValue(f"{PROGRESS_GROUP}/{lesson_id}", status)
        s.sync()

    def forget(self, lesson_id: str | None = None) -> None:
        """Forget one lesson's progress, or all of it."""
        s = self.settings
        s.remove(f"{PROGRESS_GROUP}/{lesson_id}" if lesson_id else PROGRESS_GROUP)
        s.sync()


def structure_key(graph: Graph) -> str:
    """What makes two graphs the same experiment: nodes, edges, training; not names or positions."""
    d = graph.to_dict(ui=False, sort=True)
    for key in ("name", "description"):
        d.pop(key, None)
    return repr(d)


def step_order(lesson: Lesson) -> list[str]:
    """The runs in teaching order: the change's "before", its "after", then the others in file order."""
    names = lesson.run_names
    if lesson.change is None:
        return names
    first = [lesson.change.from_run, lesson.change.to_run]
    return first + [n for n in names if n not in first]


@dataclass
class LiveRun:
    """The run now training: which lesson run it is (None: not counted) and why not."""

    record: Any
    run: str | None
    reason: str = ""


class LessonSession:
    """One lesson walked step by step (see the module docstring)."""

    def __init__(self, lesson: Lesson) -> None:
        self.lesson = lesson
        self.evaluator = Evaluator(lesson)
        self.steps = step_order(lesson)
        self.index = 0
        self.records: dict[str, Any] = {}  # run name -> the RunRecord that counted
        self.finished: set[str] = set()
        self.live: LiveRun | None = None
        self._keys = {r.name: structure_key(r.graph) for r in lesson.runs}
        self._results: list[Result] | None = None

    # -- steps --------------------------------------------------------------------------------
    @property
    def current(self) -> str:
        return self.steps[self.index]

    @property
    def has_next(self) -> bool:
        return self.index + 1 < len(self.steps)

    def graph_for(self, run: str) -> Graph:
        """The run's graph, named so the run list and the ghost say which step it was."""
        graph = self.lesson.graph(run)
        graph.name = f"L{self.lesson.number} {run}"
        return graph

    def previous_record(self) -> Any:
        """The counted record of the step before the current one (the ghost of "Next step")."""
        return self.records.get(self.steps[self.index - 1]) if self.index > 0 else None

    # -- runs -----------------------------------------------------------------------------------
    def run_started(self, record: Any, graph: Graph, continuing: bool) -> LiveRun:
        """A training run began on ``graph``; decide whether (and as which run) it counts."""
        key = structure_key(graph)
        match = next((n for n in [self.current, *self.steps] if self._keys[n] == key), None)
        if match is None:
            live = LiveRun(record, None, "the graph differs from the lesson's, so this run is not checked; "
                                         "reopen the step to train the lesson's graph")
        elif continuing:
            live = LiveRun(record, None, "this run continued from trained weights, so it is not checked; "
                                         "press Train in the lesson for a fresh run")
        else:
            live = LiveRun(record, match)
            self.evaluator.reset(match, graph)  # graph facts (sizes, warnings, counts) follow edits
            self.records[match] = record
            self.finished.discard(match)
        self.live = live
        self._results = None
        return live

    def feed(self, record: Any, events: Iterable[Any]) -> bool:
        """Events drained for ``record``; True if they went to the evaluator."""
        live = self.live
        if live is None or live.run is None or live.record is not record:
            return False
        for event in events:
            self.evaluator.feed(live.run, event)
        self._results = None
        return True

    def run_finished(self, record: Any, test_record: dict[str, Any] | None,
                     trained: Any = None) -> str | None:
        """The run ended; feed its test record, and when ``trained`` (the engine's finished
        :class:`engine.session.Run`) is given, the pruning records the lesson's checks read.
        Returns the lesson run it was, if counted."""
        live = self.live
        if live is None or live.record is not record or live.run is None:
            return None
        if test_record is not None:
            self.evaluator.feed(live.run, test_record)
        fractions = self.evaluator.prune_fractions(live.run) if trained is not None else []
        if fractions:
            from engine.pruning import evaluate_pruned

            try:
                for pruned in evaluate_pruned(trained, fractions):
                    self.evaluator.feed(live.run, {"event": "pruned", **pruned})
            except BackpropError:  # the pruning checks stay undecided; the test record counts
                pass
        self.finished.add(live.run)
        self._results = None
        return live.run

    def trained(self, run: str) -> bool:
        return run in self.finished

    # -- checks ---------------------------------------------------------------------------------
    def results(self) -> list[Result]:
        if self._results is None:
            self._results = self.evaluator.results()
        return self._results

    def complete(self) -> bool:
        """Every expectation is decided (met or not): the lesson can be confirmed."""
        return all(r.status != "pending" for r in self.results())

    def passed(self) -> bool:
        return self.complete() and all(r.met for r in self.results())


def measured_text(result: Result) -> str:
    """"0.75 ≤ 0.75" — the measured left side against the target, as the CLI prints it."""
    from engine.lessons.expect import SYMBOLS

    if result.value is None:
        return "not measured yet"
    return f"{format_value(result.value)} {SYMBOLS[result.op]} {format_value(result.target)}"
