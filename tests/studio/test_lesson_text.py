"""Lesson text on screen: formulas become readable rich text, never raw TeX."""

from __future__ import annotations

import pytest

from engine.lessons import load_catalogue
from studio.panels.lesson_text import markdown_to_html, plain_text, tex_to_html


def seen(tex: str) -> str:
    return plain_text(tex_to_html(tex))


@pytest.mark.parametrize(("tex", "shown"), [
    (r"o = \tfrac12", "o = ½"),
    (r"\sigma' = \sigma(1-\sigma) \le \tfrac14", "σ′ = σ(1 − σ) ≤ ¼"),
    (r"\theta \leftarrow \theta - \eta\,g", "θ ← θ − η\u2009g"),
    (r"\mathbb E[y \mid x]", "𝔼[y | x]"),
    (r"W \sim \mathcal N(0, 1)", "W ∼ 𝒩(0, 1)"),
    (r"\tfrac{\lambda}{2}\|W\|^2", "λ/2‖W‖2"),
    (r"\sigma(z) = 1/(1+e^{-z})", "σ(z) = 1/(1 + e−z)"),
    (r"L = -t \log o", "L = −t\u2009log\u2009o"),
    (r"\hat z = \frac{z - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}", "ẑ = (z − μB)/√(σB2 + ϵ)"),
    (r"W \sim U[-1/\sqrt n, 1/\sqrt n]", "W ∼ U[−1/√n, 1/√n]"),
])
def test_formulas_read_like_print(tex, shown):
    assert seen(tex) == shown


def test_scripts_are_real_sub_and_superscripts():
    html = tex_to_html(r"\sum_{k=1}^{K} \pi_k(x)\, x^{2}")
    assert "<sub><i>k</i>=1</sub><sup><i>K</i></sup>" in html
    assert "π<sub><i>k</i></sub>" in html and "<sup>2</sup>" in html


def test_unknown_command_shows_its_name_not_a_backslash():
    assert seen(r"\weird x") == "weird x"


def test_markdown_blocks_emphasis_code_and_display_math():
    html = markdown_to_html("A **bold** and *soft* `mdn_nll` with $x^2$,\n$$y = \\tfrac12$$\nthen more.\n\n"
                            "- one $a$\n- two\n")
    assert "<b>bold</b>" in html and "<i>soft</i>" in html and "<code>mdn_nll</code>" in html
    assert '<p align="center"' in html and "½" in html
    assert "<ul><li>one" in html and "<li>two</li></ul>" in html
    assert html.count("<p>") == 2  # the display formula splits the paragraph in two


def test_every_lesson_renders_without_raw_tex():
    catalogue = load_catalogue()
    assert catalogue.lessons
    for lesson in catalogue.lessons:
        text = plain_text(markdown_to_html(lesson.text))
        assert "\\" not in text, f"{lesson.id}: raw TeX left in {text[text.index(chr(92)) - 30:][:60]!r}"
        assert "$" not in text, f"{lesson.id}: a formula was not converted"
        assert "**" not in text, f"{lesson.id}: Markdown emphasis left"
