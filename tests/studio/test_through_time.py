"""The Through-time view: gradients through time drawn from time_grads events, the ghost run, the
1/γ line, the hidden-state heat map and forget gate, × T on recurrent cards and their hover text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.compiler import compile_graph
from engine.events import StartEvent, StepEvent, TimeGradsEvent
from engine.graph import Graph
from engine.through_time import hidden_trace
from studio import edits
from studio.training.history import RunRecord
from studio.views.through_time import MAX_CELLS, ThroughTimePanel, bounded_image
from tests.studio.test_training_run import open_example, wait_idle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T = 30


def geometric(rate: float, scale: float = 1.0) -> np.ndarray:
    """‖∂L/∂h_t‖ = scale · rate^(T − t), t = 1 … T: a gradient shrinking by ``rate`` per step back."""
    return scale * rate ** np.arange(T - 1, -1, -1, dtype=np.float64)


def recurrent_record(number: int, layer: str, activation: str, gamma: float | None,
                     samples: list[tuple[int, np.ndarray, float]], node: str = "rnn") -> RunRecord:
    """A run of Input → <layer> → Dense that recorded the given (step, norms, σ_max) samples."""
    graph = {"nodes": [{"id": "x", "type": "Input", "params": {"shape": [T, 2]}},
                       {"id": node, "type": layer, "params": {"units": 4, "activation": activation}},
                       {"id": "out", "type": "Dense", "params": {"units": 1}}]}
    rec = RunRecord(number, f"{layer.lower()}_run", graph=graph)
    events: list = [StartEvent(1, 100, 10, 0, [node, "out"])]
    for step, norms, sigma in samples:
        events.append(StepEvent(0, step, 1.0, 0.1, {node: 0.1, "out": 0.2}, 1000.0))
        events.append(TimeGradsEvent(step, node, norms.tolist(), sigma, layer, gamma))
    rec.ingest(events)
    return rec


def original(curve) -> tuple[np.ndarray, np.ndarray]:
    """A curve's data as set (getData gives log10 values on a log axis)."""
    return curve.getOriginalDataset()


@pytest.fixture
def panel(qtbot):
    p = ThroughTimePanel()
    qtbot.addWidget(p)
    p.resize(1100, 520)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_time_grads_events_are_drawn_as_the_curve_of_norms_against_t(panel):
    first, last = geometric(0.9), geometric(0.5, 2.0)
    rec = recurrent_record(1, "SimpleRNN", "tanh", 1.0, [(1, first, 0.9), (26, last, 1.3)])
    panel.set_record(rec)
    assert panel.refresh(force=True)
    t, norms = original(panel.curves["rnn"])
    np.testing.assert_array_equal(t, np.arange(1, T + 1))
    np.testing.assert_allclose(norms, last)  # the latest sample, solid
    np.testing.assert_allclose(original(panel.first_curves["rnn"])[1], first)  # step 1, faint
    steps, sigma = panel.sigma_curves["rnn"].getData()
    np.testing.assert_array_equal(steps, [1, 26])
    np.testing.assert_allclose(sigma, [0.9, 1.3])
    ratio = last[0] / last[-1]  # 0.5 ** 29 ≈ 1.9e-9
    assert "‖∂L/∂h₁‖ ÷ ‖∂L/∂h₃₀‖" in panel.ratio_label.text()
    assert "10⁻⁹" in panel.ratio_label.text() and f"{ratio:.1e}" in panel.ratio_label.text()
    assert not panel.hint.isVisible()


def test_every_plot_of_the_view_paints_its_axes_from_a_cached_pixmap(panel):
    """Its plots sit in the layout itself, not in cells: their axes must be cached as every
    panel's are, or each frame replays every tick label (a 12 ms paint, 7 ms with the cache)."""
    from PySide6.QtWidgets import QGraphicsItem

    plots = panel.plot_items()
    assert {id(p) for p in plots} == {id(panel.time_plot), id(panel.sigma_plot), id(panel.heat_plot),
                                      id(panel.gate_plot)}
    for plot in plots:
        for side in ("left", "bottom"):
            assert plot.getAxis(side).cacheMode() == QGraphicsItem.CacheMode.DeviceCoordinateCache


def test_a_network_without_recurrent_layers_keeps_the_explanation(panel):
    rec = RunRecord(1, "mlp", nodes=["h"])
    rec.ingest([StepEvent(0, 1, 1.0, 0.1, {"h": 0.3}, 10.0)])
    panel.set_record(rec)
    panel.refresh(force=True)
    assert panel.hint.isVisible() and "recurrent layer" in panel.hint.text()


