"""The output view of a 1-D regression with a mixture density head draws samples of p(y | x)."""

from __future__ import annotations

import numpy as np

from engine.compiler import Model
from engine.graph import Graph
from studio.plots.boundary import MDN_TITLE, BoundaryPanel
from studio.plots.mdn_samples import is_mdn, mdn_samples


def two_branch_mdn() -> Model:
    """x → Dense(6) → MixtureDensity(K=2) with weights set by hand: y is ±1 (σ ≈ 0.02), half each."""
    g = Graph("two_branches")
    g.add_node("Input", {"shape": [1]}, "x")
    g.add_node("Dense", {"units": 6}, "d")
    g.add_node("MixtureDensity", {"components": 2}, "mdn")
    g.connect("x", "d")
    g.connect("d", "mdn")
    g.training.update({"loss": "mdn_nll"})
    model = Model(g, dtype=np.float64)
    state = model.state_dict()
    state["d.W"] = np.zeros_like(state["d.W"])
    min_sigma = float(g.nodes["mdn"].params.get("min_sigma", 0.0))
    state["d.b"] = np.array([0.0, 0.0, -1.0, 1.0, np.log(0.02 - min_sigma), np.log(0.02 - min_sigma)])
    model.load_state_dict(state)
    return model


def test_samples_follow_both_branches():
    model = two_branch_mdn()
    assert is_mdn(model)
    x, y = mdn_samples(model, 0.0, 1.0, n_x=50, per_x=8)
    assert x.shape == y.shape == (400,)
    assert np.all(np.minimum(abs(y - 1), abs(y + 1)) < 0.15)  # every sample on a branch, none between
    assert 0.3 < np.mean(y > 0) < 0.7  # both branches, about equally


def test_output_view_shows_samples_for_an_mdn_and_a_curve_otherwise(qtbot):
    panel = BoundaryPanel()
    qtbot.addWidget(panel)
    panel.resize(600, 400)
    panel.show()
    model = two_branch_mdn()
    panel.model_source = lambda: model
    xs = np.linspace(0, 1, 40)[:, None]
    panel.set_data(xs, np.where(xs > 0.5, 1.0, -1.0), "regression", 1)
    panel.settle()
    sx, sy = panel.samples.scatter.getData()
    assert len(sx) > 100 and set(np.round(np.asarray(sy))) == {-1.0, 1.0}
    assert len(panel.fit.getData()[0] if panel.fit.getData()[0] is not None else []) == 0
    assert panel.plot.titleLabel.text == MDN_TITLE
    plain = Model(Graph.from_dict({"format": "backprop-studio.graph", "version": 1, "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [1]}}, {"id": "y", "type": "Dense", "params": {"units": 1}}],
        "edges": [{"from": "x.out", "to": "y.in"}], "training": {"loss": "mse"}}), dtype=np.float64)
    panel.model_source = lambda: plain
    panel.settle()
    assert len(panel.samples.scatter.getData()[0]) == 0
    assert len(panel.fit.getData()[0]) == 400
