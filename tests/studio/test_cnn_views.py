"""Feature maps, Filters and Class report while and after training LeNet-5 on the digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.graph import Graph

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
COMPILE_MS = 180_000
LENET_MAPS = {"c1": 6, "p1": 6, "c2": 16, "p2": 16}


def _open_lenet(window, tmp_path, epochs: int):
    graph = Graph.load(EXAMPLES / "lenet5_digits.json")
    graph.training["epochs"] = epochs
    path = tmp_path / "lenet.json"
    graph.save(path)
    assert window.files.open(path)
    return window.training


def _fresh_frames(panel, qtbot, after: int) -> None:
    qtbot.waitUntil(lambda: panel.frames > after, timeout=COMPILE_MS)


def test_feature_maps_follow_the_training_with_one_map_per_channel_at_a_bounded_rate(window, qtbot, tmp_path):
    ws = _open_lenet(window, tmp_path, epochs=2000)  # stopped below: it must still run after ~3 s
    maps = ws.plots["feature_maps"]
    ws.panel_docks["feature_maps"].raise_()
    ws.actions["train"].trigger()
    _fresh_frames(maps, qtbot, 0)
    qtbot.waitUntil(lambda: ws.controller.record.n_steps > 0, timeout=COMPILE_MS)
    first = maps.rows["c1"].image.image.copy()
    seen = maps.frames
    _fresh_frames(maps, qtbot, seen)  # redrawn while the run goes on
    assert ws.controller.busy
    assert maps.counts == LENET_MAPS
    assert maps.nodes == list(LENET_MAPS)
    # 6 maps of 8×8 side by side with 1-pixel gaps; 16 of 2×2 in one row
    assert maps.rows["c1"].image.image.shape == (8, 6 * 9 - 1)
    assert maps.rows["p2"].image.image.shape == (2, 16 * 3 - 1)
    qtbot.waitUntil(lambda: not np.array_equal(maps.rows["c1"].image.image, first), timeout=20_000)
    assert maps.examples.split == "test" and len(maps.examples) == 359
    assert np.median(maps.draw_ms) < 100  # a redraw is short (the first ones wait for the trainer's kernel load)
    qtbot.wait(1200)
    assert ws.controller.busy
    recent = [t for t in maps.draw_times if t >= maps.draw_times[-1] - 1.2]
    assert len(recent) >= 2 and np.diff(recent).min() >= 1 / maps.max_hz - 0.01  # ≤ 4 redraws a second
    ws.controller.stop(wait=10.0)
    qtbot.waitUntil(lambda: not ws.controller.busy, timeout=20_000)


def test_hidden_feature_maps_cost_nothing(window, qtbot, tmp_path):
    ws = _open_lenet(window, tmp_path, epochs=2)
    ws.panel_docks["curves"].raise_()
    ws.actions["train"].trigger()
    qtbot.waitUntil(lambda: not ws.controller.busy, timeout=COMPILE_MS)
    assert ws.plots["feature_maps"].frames == 0 and ws.plots["filters"].frames == 0


@pytest.fixture
def trained(window, qtbot, tmp_path):
    ws = _open_lenet(window, tmp_path, epochs=3)
    ws.panel_docks["class_report"].raise_()
    ws.actions["train"].trigger()
    qtbot.waitUntil(lambda: not ws.controller.busy, timeout=COMPILE_MS)
    report = ws.plots["class_report"]
    qtbot.waitUntil(lambda: report.report is not None and not report.controller.busy and
                    report._drawn is not None and report._drawn[-1] is False, timeout=10_000)
    return ws


def test_confusion_matrix_counts_every_test_example_once(trained):
    report = trained.plots["class_report"]
    run = trained.controller.run
    assert report.examples.split == "test"
    assert report.report.confusion.shape == (10, 10)
    assert report.report.confusion.sum() == len(run.test) == 359
    predicted = np.argmax(run.model.predict(np.ascontiguousarray(run.test.X)), axis=1)
    assert np.trace(report.report.confusion) == int(np.sum(predicted == run.test.y))
    wrong = int(np.sum(predicted != run.test.y))
    assert report.gallery.count() == min(wrong, 48)
    assert f"{359 - wrong:,} of 359" in report.heading.text()


def test_the_matrix_and_the_gallery_share_the_short_dock_side_by_side(trained):
    """The bottom dock is wide and short: the matrix on the left, the gallery beside it, nothing
    left empty above them (a stray plot scroll area once took the top of the dock)."""
    report = trained.plots["class_report"]
    matrix, gallery = report.scroll, report.gallery
    for widget in (matrix, gallery):
        assert widget.isVisible() and widget.width() > 100 and widget.height() > 100
    left_of = matrix.mapTo(report, matrix.rect().topRight()).x()
    assert left_of <= gallery.mapTo(report, gallery.rect().topLeft()).x()
    assert report.glw.parentWidget() is not None and report.glw.isVisible()
    assert matrix.height() >= 0.8 * report.height() - 40  # the matrix takes the dock's height


def test_the_square_matrix_sits_beside_its_row_labels_and_the_gallery_takes_the_rest(trained, qtbot):
    """In the wide, short dock the matrix's pane is only as wide as the square matrix: a wider
    one left the matrix centred between empty margins, hundreds of pixels from its labels."""
    report = trained.plots["class_report"]
    box = report.plot.getViewBox()

    def laid_out() -> bool:
        matrix = report.matrix.sceneBoundingRect()
        return matrix.width() >= 0.9 * box.width() and report.scroll.width() <= report.scroll.maximumWidth()

    qtbot.waitUntil(laid_out, timeout=5000)
    matrix, labels = report.matrix.sceneBoundingRect(), report.plot.getAxis("left").sceneBoundingRect()
    assert -3 <= matrix.left() - labels.right() <= 12  # (the axis line overlaps the first pixel)
    assert abs(matrix.width() - matrix.height()) <= 2  # still square
    assert matrix.height() >= 0.9 * box.height()  # as tall as the pane allows
    assert report.gallery.width() > 2 * report.scroll.width()


def test_table_data_gets_the_matrix_and_a_heading_without_a_gallery(window, qtbot, tmp_path):
    """Rows of features are no pictures: no gallery, and the heading neither promises examples
    "shown below" nor floats in the middle of the empty pane."""
    graph = Graph.load(EXAMPLES / "moons_mlp.json")
    graph.training["epochs"] = 3
    graph.save(tmp_path / "moons.json")
    assert window.files.open(tmp_path / "moons.json")
    ws = window.training
    ws.panel_docks["class_report"].raise_()
    ws.actions["train"].trigger()
    report = ws.plots["class_report"]
    qtbot.waitUntil(lambda: not ws.controller.busy and report.report is not None, timeout=COMPILE_MS)
    qtbot.waitUntil(lambda: report._drawn is not None and report._drawn[-1] is False, timeout=10_000)
    assert report.report.confusion.shape == (2, 2)
    assert report.gallery.isHidden()
    wrong = int(report.report.confusion.sum() - np.trace(report.report.confusion))
    assert f"{wrong:,} misclassified" in report.heading.text() and "shown below" not in report.heading.text()
    assert report.heading.alignment() & Qt.AlignmentFlag.AlignTop


def test_clicking_a_misclassified_example_shows_it_in_the_feature_maps(trained, qtbot):
    report, maps = trained.plots["class_report"], trained.plots["feature_maps"]
    if report.gallery.count() == 0:
        pytest.fail("three epochs of LeNet on the digits left no test example misclassified to click")
    item = report.gallery.item(report.gallery.count() - 1)
    index = item.data(256)  # Qt.UserRole
    rect = report.gallery.visualItemRect(item)

    qtbot.mouseClick(report.gallery.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert maps.index == index and maps.picker.value() == index
    qtbot.waitUntil(lambda: maps.on_screen() and f"label <b>{maps.examples.label(int(maps.examples.y[index]))}" in
                    maps.info.text(), timeout=5000)
    assert "✗" in maps.info.text()  # it is one the network gets wrong
    true = int(maps.examples.y[index])
    assert maps.predicted is not None and maps.predicted != true


def test_filters_show_the_first_convolution_kernels(trained, qtbot):
    filters = trained.plots["filters"]
    trained.panel_docks["filters"].raise_()
    qtbot.waitUntil(lambda: filters.frames > 0, timeout=5000)
    assert filters.node == "c1" and filters.shape == (6, 1, 5, 5)
    grid = filters.image.image
    assert grid.shape == (5, 6 * 6 - 1)
    W = trained.controller.model.runtimes["c1"].W["W"]
    m = np.abs(W).max()
    np.testing.assert_allclose(grid[:, :5], 0.5 + 0.5 * W[0, 0] / m, atol=1e-6)  # 0.5 is a zero weight