def test_the_ghost_run_stays_beside_the_live_run_while_it_streams(panel):
    rnn = recurrent_record(1, "SimpleRNN", "tanh", 1.0, [(1, geometric(0.7), 1.0), (26, geometric(0.6), 1.1)])
    lstm = recurrent_record(2, "LSTM", "tanh", None, [(1, geometric(0.97), 2.0)])
    panel.set_record(lstm)
    panel.set_ghost(rnn)
    panel.refresh(force=True)
    np.testing.assert_allclose(original(panel.ghost_curves["rnn"])[1], geometric(0.6))
    np.testing.assert_allclose(original(panel.ghost_first["rnn"])[1], geometric(0.7))  # at initialisation
    for step in (26, 51, 76):  # the live run keeps streaming: the ghost must not be lost or redrawn away
        lstm.ingest([StepEvent(0, step, 1.0, 0.1, {"rnn": 0.1, "out": 0.2}, 1000.0),
                     TimeGradsEvent(step, "rnn", geometric(0.95).tolist(), 2.1, "LSTM", None)])
        assert panel.refresh(force=True)
    np.testing.assert_allclose(original(panel.curves["rnn"])[1], geometric(0.95))
    np.testing.assert_allclose(original(panel.ghost_curves["rnn"])[1], geometric(0.6))
    assert panel.ghost_curves["rnn"].scene() is panel.time_plot.scene()
    assert "ghost #1" in panel.ratio_label.text()
    panel.set_ghost(None)
    assert not panel.ghost_curves


@pytest.mark.parametrize("activation, gamma, line", [("tanh", 1.0, 1.0), ("sigmoid", 0.25, 4.0),
                                                     ("relu", 1.0, 1.0)])
def test_the_inverse_gamma_line_sits_at_one_over_the_activations_slope_bound(panel, activation, gamma, line):
    panel.set_record(recurrent_record(1, "SimpleRNN", activation, gamma, [(1, geometric(0.8), 0.7)]))
    panel.refresh(force=True)
    assert list(panel.gamma_lines) == [line]
    item = panel.gamma_lines[line]
    assert item.value() == line
    assert f"1/γ = {line:g} ({activation})" in item.label.format
    assert "must vanish" in item.toolTip() and "1/4 for sigmoid" in item.toolTip()
    top = panel.sigma_plot.viewRange()[1][1]
    assert top > line  # the line is inside the view, not above it


def test_gated_layers_have_no_inverse_gamma_line_and_say_why(panel):
    panel.set_record(recurrent_record(1, "LSTM", "tanh", None, [(1, geometric(0.99), 2.0)]))
    panel.refresh(force=True)
    assert not panel.gamma_lines
    assert "LSTM: no 1/γ bound" in panel.titles["sigma"]
    panel.set_ghost(recurrent_record(2, "SimpleRNN", "sigmoid", 0.25, [(1, geometric(0.5), 1.0)]))
    assert list(panel.gamma_lines) == [4.0]  # the ghost's RNN brings its line


def test_heat_map_is_units_by_time_of_the_chosen_sequence_with_the_forget_gate(panel):
    graph = Graph.load(EXAMPLES / "lstm_temporal_order.json")  # Input (50, 6) → LSTM(16)
    model = compile_graph(graph, seed=3)
    X = np.random.default_rng(0).normal(size=(5, 50, 6)).astype(np.float32)
    panel.model_source = lambda: model
    panel.set_data(X, np.arange(5), "classification")
    panel.set_record(recurrent_record(1, "LSTM", "tanh", None, [(1, geometric(0.9), 1.5)]))
    panel.example_box.setValue(3)
    panel.refresh(force=True)
    expected = hidden_trace(model, X[3], "rnn")["rnn"]
    assert panel.heat.image.shape == (16, 50)  # rows: units, columns: t
    np.testing.assert_allclose(panel.heat.image, expected.hidden)
    t, gate = panel.gate_curve.getData()
    np.testing.assert_array_equal(t, np.arange(1, 51))
    np.testing.assert_allclose(gate, expected.forget_mean)
    assert "forget gate" in panel.titles["gate"]
    assert "class 3" in panel.example_info.text()


def test_heat_map_cells_are_bounded_for_long_sequences():
    image = bounded_image(np.zeros((1000, 5000)))
    assert image.shape[0] <= MAX_CELLS[0] + 1 and image.shape[1] <= MAX_CELLS[1] + 1
    assert bounded_image(np.ones((16, 50))).shape == (16, 50)  # small traces are drawn whole


