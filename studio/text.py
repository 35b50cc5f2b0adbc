"""Formulas in help texts as text a person reads.

Layer and parameter help texts are written once, in the declarations, and some use TeX-ish
notation (``e^{z_i} / Σ_j e^{z_j}``, ``$\\sigma(x)$``). Tooltips and the inspector show them
through :func:`readable`: ``exp(zᵢ) / Σⱼ exp(zⱼ)``, ``σ(x)``. Identifiers such as
``fan_in`` are left alone: a subscript is only read after a one-letter name or a bracket.
"""

from __future__ import annotations

import re

SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "Delta": "Δ", "epsilon": "ε", "varepsilon": "ε",
    "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "sigma": "σ", "Sigma": "Σ", "tau": "τ", "phi": "φ",
    "Phi": "Φ", "pi": "π", "rho": "ρ", "omega": "ω", "sum": "Σ", "prod": "Π", "cdot": "·", "times": "×",
    "odot": "⊙", "nabla": "∇", "partial": "∂", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "neq": "≠",
    "approx": "≈", "infty": "∞", "in": "∈", "to": "→", "rightarrow": "→", "pm": "±", "exp": "exp",
    "log": "log", "ln": "ln", "max": "max", "min": "min", "tanh": "tanh", "sin": "sin", "cos": "cos",
    "mathrm": "", "text": "", "operatorname": "", "left": "", "right": "", "quad": " ", ",": " ", ";": " ",
    "!": "", "hat": "", "bar": "", "tilde": "",
}
SUPER = str.maketrans("0123456789+-−=()nijkTtz", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱʲᵏᵀᵗᶻ")
SUB = str.maketrans("0123456789+-−=()aeijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ")
_GROUP = r"\{([^{}]*)\}"
_TOKEN = r"([−\-]?[A-Za-z0-9]+)"


def _script(body: str, table: dict[int, str], mark: str) -> str:
    """Super/subscript characters when every character has one, else ``^(body)`` / ``_(body)``."""
    if body and all(ord(c) in table for c in body):
        return body.translate(table)
    return f"{mark}({body})" if len(body) > 1 else f"{mark}{body}"


def _frac(m: re.Match[str]) -> str:
    a, b = m.group(1), m.group(2)
    wrap = lambda s: s if re.fullmatch(r"[\w.σ√]+|\(.*\)", s) else f"({s})"  # noqa: E731
    return f"{wrap(a)}/{wrap(b)}"


def readable(text: str) -> str:
    """``text`` with TeX-ish formula notation turned into plain Unicode (see module docstring)."""
    plain = text.replace("$", "").replace("`", "")  # TeX math and Markdown code marks
    out = re.sub(r"\\([A-Za-z]+|[,;!])", lambda m: SYMBOLS.get(m.group(1), "\\" + m.group(1)), plain)
    one_letter = r"((?<![A-Za-z0-9_])[A-Za-zσΣΠαβγεηθλμτφ]|\))"
    subscript = lambda m: m.group(1) + _script(m.group(2), SUB, "_")  # noqa: E731
    for _ in range(4):  # nested groups resolve from the innermost out
        out = re.sub(r"(?<![A-Za-z])e\^" + _GROUP, lambda m: f"exp({m.group(1)})", out)
        out = re.sub(r"(?<![A-Za-z])e\^" + _TOKEN, lambda m: f"exp({m.group(1)})", out)
        out = re.sub(one_letter + "_" + _GROUP, subscript, out)
        out = re.sub(r"\^" + _GROUP, lambda m: _script(m.group(1), SUPER, "^"), out)
        out = re.sub(r"\\sqrt" + _GROUP, lambda m: f"√({m.group(1)})", out)
        out = re.sub(r"\\frac" + _GROUP + _GROUP, _frac, out)
    out = re.sub(one_letter + "_" + r"([A-Za-z0-9])(?![A-Za-z0-9_])", subscript, out)
    out = re.sub(r"\^([−\-]?[0-9A-Za-z])(?![A-Za-z0-9])", lambda m: _script(m.group(1), SUPER, "^"), out)
    return re.sub(r"(?<=\S)  +", " ", out.replace("{", "").replace("}", ""))


def brief(text: str, limit: int = 200) -> str:
    """The opening of ``text``: its sentences up to about ``limit`` characters (at least
    one), or the first ``limit`` characters cut at a word and ended with "…"."""
    if len(text) <= limit:
        return text
    sentences = re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<!al\.)(?<=[.!?])\s+(?=[A-Za-z(])", text)
    opening = ""
    for sentence in sentences:
        if opening and len(opening) + 1 + len(sentence) > limit:
            break
        opening = f"{opening} {sentence}" if opening else sentence
    if len(opening) <= limit:
        return opening
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:(")
    return cut + "…"
