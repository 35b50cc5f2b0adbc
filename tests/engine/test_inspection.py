"""What the studio's Feature maps, Filters, confusion-matrix and misclassified views read."""

from __future__ import annotations

import numpy as np
import pytest

from engine.compiler import compile_graph
from engine.errors import TrainingError
from engine.graph import Graph
from engine.inspection import class_report, confusion_matrix, conv_filters, conv_nodes, feature_maps, image_grid


def small_cnn(softmax: bool = False) -> Graph:
    nodes = [("x", "Input", {"shape": [1, 8, 8]}), ("c1", "Conv2D", {"filters": 4, "kernel_size": 3}),
             ("r1", "Activation", {}), ("p1", "MaxPool2D", {}), ("c2", "Conv1D", {"filters": 2, "kernel_size": 2}),
             ("f", "Flatten", {}), ("d", "Dense", {"units": 3})]
    edges = [("x", "c1"), ("c1", "r1"), ("r1", "p1"), ("p1", "r"), ("r", "c2"), ("c2", "f"), ("f", "d")]
    nodes.insert(4, ("r", "Reshape", {"shape": [4, 9]}))
    if softmax:
        nodes.append(("s", "Softmax", {}))
        edges.append(("d", "s"))
    return Graph.from_dict({"format": "backprop-studio.graph", "version": 1,
                            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in nodes],
                            "edges": [{"from": a, "to": b} for a, b in edges], "training": {"loss": "cross_entropy"}})


def test_feature_maps_are_one_examples_conv_outputs_in_evaluation_mode():
    model = compile_graph(small_cnn(), dtype="float64", seed=1)
    X = np.random.default_rng(0).normal(size=(5, 1, 8, 8))
    model.forward(X, training=False)
    batch = {nid: model.output_of(nid)[2].copy() for nid in ("c1", "c2")}
    maps = feature_maps(model, X[2])
    assert conv_nodes(model) == ["c1", "c2"] and list(maps) == ["c1", "c2"]
    assert maps["c1"].shape == (4, 6, 6) and maps["c2"].shape == (2, 1, 8)  # 1-D maps become images of height 1
    np.testing.assert_allclose(maps["c1"], batch["c1"], rtol=1e-12)
    np.testing.assert_allclose(maps["c2"][:, 0, :], batch["c2"], rtol=1e-12)
    maps["c1"][...] = 0.0
    assert np.any(model.output_of("c1") != 0.0), "the maps must be copies"
    assert set(feature_maps(model, X[0], nodes=["p1"])) == {"p1"}
    with pytest.raises(TrainingError, match=r"\(8, 8\).*expects \(1, 8, 8\)"):
        feature_maps(model, X[0, 0])


def test_filters_are_a_copy_of_the_first_convolution_weights():
    model = compile_graph(small_cnn(), seed=1)
    W = conv_filters(model)
    np.testing.assert_array_equal(W, model.runtimes["c1"].W["W"])
    W[...] = 0
    assert np.any(model.runtimes["c1"].W["W"] != 0)
    assert conv_filters(model, "c2").shape == (2, 4, 1, 2)
    with pytest.raises(TrainingError, match="'d' is not a convolution"):
        conv_filters(model, "d")


def test_image_grid_lays_out_scaled_tiles():
    tiles = np.stack([np.arange(6.0).reshape(2, 3), -np.ones((2, 3)), np.array([[-2.0, 0, 2], [1, 1, 1]])])
    grid = image_grid(tiles, columns=2, pad=1, fill=1.0)
    assert grid.shape == (2 * 2 + 1, 2 * 3 + 1) and grid.dtype == np.float32
    np.testing.assert_allclose(grid[:2, :3], np.arange(6.0).reshape(2, 3) / 5)
    np.testing.assert_allclose(grid[:2, 4:], 0.5)  # a constant tile
    assert np.all(grid[2, :] == 1.0) and np.all(grid[:, 3] == 1.0)  # the padding
    np.testing.assert_allclose(grid[3:, 4:], 1.0)  # the empty fourth cell
    sym = image_grid(tiles[2:], scale="symmetric", pad=0)
    np.testing.assert_allclose(sym, [[0.0, 0.5, 1.0], [0.75, 0.75, 0.75]])
    shared = image_grid(tiles[:2], scale="all", columns=1, pad=0)
    assert shared[0, 0] == pytest.approx(1 / 6) and shared[1, 2] == 1.0 and np.all(shared[2:] == 0.0)  # −1 … 5


def test_confusion_matrix_rows_are_true_classes():
    m = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


@pytest.mark.parametrize("softmax", [False, True])
def test_class_report_predicts_like_the_model_and_orders_the_most_confident_mistakes_first(softmax):
    model = compile_graph(small_cnn(softmax), dtype="float64", seed=3)
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 1, 8, 8)), rng.integers(0, 3, 40)
    report = class_report(model, X, y, 3)
    z = model.predict(X)
    probs = z if softmax else np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(report.predicted, probs.argmax(axis=1))
    np.testing.assert_allclose(report.confidence, probs.max(axis=1), rtol=1e-12)
    assert report.confusion.sum() == 40 and np.trace(report.confusion) == int(np.sum(report.predicted == y))
    assert report.accuracy == pytest.approx(np.mean(report.predicted == y))
    wrong = report.misclassified()
    assert set(wrong) == set(np.flatnonzero(report.predicted != y))
    assert np.all(np.diff(report.confidence[wrong]) <= 0)
    assert list(report.misclassified(limit=2)) == list(wrong[:2])
