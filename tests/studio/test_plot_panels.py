"""What the plot panels show around a run: an empty-state hint, true axis values, a sharp final boundary."""

from __future__ import annotations

import os

import numpy as np

from studio.plots.boundary import MAX_GRID
from tests.studio.test_training_run import open_example, train_example, wait_idle


def test_plots_explain_themselves_until_a_run_exists(window, qtbot, tmp_path):
    ws = window.training
    ws.panel_docks["curves"].raise_()
    qtbot.waitUntil(lambda: ws.curves.isVisible(), timeout=2000)
    assert ws.curves.hint.isVisible() and "Train" in ws.curves.hint.text()
    open_example(window, tmp_path, "xor", epochs=5)
    ws.actions["train"].trigger()
    wait_idle(qtbot, ws)
    assert not ws.curves.hint.isVisible()
    assert not ws.gradients.hint.isVisible()
    qtbot.waitUntil(lambda: ws.curves.step_plot.viewRange()[0][1] < 5.5, timeout=2000)  # finished: fits 5 steps


def test_boundary_axes_show_data_coordinates_and_the_final_frame_is_full_resolution(window, qtbot, tmp_path):
    train_example(window, qtbot, tmp_path, "moons_mlp", "boundary", epochs=3)
    ws = window.training
    panel = ws.boundary
    assert not panel.hint.isVisible()
    qtbot.waitUntil(lambda: panel.image.image is not None and max(panel.image.image.shape[:2]) == MAX_GRID,
                    timeout=3000)
    for name in ("left", "bottom"):  # moons span about -1..2: ticks must read those values, not ×1000
        assert panel.plot.getAxis(name).autoSIPrefixScale == 1.0
    (x0, x1), (y0, y1) = panel.plot.viewRange()
    assert x0 < np.min(panel.X[:, 0]) and x1 > np.max(panel.X[:, 0])
    assert y0 < np.min(panel.X[:, 1]) and y1 > np.max(panel.X[:, 1])


def test_live_x_range_grows_in_a_few_steps_not_every_frame(qtbot):
    """Moving the view each frame made pyqtgraph rebuild axes and paths 30 times a second."""
    import pyqtgraph as pg

    from studio.plots.common import SteadyRange, grown_end

    assert grown_end(0.0, 7.0) == 10.0
    assert grown_end(100.0, 80.0) == 100.0  # data still inside: unchanged
    end = grown_end(100.0, 101.0)
    assert end >= 1.25 * 101.0 and end in (200.0, 500.0)
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    steady = SteadyRange(widget.getPlotItem())
    changes = []
    widget.getPlotItem().getViewBox().sigXRangeChanged.connect(lambda *_: changes.append(1))
    for step in range(1, 5001, 7):
        steady.update(0.0, float(step), (-3.0, 0.0))
    assert 0 < len(changes) <= 12
    (x0, x1), (y0, y1) = widget.getPlotItem().viewRange()
    assert x0 <= 0.0 and x1 >= 5000
    assert y0 <= -3.0 and y1 >= 0.0


def test_activation_panel_ignores_steps_without_new_statistics(window, qtbot, tmp_path):
    # long enough for many drains of the event queue even when the run trains fast (600 epochs,
    # 0.1 s, once drained only 4 times on a busy CI machine)
    open_example(window, tmp_path, "moons_mlp", epochs=3000, stats_every=0)
    ws = window.training
    ws.panel_docks["activations"].raise_()
    drains = []
    ws.controller.updated.connect(lambda: drains.append(1))
    ws.actions["train"].trigger()
    wait_idle(qtbot, ws)
    assert ws.controller.record.n_steps == 30000
    assert len(drains) >= 8
    assert ws.activations.draw_count <= 3  # empty state, the new run (and its finish): not once per drain


def test_the_studio_leaves_a_core_to_the_ui(window):
    from threadpoolctl import threadpool_info

    blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas and max(blas) <= max(1, (os.cpu_count() or 2) - 1)
