"""Measures of lessons 11–13: graph facts (params, out_dim, warnings), gradients through time
(time_grad_ratio, sigma_max, slope_bound) and the pruned model; the new lessons' numbers and a
mutated lesson 11 that the runner fails."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from engine.cli import main
from engine.compiler import compile_graph
from engine.errors import LessonError
from engine.events import TimeGradsEvent
from engine.graph import Graph
from engine.lessons import Evaluator, load_lesson, parse_check
from engine.lessons.expect import Trace
from engine.lessons.format import lessons_dir
from engine.training import TrainConfig, Trainer


def _status(evaluator: Evaluator) -> dict[str, tuple[str, float | None]]:
    return {r.id: (r.status, r.value) for r in evaluator.results()}


# ---- graph facts: decided before anything trains ----------------------------------------------------
def test_lesson_11_convolution_facts_are_decided_before_training():
    ev = Evaluator(load_lesson("convolution_lenet"))
    status = _status(ev)
    assert status["stride_rounds_down"] == ("met", (32 - 5) // 2 + 1)
    assert status["stride_warns"] == ("met", 2)  # height and width
    assert status["stride1_exact"] == ("met", 32 - 5 + 1)
    assert status["stride1_no_warning"] == ("met", 0)
    assert status["conv_weights"] == ("met", (5 * 5 * 1 + 1) * 6)
    assert status["dense_weights"] == ("met", 64 * 384 + 384)
    assert status["lenet_learns"][0] == "pending"  # needs the trained model


def test_warnings_quote_the_shape_report_and_reset_takes_the_edited_graph():
    lesson = load_lesson("convolution_lenet")
    ev = Evaluator(lesson)
    note = next(r.note for r in ev.results() if r.id == "stride_warns")
    assert "14.5 is not a whole number" in note and "stride 1" in note
    edited = lesson.graph("stride2")
    edited.set_param("c1", "stride", [3, 3])
    ev.reset("stride2", edited)
    status = _status(ev)
    assert status["stride_rounds_down"] == ("unmet", (32 - 5) // 3 + 1)
    assert status["stride_warns"] == ("unmet", 0)


def _facts_check(text: str, lesson_id: str = "convolution_lenet"):
    lesson = load_lesson(lesson_id)
    return parse_check(text, lesson.run_names).evaluate(Evaluator(lesson).traces)


def test_graph_fact_measures_read_totals_first_last_and_say_what_is_missing():
    total = sum(r.params for r in Graph.load(lessons_dir().parents[1] / "examples/lenet5_digits.json").summary()[0])
    assert _facts_check("params(lenet, all) == 1").value == total
    assert _facts_check("params(lenet, first) == 1").value == 156
    assert _facts_check("params(lenet, last) == 1").value == 64 * 10 + 10
    assert _facts_check("out_dim(stride2, c1, 0) == 4").status == "met"  # channels = filters
    assert _facts_check("out_dim(stride2, c1, -1) == 14").status == "met"
    missing = _facts_check("params(lenet, nope) == 1")
    assert missing.status == "unmet" and "no node 'nope'" in missing.note
    bad_axis = _facts_check("out_dim(stride2, c1, 3) == 1")
    assert bad_axis.status == "unmet" and "no axis 3" in bad_axis.note
    with pytest.raises(LessonError, match="'all' is not a single layer"):
        parse_check("out_dim(stride2, all, 1) == 14", ["stride2"])


# ---- gradients through time ------------------------------------------------------------------------
def _time_event(step: int, norms: list[float], before: float, after: float, gamma: float | None = 1.0,
                node: str = "rnn") -> dict:
    return TimeGradsEvent(step, node, norms, after, "SimpleRNN" if gamma else "LSTM", gamma, before).to_json()


def test_time_measures_read_the_time_grads_events():
    trace = Trace()
    check = parse_check("time_grad_ratio(r, rnn, step=1) <= 1e-3", ["r"])
    assert check.evaluate({"r": trace}).status == "pending"
    trace.feed(_time_event(1, [2e-4, 0.5, 1.0], before=0.5, after=0.7))
    out = check.evaluate({"r": trace})
    assert (out.status, out.value) == ("met", pytest.approx(2e-4))
    trace.feed(_time_event(26, [0.3, 0.6, 1.5], before=0.9, after=1.2))
    traces = {"r": trace}
    assert parse_check("time_grad_ratio(r, last) >= 0.2", ["r"]).evaluate(traces).value == pytest.approx(0.2)
    assert parse_check("sigma_max(r, rnn, step=1) == 0.5", ["r"]).evaluate(traces).status == "met"
    assert parse_check("sigma_max(r, rnn, at=max) == 0.9", ["r"]).evaluate(traces).value == 0.9
    bound = parse_check("sigma_max(r, rnn, step=1) < 1 / slope_bound(r, rnn, step=1)", ["r"]).evaluate(traces)
    assert bound.status == "met" and bound.target == 1.0
    assert parse_check("time_grad_ratio(r, rnn, step=1) >= 1e-3", ["r"]).evaluate(traces).status == "unmet"
    with pytest.raises(LessonError, match="'all' is not a single layer"):
        parse_check("time_grad_ratio(r, all) <= 1", ["r"])


def test_slope_bound_of_an_lstm_is_not_measured():
    trace = Trace()
    trace.feed(_time_event(1, [0.1, 1.0], before=2.0, after=2.1, gamma=None, node="lstm"))
    trace.feed({"event": "finish", "reason": "completed", "epoch": 1, "step": 1})
    out = parse_check("slope_bound(r, lstm) <= 1", ["r"]).evaluate({"r": trace})
    assert out.status == "unmet" and out.value is None


def test_time_grads_sigma_max_before_is_the_initial_wh_at_step_1():
    g = Graph("rnn")
    g.add_node("Input", {"shape": [6, 2]}, "x")
    g.add_node("SimpleRNN", {"units": 5, "recurrent_scale": 0.5}, "rnn")
    g.add_node("Dense", {"units": 1}, "head")
    g.connect("x", "rnn")
    g.connect("rnn", "head")
    g.training = {"loss": "mse", "optimizer": {"name": "sgd", "lr": 0.5}, "stats_every": 2, "epochs": 3,
                  "batch_size": 8, "shuffle": False}
    model = compile_graph(g, dtype="float64", seed=0)
    initial = np.linalg.norm(model.runtimes["rnn"].W["Wh"], 2)
    rng = np.random.default_rng(0)
    events: list = []
    Trainer(model, rng.normal(size=(8, 6, 2)), rng.normal(size=(8, 1)), TrainConfig.from_training(g.training),
            task="regression", listener=events.append).run()
    timed = [e for e in events if isinstance(e, TimeGradsEvent)]
    assert [e.step for e in timed] == [1, 3]
    assert timed[0].sigma_max_before == pytest.approx(initial, rel=1e-9) == pytest.approx(0.5, rel=1e-9)
    assert not math.isclose(timed[0].sigma_max, initial, rel_tol=1e-6)  # taken after the update
    assert timed[0].to_json()["sigma_max_before"] == pytest.approx(initial)


# ---- the new lessons teach what the issue asks ---------------------------------------------------------
def test_lessons_11_to_13_check_the_issue_numbers():
    conv = load_lesson("convolution_lenet")
    assert "(32 - 5)/2 + 1 = 14.5" in conv.text
    stride2 = conv.graph("stride2")
    assert stride2.nodes["x"].params["shape"] == (1, 32, 32) and stride2.nodes["c1"].params["stride"] == (2, 2)
    assert [e.to_json() for e in conv.change.edits] == [{"nodes": ["c1"], "param": "stride", "from": [2, 2],
                                                           "to": [1, 1]}]
    residual = load_lesson("residual_networks")
    plain, res = residual.graph("plain"), residual.graph("residual")
    convs = [sum(n.type == "Conv2D" for n in g.nodes.values()) for g in (plain, res)]
    assert convs == [13, 13] and not any(n.type == "Add" for n in plain.nodes.values())
    rec = load_lesson("recurrent_lstm")
    assert rec.graph("lstm").nodes["rnn"].params["forget_bias"] == 2.0
    assert rec.graph("lstm_fb1").nodes["rnn"].params["forget_bias"] == 1.0
    assert "sets $b_f = 2$ on purpose" in rec.text and "after training" in rec.text
    assert {rec.graph(r).nodes["rnn"].type for r in ("rnn", "lstm", "gru")} == {"SimpleRNN", "LSTM", "GRU"}


def test_an_impossible_convolution_expectation_fails_the_run(tmp_path, capsys):
    text = (lessons_dir() / "convolution_lenet.toml").read_text(encoding="utf-8")
    mutations = {
        'check = "out_dim(stride2, c1, 1) == 14"': 'check = "out_dim(stride2, c1, 1) == 14.5"',
        'check = "warnings(stride1, c1) == 0"': 'check = "warnings(stride1, c1) >= 1"',
        'check = "params(lenet, c1) == 156"': 'check = "params(lenet, c1) == 157"',
        'check = "test_acc(lenet) >= 0.9"': 'check = "test_acc(lenet) >= 1.01"',
    }
    for old, new in mutations.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "conv_impossible.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["lesson", "run", str(path), "-q"]) == 4
    out = capsys.readouterr().out
    failed = re.findall(r"^  ✗ (\S+)", out, re.M)
    assert failed == ["stride_rounds_down", "stride1_no_warning", "conv_weights", "lenet_learns"], out
    assert "4/8 expectations hold" in out
