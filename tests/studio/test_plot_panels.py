"""What the plot panels show around a run: an empty-state hint, true axis values, a sharp final boundary."""

from __future__ import annotations

import numpy as np

from studio.plots.boundary import MAX_GRID
from tests.studio.test_training_run import open_example, wait_idle


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


def test_boundary_axes_show_data_coordinates_and_the_final_frame_is_full_resolution(window, qtbot, tmp_path):
    open_example(window, tmp_path, "moons_mlp", epochs=3)
    ws = window.training
    ws.panel_docks["boundary"].raise_()
    ws.actions["train"].trigger()
    wait_idle(qtbot, ws)
    panel = ws.boundary
    assert not panel.hint.isVisible()
    qtbot.waitUntil(lambda: panel.image.image is not None and panel.image.image.shape[0] == MAX_GRID,
                    timeout=3000)
    for name in ("left", "bottom"):  # moons span about -1..2: ticks must read those values, not ×1000
        assert panel.plot.getAxis(name).autoSIPrefixScale == 1.0
    (x0, x1), (y0, y1) = panel.plot.viewRange()
    assert x0 < np.min(panel.X[:, 0]) and x1 > np.max(panel.X[:, 0])
    assert y0 < np.min(panel.X[:, 1]) and y1 > np.max(panel.X[:, 1])
