"""Guided lessons: data files that train prepared graphs and check what the student should see.

- :mod:`engine.lessons.format` reads and checks lesson files (``resources/lessons/*.toml``).
- :mod:`engine.lessons.expect` is the expectation language over the metrics stream.
- :mod:`engine.lessons.runner` finds lessons, evaluates expectations live
  (:class:`Evaluator`) and runs a lesson headless (:func:`run_lesson`).

docs/lessons.md documents the file format and the language.
"""

from engine.lessons.expect import MEASURES, Check, Trace, parse_check
from engine.lessons.format import (
    LESSON_FORMAT,
    LESSON_VERSION,
    Change,
    Edit,
    Expectation,
    Lesson,
    RunSpec,
    lessons_dir,
    load_lesson_file,
)
from engine.lessons.runner import (
    Catalogue,
    Evaluator,
    LessonReport,
    Result,
    load_catalogue,
    load_lesson,
    report_text,
    result_line,
    run_lesson,
)

__all__ = ["LESSON_FORMAT", "LESSON_VERSION", "MEASURES", "Catalogue", "Change", "Check", "Edit", "Evaluator",
           "Expectation", "Lesson", "LessonReport", "Result", "RunSpec", "Trace", "lessons_dir", "load_catalogue",
           "load_lesson", "load_lesson_file", "parse_check", "report_text", "result_line",
           "run_lesson"]
