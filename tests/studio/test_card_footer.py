"""A node card's second row (output shapes, weight count) never overprints itself."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontMetricsF

from studio.canvas.node_item import footer_texts


def fits(fm: QFontMetricsF, shapes: str, count: str, width: float) -> bool:
    return fm.horizontalAdvance(shapes) + 8 + fm.horizontalAdvance(count) <= width


def test_the_whole_row_is_kept_when_it_fits(qapp):
    fm = QFontMetricsF(QFont())
    width = fm.horizontalAdvance("→ 16 · 16") + fm.horizontalAdvance("1,472 params") + 20
    assert footer_texts(fm, "→ 16 · 16", "1,472 params", width) == ("→ 16 · 16", "1,472 params")


def test_a_recurrent_card_with_two_outputs_shortens_the_count_before_the_shapes(qapp):
    fm = QFontMetricsF(QFont())
    shapes = "→ 16 · 16"  # an LSTM's sequence and state outputs
    width = fm.horizontalAdvance(shapes) + fm.horizontalAdvance("1.5k params") + 10
    shown, count = footer_texts(fm, shapes, "1,472 params", width)
    assert (shown, count) == (shapes, "1.5k params")
    assert fits(fm, shown, count, width)


def test_when_nothing_else_helps_the_shapes_are_elided_and_nothing_overlaps(qapp):
    fm = QFontMetricsF(QFont())
    shapes = "→ 64×28×28 · 64×28×28"
    width = fm.horizontalAdvance("→ 64×2") + fm.horizontalAdvance("150.5k") + 8
    shown, count = footer_texts(fm, shapes, "150.5k params", width)
    assert count == "150.5k" and shown != shapes and shown.endswith("…")
    assert fits(fm, shown, count, width)
