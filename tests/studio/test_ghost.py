"""A ghost run shows the contrast: it stays on the axes, it does not stretch a short run, it does not
outlive its graph silently."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.events import EpochEvent, FinishEvent, StartEvent, StepEvent
from studio.plots.curves import CurvesPanel
from studio.plots.gradients import GradientPanel
from studio.training.history import RunRecord


def make_run(number: int, name: str, norms: list[float], steps: int) -> RunRecord:
    """A finished run whose layers' gradient norms are ``norms`` at every step."""
    nodes = [f"d{i + 1}" for i in range(len(norms))]
    rec = RunRecord(number, name)
    events = [StartEvent(epochs=steps // 10, steps_per_epoch=10, n_train=40, n_val=10, param_nodes=nodes)]
    for step in range(1, steps + 1):
        loss = 0.7 * math.exp(-step / steps) * norms[-1] / 1e-2
        events.append(StepEvent((step - 1) // 10, step, loss, 0.1, dict(zip(nodes, norms, strict=True)), 1e3))
        if step % 10 == 0:
            events.append(EpochEvent(step // 10, step, loss, loss * 1.1, 0.5, 0.5))
    events.append(FinishEvent("completed", steps // 10, steps))
    rec.ingest(events)
    return rec


@pytest.fixture
def panels(qtbot):
    curves, gradients = CurvesPanel(), GradientPanel()
    for panel in (curves, gradients):
        qtbot.addWidget(panel)
        panel.resize(1280, 230)
        panel.show()
    qtbot.waitExposed(gradients)
    return curves, gradients


def test_a_vanishing_ghost_stays_on_the_depth_axis(panels):
    _, gradients = panels
    healthy = make_run(2, "deep_relu_he", [2e-2] * 10, steps=50)
    vanishing = make_run(1, "deep_sigmoid", [10.0 ** (-13 + i) for i in range(10)], steps=50)
    gradients.set_record(healthy)
    gradients.set_ghost(vanishing)
    gradients.refresh(force=True)
    (_, _), (y0, y1) = gradients.bars_plot.viewRange()
    ghost_x, ghost_y = gradients.ghost_bars.getData()
    assert len(ghost_y) == 10
    assert y0 <= np.min(ghost_y) and np.max(ghost_y) <= y1, "the ghost's first layers fall off the axis"
    assert y0 <= -13 + 1e-9
    (_, _), (cy0, _) = gradients.curves_plot.viewRange()
    assert cy0 <= -13 + 1e-9  # the per-step curves of the ghost are inside the log axis too
    assert "ghost: #1 deep_sigmoid" in [label.text for _, label in gradients.bars_legend.items]


def test_a_longer_ghost_does_not_stretch_a_short_run(panels):
    curves, gradients = panels
    short = make_run(2, "short", [1e-2] * 4, steps=40)
    long = make_run(1, "long", [1e-3] * 4, steps=400)
    for panel in (curves, gradients):
        panel.set_record(short)
        panel.set_ghost(long)
        panel.refresh(force=True)
    for plot in (curves.step_plot, gradients.curves_plot):
        (x0, x1), _ = plot.viewRange()
        assert x1 <= 40 * 1.1, f"a 40-step run drawn over {x1:.0f} steps"
    (_, _), (ly0, _) = curves.step_plot.viewRange()
    assert ly0 <= math.log10(np.min(long.loss.data))  # the ghost's losses stay on the y axis


def test_a_ghost_is_dropped_with_its_graph(window, qtbot):
    ws = window.training
    old = make_run(1, "deep_sigmoid", [1e-3] * 3, steps=20)
    ws.controller.runs.append(old)
    ws.runs_panel.set_runs(ws.controller.runs)
    ws.runs_panel.set_ghost(old)
    assert ws.gradients.ghost is old and ws.curves.ghost is old
    assert window.files.new()
    assert ws.ghost is None and ws.gradients.ghost is None and ws.curves.ghost is None
    assert ws.runs_panel.ghost.currentData() is None
    assert ws.runs_panel.tree.topLevelItemCount() == 1  # the run history itself stays
