"""Lesson text for the screen: Markdown with ``$…$`` / ``$$…$$`` LaTeX, turned into Qt rich text.

Qt's rich text cannot typeset TeX, and a lesson is read in a narrow dock, so formulas become
Unicode + HTML the way a textbook prints them inline: italic variables, upright functions and
numbers, real sub- and superscripts (``<sub>``/``<sup>``), ½ for ``\\tfrac12``, √ for
``\\sqrt``, 𝒩 for ``\\mathcal N``. Only the TeX the lessons use is needed (greek, relations,
arrows, fractions, roots, accents, spacing); an unknown command is shown by its name, never
as raw TeX. No Qt here: the conversion is plain string work, tested headless.
"""

from __future__ import annotations

import html
import re
import unicodedata

MATH_FONT = "'DejaVu Serif', 'Cambria Math', 'STIX Two Math', 'Times New Roman', serif"

SYMBOLS = {
    **{name: chr(cp) for name, cp in {
        "alpha": 0x3B1, "beta": 0x3B2, "gamma": 0x3B3, "delta": 0x3B4, "epsilon": 0x3F5, "varepsilon": 0x3B5,
        "zeta": 0x3B6, "eta": 0x3B7, "theta": 0x3B8, "iota": 0x3B9, "kappa": 0x3BA, "lambda": 0x3BB, "mu": 0x3BC,
        "nu": 0x3BD, "xi": 0x3BE, "pi": 0x3C0, "rho": 0x3C1, "sigma": 0x3C3, "tau": 0x3C4, "upsilon": 0x3C5,
        "phi": 0x3D5, "varphi": 0x3C6, "chi": 0x3C7, "psi": 0x3C8, "omega": 0x3C9, "Gamma": 0x393,
        "Delta": 0x394, "Theta": 0x398, "Lambda": 0x39B, "Xi": 0x39E, "Pi": 0x3A0, "Sigma": 0x3A3,
        "Phi": 0x3A6, "Psi": 0x3A8, "Omega": 0x3A9}.items()},
    "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈", "sim": "∼",
    "propto": "∝", "equiv": "≡", "pm": "±", "mp": "∓", "times": "×", "cdot": "·", "odot": "⊙", "otimes": "⊗",
    "leftarrow": "←", "gets": "←", "rightarrow": "→", "to": "→", "Rightarrow": "⇒", "mapsto": "↦",
    "partial": "∂", "nabla": "∇", "sum": "∑", "prod": "∏", "int": "∫", "infty": "∞", "top": "⊤",
    "mid": " | ", "in": "∈", "ell": "ℓ", "dots": "…", "ldots": "…", "cdots": "⋯", "circ": "∘",
    "langle": "⟨", "rangle": "⟩", "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉",
    "|": "‖", "%": "%", "{": "{", "}": "}", "_": "_", "#": "#", "&": "&amp;",
    ",": "\u2009", ";": "\u2005", ":": "\u2005", " ": " ", "!": "", "quad": "\u2003", "qquad": "\u2003\u2003",
}
RELATIONS = {"le", "leq", "ge", "geq", "ne", "neq", "approx", "sim", "propto", "equiv", "leftarrow", "gets",
             "rightarrow", "to", "Rightarrow", "mapsto", "in", "times", "cdot", "odot", "otimes", "mp"}
FUNCTIONS = {"log", "ln", "exp", "sin", "cos", "tan", "tanh", "sinh", "cosh", "min", "max", "arg", "argmax",
             "argmin", "det", "lim", "sup", "inf", "Var", "E"}