def test_samples_per_node_stay_bounded_and_keep_the_first_and_latest():
    rec = recurrent_record(1, "GRU", "tanh", None, [])
    rec.time_grads.max_samples = 64
    for step in range(1, 1001):
        rec.ingest([TimeGradsEvent(step, "rnn", geometric(0.9, step).tolist(), 1.0, "GRU", None)])
    s = rec.time_grads.series["rnn"]
    assert len(s) <= 64 and s.latest_step == 1000 and s.first_step == 1
    np.testing.assert_allclose(s.latest(), geometric(0.9, 1000))
    np.testing.assert_allclose(s.first, geometric(0.9, 1))


def test_recorded_time_grads_are_exported_in_the_metrics_stream(tmp_path):
    norms = geometric(0.7)
    rec = recurrent_record(1, "SimpleRNN", "tanh", 1.0, [(1, norms, 0.9), (26, norms, 1.1)])
    rec.export_jsonl(tmp_path / "run.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    records = [obj for obj in lines if obj["event"] == "time_grads"]
    assert [r["step"] for r in records] == [1, 26]
    assert records[1]["node"] == "rnn" and records[1]["sigma_max"] == 1.1 and records[1]["gamma"] == 1.0
    np.testing.assert_allclose(records[0]["norms"], norms)


def test_recurrent_cards_show_times_t_from_the_shape_report(window, tmp_path):
    open_example(window, tmp_path, "lstm_temporal_order")
    card = window.scene.node_item("rnn")
    assert card.time_text == "× 50"
    assert "T = 50 time steps" in card.toolTip()
    assert window.scene.node_item("logits").time_text == ""  # not recurrent
    edits.set_param(window.document, "x", "shape", (20, 6))
    assert window.scene.node_item("rnn").time_text == "× 20"


def test_hovering_a_recurrent_card_shows_the_first_over_last_time_step_ratio(window, tmp_path):
    open_example(window, tmp_path, "lstm_temporal_order")
    ws = window.training
    norms = geometric(0.8)  # first ÷ last = 0.8 ** 29 ≈ 1.5e-3
    rec = recurrent_record(1, "LSTM", "tanh", None, [(1, norms, 2.0)])
    ws.overlay.update_from(rec, force=True)
    tip = window.scene.node_item("rnn").toolTip()
    assert "‖∂L/∂h₁‖ ÷ ‖∂L/∂h₃₀‖ = 10⁻³ (1.5e-03×)" in tip
    assert "gradient through time" not in window.scene.node_item("x").toolTip()


def test_streaming_an_lstm_run_fills_the_view_without_drawing_per_event(window, qtbot, tmp_path):
    open_example(window, tmp_path, "lstm_temporal_order", epochs=2, stats_every=5)
    ws = window.training
    ws.panel_docks["through_time"].raise_()
    view = ws.through_time
    qtbot.waitUntil(view.isVisible, timeout=2000)
    ws.actions["train"].trigger()
    wait_idle(qtbot, ws)
    rec = ws.controller.record
    series = rec.time_grads.series["rnn"]
    assert len(series) == 10 == rec.n_steps // 5  # steps 1, 6, …, 46 of 2 × 25
    qtbot.waitUntil(lambda: view.trace is not None, timeout=3000)
    # the last sample is drawn by the deferred frame (at most MAX_HZ), shortly after the run ends
    qtbot.waitUntil(lambda: np.allclose(original(view.curves["rnn"])[1], series.latest(), rtol=1e-7, atol=0),
                    timeout=3000)
    assert len(view.sigma_curves["rnn"].getData()[0]) == 10
    assert view.heat.image.shape == (16, 50)
    assert len(view.gate_curve.getData()[1]) == 50
    assert np.all((view.gate_curve.getData()[1] > 0) & (view.gate_curve.getData()[1] < 1))
    assert view.draw_count <= len(series) + 4  # at most once per new sample (+ empty, start, finish)
    assert "‖∂L/∂h₁‖ ÷ ‖∂L/∂h₅₀‖" in window.scene.node_item("rnn").toolTip()


def test_the_sigma_plot_top_grows_in_steps_while_training_and_fits_at_the_end():
    """Every change of the σ_max plot's range repaints both its axes: while σ_max climbs
    2 → 8 the top changes a few times, always above the data, and fits it once the run ends."""
    from studio.views.through_time import steady_top

    shown, tops = None, []
    for sigma in np.linspace(2.0, 8.0, 200):
        shown = steady_top(shown, 1.15 * sigma, done=False)
        assert shown >= 1.15 * sigma
        tops.append(shown)
    assert len(set(tops)) <= 5 and tops == sorted(tops)
    assert steady_top(shown, 1.15 * 8.0, done=True) == 9.5  # the next half above 9.2
    assert steady_top(10.0, 3.0, done=False) == 10.0  # a falling σ_max keeps the range while running
    assert steady_top(None, 0.3, done=False) == pytest.approx(0.3)  # 3 × 10⁻¹
