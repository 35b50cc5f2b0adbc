"""Finding lessons, evaluating their expectations live, and running them headless.

:class:`Evaluator` is what the studio feeds while a lesson's runs train: ``feed(run,
event)`` per trainer event (or metrics-stream dict), ``results()`` for every expectation's
current value and ``met``/``unmet``/``pending``. :func:`run_lesson` trains every run of a
lesson in order through :func:`engine.session.prepare_run` and evaluates the same way; it is
what ``backprop lesson run NAME`` prints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import BackpropError, LessonError
from engine.lessons.expect import Trace
from engine.lessons.format import Lesson, lessons_dir, load_lesson_file
from engine.lessons.trace import graph_record


# ---- the catalogue -----------------------------------------------------------------------------
@dataclass
class Catalogue:
    """Every lesson file of a folder: the ones that load, in lesson order, and the errors of
    the ones that do not (one line each, naming the file)."""

    lessons: list[Lesson]
    problems: list[str] = field(default_factory=list)

    def find(self, name: str) -> Lesson:
        """A lesson by id (file name without .toml) or by number."""
        for lesson in self.lessons:
            if name in (lesson.id, str(lesson.number)):
                return lesson
        for problem in self.problems:
            if problem.startswith(f"{name}.toml:"):
                raise LessonError(problem)
        known = ", ".join(f"{les.number} {les.id}" for les in self.lessons) or "none"
        broken = f"; {len(self.problems)} lesson file(s) did not load: {self.problems[0]}" if self.problems else ""
        raise LessonError(f"unknown lesson {name!r}; the lessons are: {known} (see: backprop lesson list){broken}")


def lesson_files(folder: Path | None = None) -> list[Path]:
    return sorted((folder or lessons_dir()).glob("*.toml"))


def load_catalogue(folder: str | Path | None = None) -> Catalogue:
    """Load every ``*.toml`` of ``folder`` (default: resources/lessons)."""
    folder = Path(folder) if folder is not None else lessons_dir()
    if not folder.is_dir():
        raise LessonError(f"{folder}: no lessons folder (the program's resources/lessons; reinstall Backprop "
                          f"Studio if it is missing)")
    lessons, problems = [], []
    for path in lesson_files(folder):
        try:
            lessons.append(load_lesson_file(path))
        except BackpropError as err:
            problems.append(str(err))
    numbers: dict[int, str] = {}
    for lesson in lessons:
        if lesson.number in numbers:
            problems.append(f"{lesson.path.name}: number {lesson.number} is also lesson '{numbers[lesson.number]}'")
        numbers[lesson.number] = lesson.id
    return Catalogue(sorted(lessons, key=lambda les: (les.number, les.id)), problems)


def load_lesson(name: str, folder: str | Path | None = None) -> Lesson:
    """One lesson by id or number, or from a path to a lesson file."""
    if name.endswith(".toml"):
        return load_lesson_file(name)
    return load_catalogue(folder).find(name)


# ---- live evaluation ----------------------------------------------------------------------------
@dataclass
class Result:
    """One expectation's state: ``status`` met/unmet/pending, the measured value (left side of
    the check), the target (right side), a note (e.g. where a run diverged)."""

    id: str
    text: str
    check: str
    op: str
    status: str
    value: float | None
    target: float | None
    note: str = ""

    @property
    def met(self) -> bool:
        return self.status == "met"

    def to_json(self) -> dict[str, Any]:
        def clean(v: float | None) -> float | str | None:
            return v if v is None or math.isfinite(v) else ("inf" if v > 0 else "-inf")
        return {"id": self.id, "text": self.text, "check": self.check, "status": self.status,
                "value": clean(self.value), "target": clean(self.target), "note": self.note}


class Evaluator:
    """Expectations of one lesson, evaluated from the events of its runs as they arrive."""

    def __init__(self, lesson: Lesson) -> None:
        self.lesson = lesson
        self.traces: dict[str, Trace] = {}
        for spec in lesson.runs:
            self.reset(spec.name)

    def reset(self, run: str, graph: Any = None) -> None:
        """Forget a run's events (it is trained again). Its trace starts with the facts of
        ``graph`` (default: the lesson's graph of that run; pass the edited one after an
        edit, so that ``params``, ``out_dim`` and ``warnings`` read what will train)."""
        spec = self.lesson.run(run)
        self.traces[run] = Trace(activations=spec.activation_nodes())
        self.traces[run].feed(graph_record(graph if graph is not None else spec.graph))

    def prune_fractions(self, run: str) -> list[float]:
        """The pruning fractions the expectations read for ``run`` (pruned_acc, pruned_loss):
        after the run, feed :func:`engine.pruning.evaluate_pruned` records for them."""
        found = {float(c.args[0]) for e in self.lesson.expectations for c in e.check.calls()
                 if c.run == run and c.spec.name.startswith("pruned_")}
        return sorted(found)

    def feed(self, run: str, event: Any) -> None:
        """One event of run ``run``: a trainer event or its metrics-stream dict."""
        if run not in self.traces:
            raise LessonError(f"lesson '{self.lesson.id}' has no run '{run}'")
        self.traces[run].feed(event)

    def listener(self, run: str) -> Callable[[Any], None]:
        """A trainer listener feeding run ``run`` (still right after :meth:`reset`)."""
        self.lesson.run(run)
        return lambda event: self.feed(run, event)

    def results(self) -> list[Result]:
        out = []
        for e in self.lesson.expectations:
            o = e.check.evaluate(self.traces)
            out.append(Result(e.id, e.text, e.check.text, e.check.op, o.status, o.value, o.target, o.note))
        return out


# ---- running a lesson headless -------------------------------------------------------------------
@dataclass
class RunRecord:
    name: str
    reason: str
    epochs: int
    steps: int
    seconds: float
    message: str = ""


@dataclass
class LessonReport:
    lesson: Lesson
    runs: list[RunRecord]
    results: list[Result]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(r.met for r in self.results)


def test_record(run: Any) -> dict[str, Any]:
    """The ``test`` record fed after a run: the final model (the restored one after early
    stopping) on the test split (``test_loss``, ``test_acc``, absent without one) and on its
    own training split in evaluation mode (``fit_loss``, ``fit_acc``: no dropout, no weight
    penalty, so fit and test compare like with like). The studio feeds the same."""
    if not run.trainer.history:
        return {"event": "test"}
    tr = run.trainer
    fit_loss, fit_acc = tr.evaluate(tr.X, tr.y, tr.T)
    metrics = {**run.test_metrics(), "fit_loss": fit_loss, "fit_acc": fit_acc}
    return {"event": "test", **{k: v for k, v in metrics.items() if v is not None}}


def run_lesson(lesson: Lesson, progress: Callable[[str], None] | None = None) -> LessonReport:
    """Train every run of ``lesson`` (in file order) and evaluate its expectations.

    BLAS runs on one thread meanwhile: lesson networks are small, so threads only add
    overhead, and on a busy machine spinning BLAS threads made a lesson 25× slower.
    """
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the Numba kernels call: loaded, so it is limited too)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _run_lesson(lesson, progress)


def _run_lesson(lesson: Lesson, progress: Callable[[str], None] | None) -> LessonReport:
    from engine.pruning import evaluate_pruned
    from engine.session import prepare_run

    evaluator = Evaluator(lesson)
    records = []
    t0 = time.perf_counter()
    for spec in lesson.runs:
        if progress:
            progress(f"training {spec.name} ({spec.label})")
        start = time.perf_counter()
        try:
            run = prepare_run(spec.graph.copy(), spec.base_dir, listener=evaluator.listener(spec.name))
            finish = run.trainer.run()
            evaluator.feed(spec.name, test_record(run))
            for record in evaluate_pruned(run, evaluator.prune_fractions(spec.name)):
                evaluator.feed(spec.name, {"event": "pruned", **record})
        except BackpropError as err:
            raise LessonError(f"{lesson.path.name}: run '{spec.name}': {err}") from None
        records.append(RunRecord(spec.name, finish.reason, finish.epoch, finish.step,
                                 time.perf_counter() - start, finish.message))
    return LessonReport(lesson, records, evaluator.results(), time.perf_counter() - t0)


# ---- text ----------------------------------------------------------------------------------------
def format_value(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "never" if value > 0 else "-inf"
    if math.isnan(value):
        return "nan"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.3g}" if 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"


def result_line(r: Result, width: int = 0) -> str:
    from engine.lessons.expect import SYMBOLS

    mark = {"met": "✓", "unmet": "✗", "pending": "…"}[r.status]
    measured = f"{format_value(r.value)} {SYMBOLS[r.op]} {format_value(r.target)}"
    note = f"  ({r.note})" if r.note else ""
    return f"{mark} {r.id.ljust(width)}  {measured}  {r.text}{note}"


def report_text(report: LessonReport) -> str:
    lesson = report.lesson
    lines = [f"lesson {lesson.number} · {lesson.id}: {lesson.title}"]
    for rec in report.runs:
        lines.append(f"  run {rec.name}: {rec.reason} after {rec.epochs} epochs, {rec.steps} steps "
                     f"({rec.seconds:.2f} s)")
    width = max(len(r.id) for r in report.results)
    lines += ["  " + result_line(r, width) for r in report.results]
    held = sum(r.met for r in report.results)
    lines.append(f"{held}/{len(report.results)} expectations hold ({report.seconds:.1f} s)")
    return "\n".join(lines)