IGNORED = {"big", "Big", "bigg", "Bigg", "left", "right", "displaystyle", "textstyle", "limits"}
FONTS = {  # \mathcal, \mathbb: the letters the notes use
    "mathcal": {c: chr(0x1D49C + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
    | {"B": "ℬ", "E": "ℰ", "F": "ℱ", "H": "ℋ", "I": "ℐ", "L": "ℒ", "M": "ℳ", "R": "ℛ"},
    "mathbb": {c: chr(0x1D538 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}
    | {"C": "ℂ", "H": "ℍ", "N": "ℕ", "P": "ℙ", "Q": "ℚ", "R": "ℝ", "Z": "ℤ"},
}
VULGAR = {("1", "2"): "½", ("1", "3"): "⅓", ("2", "3"): "⅔", ("1", "4"): "¼", ("3", "4"): "¾",
          ("1", "8"): "⅛"}
ACCENTS = {"hat": "\u0302", "bar": "\u0304", "tilde": "\u0303", "dot": "\u0307", "vec": "\u20D7"}
MINUS = "\x02"  # binary or unary: decided once the formula is rendered
_TOKEN = re.compile(r"\\([A-Za-z]+|.)|([{}^_])|(\s+)|(.)", re.S)


# ---- TeX → HTML ---------------------------------------------------------------------------------
class _Math:
    """A tiny TeX reader: a token list, read by groups and atoms."""

    def __init__(self, tex: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(tex):
            cmd, brace, space, char = m.groups()
            if cmd is not None:
                self.tokens.append(("cmd", cmd))
            elif brace is not None:
                self.tokens.append((brace, brace))
            elif space is None:
                self.tokens.append(("char", char))
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str] | None:
        tok = self.peek()
        self.i += tok is not None
        return tok

    def sequence(self, until: str | None = None) -> str:
        out = []
        while (tok := self.peek()) is not None and tok[0] != until:
            out.append(self.atom_with_scripts())
        if until is not None:
            self.take()
        return "".join(out)

    def atom_with_scripts(self) -> str:
        base = self.atom()
        while (tok := self.peek()) is not None and tok[0] in ("^", "_"):
            self.take()
            tag = "sup" if tok[0] == "^" else "sub"
            script = self.argument().replace(" ", "").replace("\u2009", "")  # scripts are set tight
            base += f"<{tag}>{script}</{tag}>"
        return base

    def argument(self) -> str:
        """The next group ``{…}`` or single atom (a command's argument, a script)."""
        return self.atom()

    def raw_argument(self) -> str:
        """The next argument as plain text (for ``\\text``, ``\\mathrm``, fonts)."""
        tok = self.take()
        if tok is None:
            return ""
        if tok[0] != "{":
            return tok[1]
        depth, parts = 1, []
        while (tok := self.take()) is not None:
            depth += {"{": 1, "}": -1}.get(tok[0], 0)
            if depth == 0:
                break
            parts.append(SYMBOLS.get(tok[1], tok[1]) if tok[0] == "cmd" else tok[1])
        return "".join(parts)

    def atom(self) -> str:
        tok = self.take()
        if tok is None:
            return ""
        kind, value = tok
        if kind == "{":
            return self.sequence(until="}")
        if kind in ("}", "^", "_"):
            return ""
        if kind == "cmd":
            return self.command(value)
        return _char(value)

    def command(self, name: str) -> str:
        if name in RELATIONS:
            return f" {SYMBOLS[name]} "
        if name in SYMBOLS:
            return SYMBOLS[name]
        if name in FUNCTIONS:
            nxt = self.peek()
            return "\u2009" + (name if nxt is None or nxt[1] in ("(", "^", "_", "[") else name + "\u2009")
        if name in IGNORED:
            return ""
        if name in ("text", "mathrm", "operatorname", "textrm", "mathbf", "textbf", "mathit"):
            text = html.escape(self.raw_argument())
            return {"mathbf": f"<b>{text}</b>", "textbf": f"<b>{text}</b>", "mathit": f"<i>{text}</i>"}.get(name, text)
        if name in FONTS:
            letters = self.raw_argument()
            return "".join(FONTS[name].get(c, c) for c in letters)
        if name in ("frac", "tfrac", "dfrac"):
            return self.fraction()
        if name == "sqrt":
            inner = self.argument()
            return f"√{inner}" if _simple(inner) else f"√({inner})"
        if name in ACCENTS:
            inner = self.argument()
            return f"{inner}{ACCENTS[name]}" if _simple(inner) else f"{inner}{ACCENTS[name]}"
        return f"{html.escape(name)} "  # unknown: its name, upright (never a raw backslash)

    def fraction(self) -> str:
        start = self.i
        num_tok, den_tok = self.peek(), self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        if num_tok and den_tok and num_tok[0] == den_tok[0] == "char" \
                and (num_tok[1], den_tok[1]) in VULGAR:
            self.i += 2
            return VULGAR[(num_tok[1], den_tok[1])]
        self.i = start
        num, den = self.argument(), self.argument()
        num = num if _simple(num) or _root(num) else f"({num})"
        den = den if _simple(den) or _root(den) else f"({den})"
        return f"{num}/{den}"


def _char(c: str) -> str:
    if c.isalpha() and c.isascii():
        return f"<i>{c}</i>"
    if c == "-":
        return MINUS
    if c == ",":
        return ", "
    if c == "'":
        return "′"
    if c in "=<>+":
        return {"=": " = ", "<": " &lt; ", ">": " &gt; ", "+": " + "}[c]
    return html.escape(c)


def _simple(rendered: str) -> bool:
    """One symbol, a number or a single italic letter: needs no parentheses."""
    text = re.sub(r"<[^>]+>", "", rendered)
    return len(text) <= 1 or bool(re.fullmatch(r"[0-9.]+", text))


def _root(rendered: str) -> bool:
    """A whole √(…): its parentheses already group it."""
    return rendered.startswith("√(") and rendered.endswith(")") and rendered.count("√") == 1


def tex_to_html(tex: str) -> str:
    """One formula (without its ``$`` signs) as rich text."""
    body = _Math(tex).sequence()
    body = re.sub(r"([\w)\]′|‖]|</(?:i|b|sub|sup)>)\s*\x02", r"\1 − ", body)  # after an operand: binary
    body = body.replace(MINUS, "−")
    body = re.sub(r"  +", " ", body).strip().replace(" \u2009", " ").replace("\u2009 ", " ")
    body = body.replace("( ", "(").replace(" )", ")")
    body = unicodedata.normalize("NFC", re.sub(r"<i>(\w)</i>([\u0300-\u036f\u20d7])", r"<i>\1\2</i>", body))
    return f"<span style=\"font-family: {MATH_FONT};\">{body}</span>"


# ---- Markdown → HTML -----------------------------------------------------------------------------
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<!\\)\$", re.S)
_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    """One paragraph's text: code and math kept aside, the rest escaped and emphasised."""
    kept: list[str] = []

    def keep(fragment: str) -> str:
        kept.append(fragment)
        return f"\x00{len(kept) - 1}\x00"

    text = _CODE.sub(lambda m: keep(f"<code>{html.escape(m.group(1))}</code>"), text)
    text = _INLINE.sub(lambda m: keep(tex_to_html(m.group(1))), text)
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text, flags=re.S)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<i>\1</i>", text, flags=re.S)
    text = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"<i>\1</i>", text, flags=re.S)
    return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)


