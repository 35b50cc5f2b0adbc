"""Plots stay readable in the default window: tall enough, legends beside the data, ticks that do not overlap."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PySide6.QtGui import QFont, QFontMetricsF

from studio.plots.common import MIN_CELL_H, grid_for
from tests.studio.test_training_run import train_example

PANELS = ("curves", "gradients", "activations", "boundary")


def test_cells_go_side_by_side_in_a_wide_short_dock_and_stack_in_a_tall_one():
    assert grid_for(3, 1280, 215) == (3, 1)
    assert grid_for(3, 400, 900) == (1, 3)
    assert grid_for(2, 1280, 215) == (2, 1)
    assert grid_for(3, 900, 150) == (2, 2)  # nothing fits: fewest rows of wide-enough cells, then scroll
    assert grid_for(1, 300, 100) == (1, 1)


def labelled_ticks(axis: pg.AxisItem) -> tuple[list[float], list[str], float]:
    """Pixel positions and texts of the labelled ticks the axis asks for, and its length."""
    vertical = axis.orientation in ("left", "right")
    length = axis.geometry().height() if vertical else axis.geometry().width()
    lo, hi = axis.range
    positions, texts = [], []
    for spacing, values in axis.tickValues(lo, hi, length):
        values = list(values)
        strings = axis.tickStrings(values, axis.autoSIPrefixScale * axis.scale, spacing)  # as pyqtgraph draws
        if axis.logMode:  # labels of a log axis are values, never their logarithms
            assert all(not t.startswith(("-", "−")) for t in strings if t), strings
        for v, s in zip(values, strings, strict=True):
            if s and lo <= v <= hi:
                positions.append((v - lo) / (hi - lo) * length)
                texts.append(s)
    return positions, texts, length


def assert_readable_axis(axis: pg.AxisItem, where: str) -> None:
    positions, texts, length = labelled_ticks(axis)
    font = axis.style.get("tickFont") or QFont()
    fm = QFontMetricsF(font)
    vertical = axis.orientation in ("left", "right")
    need = fm.height() if vertical else max((fm.horizontalAdvance(t) for t in texts), default=0) + 4
    order = sorted(positions)
    gaps = [b - a for a, b in zip(order, order[1:], strict=False)]
    assert all(g >= need for g in gaps), f"{where}: labels {texts} overlap on a {length:.0f} px axis"
    assert len(texts) >= 2 or length < 3 * need, f"{where}: a {length:.0f} px axis with labels {texts}"


def check_panel(panel, name: str) -> None:
    for plot in panel.plot_items():
        vb = plot.getViewBox().sceneBoundingRect()
        assert vb.height() >= 120, f"{name}: a plot {vb.height():.0f} px high"
        assert vb.width() >= 200, f"{name}: a plot {vb.width():.0f} px wide"
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            if axis.isVisible():
                assert_readable_axis(axis, f"{name} {plot.titleLabel.text!r} {side}")
    plots = [p.getViewBox().sceneBoundingRect() for p in panel.plot_items()]
    for item in panel.glw.scene().items():
        if isinstance(item, pg.LegendItem) and item.isVisible() and item.items:
            rect = item.sceneBoundingRect()
            assert not any(rect.intersects(vb) for vb in plots), f"{name}: a legend covers a plot"
            owner = min(plots, key=lambda vb: abs(vb.center().x() - rect.center().x()))
            assert rect.left() >= owner.left() - 60 and rect.right() <= owner.right() + 60, \
                f"{name}: a legend runs out of its plot's column"


@pytest.mark.parametrize("size", [(1280, 800), (1600, 1000)])
def test_every_plot_is_readable_at_the_default_window_sizes(window, qtbot, tmp_path, size):
    window.resize(*size)
    train_example(window, qtbot, tmp_path, "moons_mlp", epochs=3)
    ws = window.training
    for name in PANELS:
        ws.panel_docks[name].raise_()
        panel = ws.plots[name]
        qtbot.waitUntil(panel.isVisible, timeout=2000)
        qtbot.wait(60)  # the layout settles (cells are arranged after the resize)
        panel.refresh(force=True)
        check_panel(panel, name)


def test_a_tall_narrow_dock_stacks_the_plots_and_a_tiny_one_scrolls(window, qtbot, tmp_path):
    ws = window.training
    dock = ws.panel_docks["gradients"]
    dock.setFloating(True)
    dock.resize(440, 900)
    qtbot.wait(80)
    assert ws.gradients.cell_grid == (1, 3)
    dock.resize(700, 220)
    qtbot.wait(80)
    panel = ws.gradients
    cols, rows = panel.cell_grid
    if rows > 1:
        assert panel.glw.minimumHeight() >= rows * MIN_CELL_H  # scrolls rather than squeezing
    for plot in panel.plot_items():
        assert plot.getViewBox().sceneBoundingRect().height() >= 120
