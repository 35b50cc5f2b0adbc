"""The decision boundary keeps the data's aspect ratio: one unit of x₁ is as long as one unit of x₂."""

from __future__ import annotations

import pytest

from tests.studio.test_training_run import train_example


def pixels_per_unit(plot) -> tuple[float, float]:
    vb = plot.getViewBox()
    (x0, x1), (y0, y1) = vb.viewRange()
    rect = vb.sceneBoundingRect()
    return rect.width() / (x1 - x0), rect.height() / (y1 - y0)


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000)])
def test_decision_regions_are_not_stretched(window, qtbot, tmp_path, size):
    window.resize(*size)
    train_example(window, qtbot, tmp_path, "moons_mlp", "boundary", epochs=2)
    ws = window.training
    panel = ws.boundary
    qtbot.waitUntil(lambda: panel.image.image is not None, timeout=3000)
    qtbot.wait(150)  # the regions follow the laid-out view
    px, py = pixels_per_unit(panel.plot)
    assert px == pytest.approx(py, rel=0.02), f"x₁ drawn {px / py:.2f}× as long as x₂"
    (x0, x1), (y0, y1) = panel.plot.viewRange()
    X = panel.X
    assert x0 <= X[:, 0].min() and X[:, 0].max() <= x1 and y0 <= X[:, 1].min() and X[:, 1].max() <= y1
    assert panel.isocurve.data is not None  # two classes: the title's "line = 50 %" is drawn
    image = panel.image.mapRectToParent(panel.image.boundingRect())  # the regions fill the view
    assert image.left() <= x0 + 0.05 * (x1 - x0) and image.right() >= x1 - 0.05 * (x1 - x0)
    assert image.top() <= y0 + 0.05 * (y1 - y0) and image.bottom() >= y1 - 0.05 * (y1 - y0)


def test_a_fitted_curve_keeps_using_the_whole_plot(window, qtbot, tmp_path):
    train_example(window, qtbot, tmp_path, "sine_regression", "boundary", epochs=1)
    ws = window.training
    assert ws.boundary.mode == "reg1d"
    assert not ws.boundary.plot.getViewBox().state["aspectLocked"]