_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")


def markdown_to_html(text: str) -> str:
    """A lesson's Markdown (paragraphs, lists, headings, emphasis, code, formulas) as rich text."""
    displays: list[str] = []

    def display(m: re.Match) -> str:
        displays.append(tex_to_html(m.group(1).strip()))
        return f"\n\n\x01{len(displays) - 1}\x01\n\n"

    text = _DISPLAY.sub(display, text)
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    out = []
    for block in blocks:
        block = block.strip("\n")
        lines = block.splitlines()
        shown = re.fullmatch(r"\s*\x01(\d+)\x01\s*", block)
        if shown:
            out.append(f"<p align=\"center\" style=\"margin: 6px 0;\">{displays[int(shown.group(1))]}</p>")
        elif all(_LIST_ITEM.match(line) or line.startswith("  ") for line in lines) and _LIST_ITEM.match(lines[0]):
            out.append(_list(lines))
        elif (heading := re.match(r"^(#{1,4})\s+(.*)", block)) and len(lines) == 1:
            level = min(4, len(heading.group(1)) + 2)
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        else:
            out.append(f"<p>{_inline(' '.join(line.strip() for line in lines))}</p>")
    return "\n".join(out)


def _list(lines: list[str]) -> str:
    items: list[str] = []
    for line in lines:
        if _LIST_ITEM.match(line):
            items.append(_LIST_ITEM.sub("", line, count=1))
        else:
            items[-1] += " " + line.strip()
    ordered = bool(re.match(r"^\s*\d", lines[0]))
    tag = "ol" if ordered else "ul"
    return f"<{tag}>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + f"</{tag}>"


def plain_text(rich: str) -> str:
    """What a reader sees of rendered rich text (tags removed, entities resolved): for tests and tooltips."""
    return html.unescape(re.sub(r"<[^>]+>", "", rich))
