"""The Lessons panel: a lesson walked in the studio from its first graph to the confirmation."""

from __future__ import annotations

from PySide6.QtCore import QSettings, Qt

from studio.panels.lesson_session import DONE, IN_PROGRESS, LessonProgress, step_order
from studio.panels.lesson_text import plain_text

LESSON = "xor_hidden_layer"  # two 4-point XOR runs: trains in about a second each


def train_and_wait(qtbot, window, press) -> None:
    press()
    qtbot.waitUntil(lambda: window.training.controller.busy, timeout=5000)
    qtbot.waitUntil(lambda: not window.training.controller.busy, timeout=60000)


def checks_text(panel) -> str:
    return plain_text(panel.checks.toHtml())


def test_progress_is_kept_in_settings_and_done_stays_done():
    progress = LessonProgress()
    assert progress.status(LESSON) == ""
    progress.mark(LESSON, IN_PROGRESS)
    assert LessonProgress().status(LESSON) == IN_PROGRESS  # a new reader (a new session) sees it
    progress.mark(LESSON, DONE)
    progress.mark(LESSON, IN_PROGRESS)  # walking a finished lesson again does not undo it
    assert LessonProgress(QSettings()).status(LESSON) == DONE
    progress.forget(LESSON)
    assert LessonProgress().status(LESSON) == ""


def test_list_shows_every_lesson_with_its_progress(window):
    panel = window.lessons
    LessonProgress().mark("vanishing_gradients", DONE)
    LessonProgress().mark("initialisation", IN_PROGRESS)
    panel.reload()
    rows = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert len(rows) == len(panel.catalogue.lessons) >= 10
    assert rows[0].startswith("1. XOR needs a hidden layer")
    by_id = {panel.list.item(i).data(Qt.ItemDataRole.UserRole): rows[i] for i in range(len(rows))}
    assert by_id["vanishing_gradients"].endswith("✓ done")
    assert by_id["initialisation"].endswith("◐ in progress")
    assert "done" not in by_id[LESSON] and "progress" not in by_id[LESSON]


def test_walk_a_lesson_from_start_to_confirmation(qtbot, window):
    panel = window.lessons
    confirmations = []
    panel.confirmed.connect(lambda lid, ok: confirmations.append((lid, ok)))
    assert panel.start_lesson(LESSON)
    lesson = panel.session.lesson
    assert step_order(lesson) == ["no_hidden", "hidden"]
    assert LessonProgress().status(LESSON) == IN_PROGRESS
    text = plain_text(panel.text.toHtml())
    assert "o = ½" in text and "\\tfrac" not in text  # the formula is rendered
    assert set(window.document.graph.nodes) == set(lesson.graph("no_hidden").nodes)
    assert not panel.next_button.isEnabled()  # the first step is not trained yet

    train_and_wait(qtbot, window, panel.train_button.click)
    first = {r.id: r for r in panel.session.results()}
    assert first["linear_fails"].status == "met" and first["linear_fails"].value <= 0.75
    assert first["hidden_solves"].status == "pending"
    shown = checks_text(panel)
    assert "✓" in shown and f"measured {first['linear_fails'].value:g} ≤ 0.75" in shown
    assert "Lesson complete" not in shown
    first_record = panel.session.records["no_hidden"]

    assert panel.next_button.isEnabled()
    panel.next_button.click()
    assert set(window.document.graph.nodes) == set(lesson.graph("hidden").nodes)
    assert window.training.ghost is first_record  # the earlier run stays beside the new one

    train_and_wait(qtbot, window, panel.train_button.click)
    qtbot.waitUntil(lambda: bool(confirmations), timeout=5000)
    assert confirmations == [(LESSON, True)]
    results = {r.id: r for r in panel.session.results()}
    assert results["hidden_solves"].status == "met" and results["hidden_solves"].value == 1.0
    shown = checks_text(panel)
    assert "Lesson complete: you saw it" in shown and "(1 ≥ 1)" in shown
    assert window.training.ghost is first_record
    for key in ("curves", "gradients"):  # drawn behind the new run in the plots
        assert window.training.plots[key].ghost is first_record
        assert window.training.plots[key].record is panel.session.records["hidden"]
    assert LessonProgress().status(LESSON) == DONE
    panel.show_list()
    row = next(panel.list.item(i) for i in range(panel.list.count())
               if panel.list.item(i).data(Qt.ItemDataRole.UserRole) == LESSON)
    assert row.text().endswith("✓ done")


def test_a_run_continuing_from_trained_weights_is_not_counted(qtbot, window):
    panel = window.lessons
    panel.start_lesson(LESSON)
    train_and_wait(qtbot, window, panel.train_button.click)
    counted = panel.session.records["no_hidden"]
    train_and_wait(qtbot, window, window.training.continue_training)  # Ctrl+F5: on from the trained weights
    assert panel.session.live.run is None and "continued from trained weights" in panel.session.live.reason
    assert panel.session.records["no_hidden"] is counted
    assert "not checked" in checks_text(panel)


def test_no_stale_dock_tab_bar_is_left_on_screen(qtbot, window):
    """Tabifying the Lessons dock must not leave a second, dead tab bar over the canvas or a dock title."""
    from PySide6.QtWidgets import QTabBar

    qtbot.wait(50)
    seen: dict[str, int] = {}
    for bar in window.findChildren(QTabBar):
        if bar.parentWidget() is window and bar.isVisible():
            for i in range(bar.count()):
                seen[bar.tabText(i)] = seen.get(bar.tabText(i), 0) + 1
    assert seen.get("Lessons") == 1 and seen.get("Inspector") == 1
    assert all(n == 1 for n in seen.values()), seen


def test_a_finished_run_feeds_the_pruning_checks_the_lesson_reads():
    """Lesson 9's pruning checks are decided in the studio as in `backprop lesson run` (the
    session prunes the finished run's weights), not left pending."""
    from engine.lessons.format import lessons_dir, load_lesson_file
    from engine.lessons.runner import test_record
    from engine.session import prepare_run
    from studio.panels.lesson_session import LessonSession

    lesson = load_lesson_file(lessons_dir() / "overfitting.toml")
    session = LessonSession(lesson)
    spec = lesson.run("weight_decay")
    graph, record = spec.graph.copy(), object()
    live = session.run_started(record, graph, continuing=False)
    assert live.run == "weight_decay"
    run = prepare_run(graph, spec.base_dir, listener=session.evaluator.listener("weight_decay"))
    run.trainer.run()
    before = run.model.snapshot()
    session.run_finished(record, test_record(run), run)
    pruning = [r for r in session.results() if "pruned_acc(weight_decay" in r.check
               and "big" not in r.check]
    assert len(pruning) == 2
    assert all(r.status == "met" for r in pruning), [(r.check, r.status, r.value) for r in pruning]
    assert (run.model.params == before.params).all()  # the trained weights are put back after pruning
