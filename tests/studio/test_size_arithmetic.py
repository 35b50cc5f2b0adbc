"""The inspector's live size arithmetic of conv/pool nodes, the warning badge and its one-click fix."""

from __future__ import annotations

from pathlib import Path

from studio import edits

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _conv_on_32(window, **params) -> str:
    """Input 1×32×32 → Conv2D with ``params``; the conv is selected."""
    doc = window.document
    x = edits.add_node(doc, "Input", {"shape": [1, 32, 32]}, (0, 0))
    c = edits.add_node(doc, "Conv2D", {"filters": 6, "kernel_size": [5, 5], **params}, (240, 0))
    edits.connect(doc, x, c)
    window.scene.select_nodes([c])
    return c


def test_formula_and_weight_count_filled_in_and_live(window):
    c = _conv_on_32(window)
    box = window.inspector.arithmetic
    assert box.isVisible()
    text = box.formula.text()
    assert "height: <b>(32 − 5 + 2·0)/1 + 1 = 28</b>" in text
    assert "width: <b>(32 − 5 + 2·0)/1 + 1 = 28</b>" in text
    assert "(5·5·1 + 1)·6 = 156" in text and "1×32×32 → <b>6×28×28</b>" in text
    edits.set_param(window.document, c, "padding", [2, 2])  # as typed in the inspector
    assert "(32 − 5 + 2·2)/1 + 1 = 32" in box.formula.text()
    edits.set_param(window.document, c, "filters", 16)
    assert "(5·5·1 + 1)·16 = 416" in box.formula.text()


def test_box_hidden_for_layers_without_arithmetic(window):
    node = edits.add_node(window.document, "Dense", {"units": 4}, (0, 0))
    window.scene.select_nodes([node])
    assert not window.inspector.arithmetic.isVisible()


def test_inexact_stride_badges_the_card_and_the_fix_is_one_undo_step(window):
    c = _conv_on_32(window)
    doc, item, box = window.document, window.scene.node_item(c), window.inspector.arithmetic
    assert not item.badge.isVisible()
    edits.set_param(doc, c, "stride", [2, 2])  # (32 − 5)/2 + 1 = 14.5
    assert item.badge.isVisible() and item.badge.kind == "warning"
    assert "(32 − 5 + 2·0)/2 + 1 = 14.5" in item.badge.toolTip()
    assert "1 row" in item.badge.toolTip()
    assert "14.5 → 14" in box.formula.text() and box.warning.isVisible()
    labels = [f.label for f in box.fixes]
    assert labels == ["stride 1 → 6×28×28", "stride 3 → 6×10×10"]
    assert [b.text() for b in box.fix_buttons] == [f"Use {label}" for label in labels]
    box.fix_buttons[1].click()
    assert doc.graph.node(c).params["stride"] == (3, 3)
    assert not item.badge.isVisible() and not box.warning.isVisible()
    assert "(32 − 5 + 2·0)/3 + 1 = 10" in box.formula.text()
    doc.undo()  # the fix is its own step, not merged with the stride edit before it
    assert doc.graph.node(c).params["stride"] == (2, 2)
    assert item.badge.isVisible()
    doc.redo()
    assert doc.graph.node(c).params["stride"] == (3, 3) and not item.badge.isVisible()


def test_padding_fix_offered_when_a_padding_divides(window):
    c = _conv_on_32(window, kernel_size=[4, 4], stride=[2, 2])  # (32 − 4)/2 + 1 = 15 exact
    doc, box = window.document, window.inspector.arithmetic
    assert not box.fixes
    edits.set_param(doc, c, "kernel_size", [3, 3])  # (32 − 3)/2 + 1 = 15.5: padding cannot help (2P even)
    assert box.fixes and all(f.param == "stride" for f in box.fixes)
    edits.set_param(doc, c, "stride", [3, 3])  # (32 − 3 + 2P)/3: P = 2 divides
    pads = [f for f in box.fixes if f.param == "padding"]
    assert [f.label for f in pads] == ["padding 2 → 6×12×12"]
    box.apply(pads[0])
    assert doc.graph.node(c).params["padding"] == (2, 2)
    assert window.scene.node_item(c).badge.isVisible() is False


def test_pool_in_template_shows_its_formula(window):
    assert window.files.open(EXAMPLES / "lenet5_digits.json")
    window.scene.select_nodes(["p1"])
    text = window.inspector.arithmetic.formula.text()
    assert "height: <b>(8 − 2 + 2·0)/2 + 1 = 4</b>" in text and "weights" not in text
