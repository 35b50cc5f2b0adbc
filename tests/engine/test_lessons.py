"""Guided lessons: every lesson holds through ``backprop lesson run``, the runner can fail, lesson
files are checked with clear messages, and the expectation language decides live."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import LessonError
from engine.lessons import Evaluator, load_catalogue, load_lesson, load_lesson_file, parse_check, run_lesson
from engine.lessons.expect import Trace
from engine.lessons.format import lessons_dir

CATALOGUE = load_catalogue()
LESSON_IDS = [lesson.id for lesson in CATALOGUE.lessons]


def test_every_lesson_file_loads_and_lessons_1_to_13_are_there():
    assert CATALOGUE.problems == []
    assert [lesson.number for lesson in CATALOGUE.lessons] == list(range(1, 14))
    for lesson in CATALOGUE.lessons:
        assert lesson.text.strip() and "$" in lesson.text, f"{lesson.id}: the text has no formula"
        assert lesson.change is not None and lesson.change.text
        assert all(e.text for e in lesson.expectations)


# ---- every lesson through the CLI runner ---------------------------------------------------------
RESULT_LINE = re.compile(r"^  ([✓✗…]) (\S+)\s+(\S+) (≤|<|≥|>|=|≠) (\S+)  ")


@pytest.mark.parametrize("lesson_id", LESSON_IDS)
def test_every_expectation_holds_through_backprop_lesson_run(lesson_id, capsys):
    code = main(["lesson", "run", lesson_id, "-q"])
    out = capsys.readouterr().out
    lines = [RESULT_LINE.match(line) for line in out.splitlines()]
    results = [m for m in lines if m]
    lesson = CATALOGUE.find(lesson_id)
    assert [m.group(2) for m in results] == [e.id for e in lesson.expectations], out
    assert all(m.group(1) == "✓" for m in results), out
    assert code == 0, out
    assert f"{len(results)}/{len(results)} expectations hold" in out


def test_a_lesson_is_deterministic():
    lesson = load_lesson("exploding_gradients")
    first, second = run_lesson(lesson), run_lesson(lesson)
    assert [(r.value, r.status, r.note) for r in first.results] == [(r.value, r.status, r.note) for r in second.results]


def test_the_issue_numbers_are_what_the_lessons_check():
    checks = {les.id: [e.check.text for e in les.expectations] for les in CATALOGUE.lessons}
    assert "train_acc(no_hidden, at=max) <= 0.75" in checks["xor_hidden_layer"]
    assert "train_acc(hidden) >= 1.0" in checks["xor_hidden_layer"]
    assert "grad_ratio(sigmoid, first, last, step=50) <= 1e-2" in checks["vanishing_gradients"]
    assert "fold(grad_ratio(relu_he, first, last, step=50)) <= 10" in checks["vanishing_gradients"]
    assert "fold(grad_ratio(residual, first, last, step=50)) <= 10" in checks["vanishing_gradients"]
    overfitting = CATALOGUE.find("overfitting").run("big").graph.training
    assert (overfitting["val_split"], overfitting["test_split"]) == (0.10, 0.25)  # the 65/10/25 split
    graphs = {r.name: r.graph for r in CATALOGUE.find("vanishing_gradients").runs}
    assert sum(n.params.get("function") == "sigmoid" for n in graphs["sigmoid"].nodes.values()) == 20
    optimizers = {r.graph.training["optimizer"]["name"] for r in CATALOGUE.find("optimizers").runs}
    assert {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"} <= optimizers
    functions = {r.graph.nodes["a1"].params["function"] for r in CATALOGUE.find("activation_functions").runs}
    assert functions == {"sigmoid", "tanh", "scaled_tanh", "relu", "leaky_relu", "prelu", "elu", "softplus",
                         "hard_tanh", "maxout"}


# ---- the runner is not a rubber stamp ---------------------------------------------------------------
def test_an_impossible_expectation_fails_the_run(tmp_path, capsys):
    text = (lessons_dir() / "xor_hidden_layer.toml").read_text(encoding="utf-8")
    impossible = text.replace('check = "train_acc(hidden) >= 1.0"', 'check = "train_acc(hidden) >= 1.01"')
    assert impossible != text
    path = tmp_path / "xor_impossible.toml"
    path.write_text(impossible, encoding="utf-8")
    assert main(["lesson", "run", str(path), "-q"]) == 4
    out = capsys.readouterr().out
    assert re.search(r"^  ✗ hidden_solves\s+1 ≥ 1\.01", out, re.M), out
    assert re.search(r"^  ✓ linear_fails", out, re.M)
    assert "1/2 expectations hold" in out


def test_swapping_the_runs_of_a_comparison_fails(tmp_path):
    text = (lessons_dir() / "exploding_gradients.toml").read_text(encoding="utf-8")
    swapped = text.replace('check = "diverged(clipped) == false"', 'check = "diverged(big_lr) == false"')
    path = tmp_path / "swapped.toml"
    path.write_text(swapped, encoding="utf-8")
    report = run_lesson(load_lesson_file(path))
    status = {r.id: r.status for r in report.results}
    assert status["clipping_rescues_lr"] == "unmet" and not report.passed


# ---- lesson files that are wrong ---------------------------------------------------------------------
GOOD = '''format = "backprop-studio.lesson"
version = 1
number = 1
title = "Tiny"
summary = "A tiny lesson."
text = "Watch $x$."

[[runs]]
name = "before"
[runs.graph]
name = "tiny"
nodes = [{id = "x", type = "Input", params = {shape = [2]}}, {id = "h", type = "Dense", params = {units = 2}},
         {id = "a", type = "Activation", params = {function = "tanh"}},
         {id = "o", type = "Dense", params = {units = 1}}]
edges = [{from = "x.out", to = "h.in"}, {from = "h.out", to = "a.in"}, {from = "a.out", to = "o.in"}]
[runs.graph.training]
dataset = {name = "xor"}
epochs = 2

[[runs]]
name = "after"
base = "before"
edits = [{node = "h", param = "units", from = 2, to = 4}]

[change]
text = "Widen h."
from_run = "before"
to_run = "after"

[[expectations]]
id = "trains"
text = "It trains."
check = "epochs(after) >= 1"
'''

BROKEN = [
    ("not valid TOML", 'title = "Tiny"', 'title = "Tiny'),
    ("not a lesson file", 'format = "backprop-studio.lesson"', 'format = "something"'),
    ("version 2 is newer", "version = 1", "version = 2"),
    ("unknown key 'titel'", 'title = "Tiny"', 'title = "Tiny"\ntitel = "x"'),
    ("'summary' must be a non-empty text", 'summary = "A tiny lesson."', 'summary = ""'),
    ("unknown run 'afterr'", 'check = "epochs(after) >= 1"', 'check = "epochs(afterr) >= 1"'),
    ("unknown measure 'epoch'", 'check = "epochs(after) >= 1"', 'check = "epoch(after) >= 1"'),
    ("expected a comparison", 'check = "epochs(after) >= 1"', 'check = "epochs(after) 1"'),
    ("unexpected character '$' at column 15", 'check = "epochs(after) >= 1"', 'check = "epochs(after) $ 1"'),
    ("unknown metric 'accuracy'", 'check = "epochs(after) >= 1"', 'check = "steps_to(after, accuracy, 1) >= 1"'),
    ("at=middle is not one of", 'check = "epochs(after) >= 1"', 'check = "val_loss(after, at=middle) >= 1"'),
    ("run 'after': edit #1: the graph has no node 'hh'", 'node = "h", param', 'node = "hh", param'),
    ("node 'h' has units = 2, the lesson expects 3", "from = 2, to = 4", "from = 3, to = 4"),
    ("parameter 'units' = 0 is invalid", "from = 2, to = 4", "from = 2, to = 0"),
    ("graph file 'examples/nope.json' not found", 'base = "before"\nedits = [{node = "h", param = "units", from = 2, '
     'to = 4}]', 'graph = "examples/nope.json"'),
    ("base run 'later' is not defined above it", 'base = "before"', 'base = "later"'),
    ("two [[runs]] tables are named 'before'", 'name = "after"', 'name = "before"'),
    ("training 'epochs' = 0 is out of range", "epochs = 2", "epochs = 0"),
    ("to_run 'nowhere' is not a run", 'to_run = "after"', 'to_run = "nowhere"'),
    ("a lesson needs at least one [[expectations]] table", '[[expectations]]\nid = "trains"\ntext = "It trains."\n'
     'check = "epochs(after) >= 1"\n', ""),
]


def write(tmp_path: Path, text: str, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_good_lesson_loads_and_derives_its_change(tmp_path):
    lesson = load_lesson_file(write(tmp_path, GOOD))
    assert lesson.id == "tiny" and lesson.run_names == ["before", "after"]
    assert lesson.graph("after").nodes["h"].params["units"] == 4
    assert lesson.graph("before").nodes["h"].params["units"] == 2
    assert [e.to_json() for e in lesson.change.edits] == [{"nodes": ["h"], "param": "units", "from": 2, "to": 4}]


@pytest.mark.parametrize("message, old, new", BROKEN, ids=[b[0] for b in BROKEN])
def test_malformed_lesson_files_are_refused_naming_the_file(tmp_path, capsys, message, old, new):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(LessonError) as err:
        load_lesson_file(path)
    assert "tiny.toml" in str(err.value) and message in str(err.value), str(err.value)
    assert main(["lesson", "run", str(path)]) == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error:") and "tiny.toml" in stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_unknown_lesson_name_lists_the_lessons(capsys):
    assert main(["lesson", "run", "no_such_lesson"]) == 1
    err = capsys.readouterr().err
    assert "unknown lesson 'no_such_lesson'" in err and "xor_hidden_layer" in err and "backprop lesson list" in err


def test_lesson_list_prints_every_lesson_in_order(capsys):
    assert main(["lesson", "list"]) == 0
    out = capsys.readouterr().out
    ids = re.findall(r"^\s*\d+\s+(\S+)", out, re.M)
    assert ids == LESSON_IDS


def test_a_broken_file_in_the_folder_is_reported_and_the_others_still_load(tmp_path):
    shutil.copy(lessons_dir() / "xor_hidden_layer.toml", tmp_path)
    write(tmp_path, GOOD.replace("version = 1", "version = x"), "broken.toml")
    catalogue = load_catalogue(tmp_path)
    assert [les.id for les in catalogue.lessons] == ["xor_hidden_layer"]
    assert len(catalogue.problems) == 1 and catalogue.problems[0].startswith("broken.toml: not valid TOML")
    with pytest.raises(LessonError, match="broken.toml: not valid TOML"):
        catalogue.find("broken")


def test_lesson_show_prints_text_runs_change_and_checks(capsys):
    assert main(["lesson", "show", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# 1. XOR needs a hidden layer")
    assert "run no_hidden" in out and "change: Insert" in out and "check hidden_solves" in out


# ---- the expectation language ------------------------------------------------------------------------
RUNS = ["a", "b"]


def traces(**kw: Trace) -> dict[str, Trace]:
    return {"a": kw.get("a", Trace()), "b": kw.get("b", Trace())}


def step(n: int, loss: float, norms: dict[str, float], epoch: int = 0) -> dict:
    return {"event": "step", "epoch": epoch, "step": n, "loss": loss, "lr": 0.1, "grad_norms": norms}


def epoch(n: int, train_loss: float, val_acc: float | None = None, step_no: int | None = None) -> dict:
    return {"event": "epoch", "epoch": n, "step": step_no if step_no is not None else n, "train_loss": train_loss,
            "val_loss": None, "train_acc": None, "val_acc": val_acc}


FINISH = {"event": "finish", "reason": "completed", "epoch": 3, "step": 3}


@pytest.mark.parametrize("text, value", [
    ("1 + 2 * 3 >= 0", 7.0), ("(1 + 2) * 3 >= 0", 9.0), ("-2 - -3 >= 0", 1.0), ("10 / 4 / 5 >= 0", 0.5),
    ("log10(1e-13) >= -20", -13.0), ("abs(-3) >= 0", 3.0), ("min(2, max(1, 5)) >= 0", 2.0),
    ("fold(0.25) >= 0", 4.0), ("ln(1) >= 0", 0.0), ("true + false + 2e-1 >= 0", 1.2),
    ("median(3, 1, 2) >= 0", 2.0), ("median(5, 5, -1) >= 0", 5.0),
])
def test_arithmetic_has_the_usual_precedence(text, value):
    outcome = parse_check(text, RUNS).evaluate(traces())
    assert outcome.value == pytest.approx(value) and outcome.status == "met"


def test_gradient_ratio_first_and_last_follow_the_stream_order():
    a = Trace()
    for n in (1, 2, 3):
        a.feed(step(n, 1.0, {"d1": 10.0 ** -n, "d2": 1.0, "out": 2.0}))
    check = parse_check("grad_ratio(a, first, last, step=2) <= 1e-2", RUNS)
    outcome = check.evaluate(traces(a=a))
    assert outcome.value == pytest.approx(0.005) and outcome.status == "met"
    assert parse_check("grad_spread(a, at=first) >= 0", RUNS).evaluate(traces(a=a)).value == pytest.approx(20.0)


def test_a_value_at_a_step_is_decided_once_the_step_has_passed():
    a = Trace()
    check = parse_check("loss(a, step=2) <= 0.5", RUNS)
    a.feed(step(1, 0.9, {"h": 1.0}))
    assert check.evaluate(traces(a=a)).status == "pending"
    a.feed(step(2, 0.4, {"h": 1.0}))
    assert check.evaluate(traces(a=a)).status == "met"


def test_max_reaching_a_bound_is_met_before_the_run_ends_and_last_waits():
    a = Trace()
    by_max = parse_check("val_acc(a, at=max) >= 0.9", RUNS)
    by_last = parse_check("val_acc(a) >= 0.9", RUNS)
    a.feed(epoch(1, 0.5, 0.6))
    assert by_max.evaluate(traces(a=a)).status == "pending"
    a.feed(epoch(2, 0.3, 0.95))
    assert by_max.evaluate(traces(a=a)).status == "met"
    assert by_last.evaluate(traces(a=a)).status == "pending"
    a.feed(epoch(3, 0.2, 0.85))
    a.feed(FINISH)
    assert by_max.evaluate(traces(a=a)).status == "met"
    assert by_last.evaluate(traces(a=a)).status == "unmet"


def test_steps_to_is_unmet_as_soon_as_the_bound_passes_and_never_when_not_reached():
    a = Trace()
    check = parse_check("steps_to(a, loss, 0.1) <= 2", RUNS)
    for n, loss in [(1, 0.5), (2, 0.4)]:
        a.feed(step(n, loss, {"h": 1.0}))
        assert check.evaluate(traces(a=a)).status == "pending"
    a.feed(step(3, 0.05, {"h": 1.0}))
    assert check.evaluate(traces(a=a)).status == "unmet"
    reached = parse_check("steps_to(a, loss, 0.1) <= 5", RUNS).evaluate(traces(a=a))
    assert (reached.status, reached.value) == ("met", 3.0)
    b = Trace()
    b.feed(step(1, 0.5, {"h": 1.0}))
    b.feed(FINISH)
    never = parse_check("steps_to(b, loss, 0.1) > 100", RUNS).evaluate(traces(b=b))
    assert never.status == "met" and math.isinf(never.value) and "never reached" in never.note


def test_divergence_is_met_at_once_and_names_step_and_layer():
    a = Trace()
    check = parse_check("diverged(a) == true", RUNS)
    a.feed(step(1, 1.0, {"h": 1.0}))
    assert check.evaluate(traces(a=a)).status == "pending"
    a.feed({"event": "diverged", "step": 7, "node": "h3", "message": "…"})
    outcome = check.evaluate(traces(a=a))
    assert outcome.status == "met" and outcome.note == "diverged at step 7 in layer 'h3'"
    b = Trace()
    b.feed(FINISH)
    assert parse_check("diverged(b) == true", RUNS).evaluate(traces(b=b)).status == "unmet"


def test_comparisons_between_runs_wait_for_both():
    a, b = Trace(), Trace()
    check = parse_check("val_acc(b) - val_acc(a) >= 0.2", RUNS)
    a.feed(epoch(1, 0.5, 0.5))
    a.feed(FINISH)
    assert check.evaluate(traces(a=a, b=b)).status == "pending"
    b.feed(epoch(1, 0.5, 0.75))
    b.feed(FINISH)
    outcome = check.evaluate(traces(a=a, b=b))
    assert outcome.status == "met" and outcome.value == pytest.approx(0.25)


def test_statistics_first_last_and_all_read_activation_nodes():
    a = Trace(activations=["s1", "s2"])
    a.feed({"event": "activation_stats", "step": 1, "stats": {
        "d1": {"mean": 0, "std": 9.0, "saturated": None, "dead": None},
        "s1": {"mean": 0, "std": 0.5, "saturated": 0.2, "dead": None},
        "s2": {"mean": 0, "std": 0.1, "saturated": 0.6, "dead": None}}})
    t = traces(a=a)
    assert parse_check("act_std(a, last, step=1) / act_std(a, first, step=1) >= 0", RUNS).evaluate(t).value \
        == pytest.approx(0.2)
    assert parse_check("saturated(a, all, step=1) >= 0", RUNS).evaluate(t).value == pytest.approx(0.4)
    assert parse_check("std_spread(a, step=1) >= 0", RUNS).evaluate(t).value == pytest.approx(5.0)


def test_window_and_best_epoch_selectors():
    a = Trace()
    for n, loss in enumerate([0.9, 0.5, 0.2, 0.4, 0.3], start=1):
        a.feed(epoch(n, loss))
    a.feed({**FINISH, "reason": "early_stopping", "best_epoch": 3})
    t = traces(a=a)
    assert parse_check("train_loss(a, at=max, last=2) >= 0", RUNS).evaluate(t).value == pytest.approx(0.4)
    assert parse_check("train_loss(a, at=best) >= 0", RUNS).evaluate(t).value == pytest.approx(0.2)
    assert parse_check("epochs_to(a, train_loss, 0.25) >= 0", RUNS).evaluate(t).value == 3.0


@pytest.mark.parametrize("text, message", [
    ("grad(a, all) <= 1", "'all' is not a single layer"),
    ("loss(a, step=0) <= 1", "step= needs a positive integer"),
    ("loss(a, epoch=2) <= 1", "unknown keyword epoch="),
    ("loss(a, step=2, at=max) <= 1", "not several"),
    ("diverged(a, b) == 1", "takes diverged(run)"),
    ("loss(a) <= 1 2", "unexpected '2'"),
    ("min(1) <= 1", "min() takes 2 argument(s)"),
    ("train_loss(a, at=best, last=3) <= 1", "at=best"),
])
def test_bad_checks_say_what_is_wrong(text, message):
    with pytest.raises(LessonError, match=re.escape(message)):
        parse_check(text, RUNS)


def test_the_evaluator_gives_the_same_answers_from_the_metrics_stream(tmp_path):
    """What the studio records (the JSON lines) evaluates exactly as the live events."""
    lesson = load_lesson("xor_hidden_layer")
    live = Evaluator(lesson)
    recorded: dict[str, list[dict]] = {}
    from engine.session import prepare_run

    for spec in lesson.runs:
        events = recorded.setdefault(spec.name, [])

        def listener(event, name=spec.name, events=events):
            live.feed(name, event)
            if event.event != "start":
                events.append(event.to_json())
        prepare_run(spec.graph.copy(), spec.base_dir, listener=listener).trainer.run()
    replay = Evaluator(lesson)
    for name, events in recorded.items():
        for event in events:
            replay.feed(name, event)
    assert [r.to_json() for r in replay.results()] == [r.to_json() for r in live.results()]
    assert all(r.met for r in live.results())


def test_the_measures_table_in_the_docs_is_current():
    from engine.lessons.expect import measures_markdown

    text = (Path(__file__).resolve().parents[2] / "docs" / "lessons.md").read_text(encoding="utf-8")
    assert measures_markdown() in text, "docs/lessons.md is stale: run python -m engine.lessons"
