"""Small things a newcomer trips over: Ctrl+Y, where a paste lands, palette search, readable formulas."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from engine.layers.base import REGISTRY, LayerType, ParamSpec
from studio import edits
from studio.text import readable
from tests.studio.test_canvas import xor  # noqa: F401  (fixture)


def card_rect(window, node_id: str) -> QRectF:
    return window.scene.node_item(node_id).sceneBoundingRect()


def test_ctrl_y_redoes_beside_ctrl_shift_z(xor):  # noqa: F811
    keys = [k.toString() for k in xor.actions["redo"].shortcuts()]
    assert "Ctrl+Y" in keys and "Ctrl+Shift+Z" in keys
    xor.activateWindow()
    xor.view.setFocus()
    edits.set_param(xor.document, "h", "units", 5)
    xor.actions["undo"].trigger()
    assert xor.document.graph.nodes["h"].params["units"] == 2
    QTest.keyClick(xor.view, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert xor.document.graph.nodes["h"].params["units"] == 5
    xor.actions["undo"].trigger()
    QTest.keySequence(xor.view, QKeySequence("Ctrl+Shift+Z"))
    assert xor.document.graph.nodes["h"].params["units"] == 5


def test_paste_never_lands_on_top_of_the_original(xor):  # noqa: F811
    xor.scene.select_nodes(["h"])
    assert xor.copy()
    before = set(xor.document.graph.nodes)
    for _ in range(3):  # again and again: each copy finds free room
        xor.actions["paste"].trigger()  # at the mouse if it is over the canvas, else beside the original
        (new,) = set(xor.document.graph.nodes) - before
        before.add(new)
        others = [n for n in xor.document.graph.nodes if n != new]
        assert not any(card_rect(xor, new).intersects(card_rect(xor, n)) for n in others), new
    xor.actions["duplicate"].trigger()  # Duplicate (Ctrl+D) too
    (dup,) = set(xor.document.graph.nodes) - before
    assert not any(card_rect(xor, dup).intersects(card_rect(xor, n)) for n in before)


def test_paste_here_puts_the_copy_at_the_point(xor):  # noqa: F811
    xor.scene.select_nodes(["h", "a"])
    xor.copy()
    xor.paste(QPointF(1203, 598))  # the canvas context menu's point (snapped to the grid)
    assert xor.document.position("h1") == (1200.0, 600.0)
    ax, ay = xor.document.position("a1")
    assert (ax - 1200.0, ay - 600.0) == (560.0 - 280.0, 0.0)  # the group keeps its shape


def test_paste_at_a_point_over_a_card_moves_down_off_it(xor):  # noqa: F811
    """Ctrl+V with the mouse over a card (or Paste here on one) must not cover that card."""
    xor.scene.select_nodes(["h"])
    xor.copy()
    before = set(xor.document.graph.nodes)
    x, y = xor.document.position("a")
    xor.paste(QPointF(x + 4, y + 4))
    (new,) = set(xor.document.graph.nodes) - before
    assert xor.document.position(new)[0] == x  # still at the point's column
    assert not any(card_rect(xor, new).intersects(card_rect(xor, n)) for n in before)


def test_palette_search_says_when_nothing_matches(window):
    panel = window.palette_panel
    panel.search.setText("transformer")  # no such layer (LSTM is one now)
    assert panel.no_match.isVisible() and "transformer" in panel.no_match.text()
    assert all(item.isHidden() for item in panel.entry_items())
    panel.search.setText("lstm")
    assert not panel.no_match.isVisible()


@pytest.mark.parametrize(("query", "expected"), [("relu", "ReLU"), ("sigmoid", "Sigmoid"), ("tanh", "Tanh"),
                                                  ("leaky", "Leaky ReLU"), ("dense", "Dense")])
def test_palette_search_highlights_the_layer_named(window, query, expected):
    panel = window.palette_panel
    panel.search.setText(query)
    assert panel.tree.currentItem().text(0) == expected


@pytest.fixture
def tex_layer():
    """A test-only layer whose help texts use TeX notation."""
    layer = LayerType(
        name="TexTest", category="activation",
        help=r"Normalised exponentials: softmax(z)_i = e^{z_i} / \sum_j e^{z_j}, and $\sigma(x) = \frac{1}{1+e^{-x}}$.",
        shape=lambda p, s: s[0], forward=lambda rt, xs: xs[0], backward=lambda rt, dy: [dy],
        params=(ParamSpec("eps", "float", 1e-5, r"added to $\sigma^2$ before \sqrt{\sigma^2 + \epsilon}", min=0.0),),
    )
    REGISTRY.register(layer)
    yield layer
    del REGISTRY[layer.name]


def no_tex(text: str) -> bool:
    return not any(mark in text for mark in ("$", "\\", "^{", "_{", "e^"))


def test_tooltips_show_formulas_as_text_a_person_reads(window, tex_layer):
    assert readable(tex_layer.help).startswith("Normalised exponentials: softmax(z)ᵢ = exp(zᵢ) / Σⱼ exp(zⱼ)")
    assert "σ(x) = 1/(1+exp(-x))" in readable(tex_layer.help)
    assert readable("U(−a, a) with a = init_scale / fan_in") == "U(−a, a) with a = init_scale / fan_in"
    panel = window.palette_panel
    panel.rebuild()
    for item in panel.entry_items():  # every layer, the real ones included
        assert no_tex(item.toolTip(0)), item.toolTip(0)
    node = edits.add_node(window.document, "TexTest", {}, (0, 0))
    window.scene.select_nodes([node])
    inspector = window.inspector
    assert no_tex(inspector.help.text()) and "Σⱼ" in inspector.help.text()
    assert no_tex(inspector.editors["eps"].toolTip()) and "√(σ² + ε)" in inspector.editors["eps"].toolTip()
    assert no_tex(window.scene.node_item(node).toolTip())
    edits.delete(window.document, [node])
    window.document.undo_stack.clear()


def test_palette_search_by_name_hides_layers_that_only_mention_it_in_their_help(window):
    panel = window.palette_panel
    panel.search.setText("relu")
    shown = [item.text(0) for item in panel.entry_items() if not item.isHidden()]
    assert shown == ["ReLU", "Leaky ReLU", "PReLU"]
    panel.search.setText("saturates")  # only help texts say so: those are shown
    assert any(not item.isHidden() for item in panel.entry_items())
