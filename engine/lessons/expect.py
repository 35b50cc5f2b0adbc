"""The expectation language: checks over the metrics stream of a lesson's runs.

An expectation is one comparison, ``expr OP expr``, for example::

    grad_ratio(sigmoid, first, last, step=50) <= 1e-2
    val_acc(after) - val_acc(before) >= 0.2
    diverged(no_clip) == true

Expressions combine numbers (and ``pi``, ``inf``, ``true`` = 1, ``false`` = 0), ``+ - * /``,
parentheses, the functions ``abs``, ``ln``, ``log10``, ``min``, ``max``, ``median`` (of three: what
two of three seeds reach) and ``fold`` (max(x, 1/x): how many times apart a ratio is, either
way), and *measures*:
a name from :data:`MEASURES` whose first argument is a run of the lesson, then its own
arguments (a node id, ``first``, ``last``, ``all``, a metric name, a threshold) and an
optional selector (``step=N``, ``epoch=N``, or ``at=first|last|min|max|mean``; default
``at=last``). docs/lessons.md is the reference.

Parsing happens once, when the lesson loads (:func:`parse_check`; every problem is a
:class:`LessonError` naming the column). Evaluation is incremental: a
:class:`Trace` per run collects the events, and :meth:`Check.evaluate` returns the current
value with a status: ``met`` or ``unmet`` as soon as no later event can change the answer,
``pending`` before that. Each measured value carries whether it is final and its *trend*
(``+1``: can only grow, e.g. ``at=max`` or the steps counted so far; ``-1``: can only
shrink), so ``train_acc(r, at=max) >= 1`` is met the moment accuracy reaches 100 %.
"""


from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import LessonError
from engine.lessons.measures import MEASURES, MeasureSpec
from engine.lessons.trace import EPOCH_METRICS, INF, STEP_METRICS, Measured, Selector, Trace, ratio

__all__ = ["MEASURES", "Check", "MeasureSpec", "Measured", "Selector", "Trace", "parse_check"]

OPERATORS = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b,
             ">": lambda a, b: a > b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
SYMBOLS = {"<=": "≤", "<": "<", ">=": "≥", ">": ">", "==": "=", "!=": "≠"}
REDUCERS = ("first", "last", "min", "max", "mean", "best")
MATH = {"abs": (1, abs), "log10": (1, lambda v: math.log10(v) if v > 0 else -INF),
        "ln": (1, lambda v: math.log(v) if v > 0 else -INF), "min": (2, min), "max": (2, max),
        "median": (3, lambda a, b, c: sorted((a, b, c))[1]),
        "fold": (1, lambda v: max(v, 1 / v) if v > 0 else INF)}
CONSTANTS = {"true": 1.0, "false": 0.0, "inf": INF, "never": INF, "pi": math.pi}


# ---- expression tree -------------------------------------------------------------------------
class Expr:
    """A node of a parsed expression."""

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        raise NotImplementedError

    def runs(self) -> set[str]:
        return set()

    def calls(self) -> list["Call"]:
        """Every measure call in this expression (the runner asks which pruning fractions a
        lesson reads)."""
        return [c for child in self.children() for c in child.calls()]

    def children(self) -> list["Expr"]:
        return []


@dataclass
class Number(Expr):
    value: float

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        return Measured(self.value, True)

    def __str__(self) -> str:
        return f"{self.value:g}"


@dataclass
class Call(Expr):
    spec: MeasureSpec
    run: str
    args: tuple[Any, ...]
    selector: Selector

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        return self.spec.read(traces[self.run], self.args, self.selector)

    def runs(self) -> set[str]:
        return {self.run}

    def calls(self) -> list["Call"]:
        return [self]

    def __str__(self) -> str:
        parts = [self.run, *(f"{a:g}" if isinstance(a, float) else str(a) for a in self.args)]
        if self.selector.describe():
            parts.append(self.selector.describe())
        return f"{self.spec.name}({', '.join(parts)})"


def _combine_trend(a: Measured, b: Measured, sign: int) -> int:
    """Trend of a + sign·b: known when both parts move the same way (final parts don't move)."""
    ta = 0 if a.final else a.trend
    tb = 0 if b.final else sign * b.trend
    if not a.final and ta == 0 or not b.final and tb == 0:
        return 0
    trends = {t for t in (ta, tb) if t}
    return trends.pop() if len(trends) == 1 else 0


@dataclass
class Binary(Expr):
    op: str
    left: Expr
    right: Expr

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        a, b = self.left.evaluate(traces), self.right.evaluate(traces)
        note = "; ".join(n for n in (a.note, b.note) if n)
        if a.value is None or b.value is None:
            return Measured(None, a.final and b.final, note=note)
        final = a.final and b.final
        if self.op == "+":
            return Measured(a.value + b.value, final, _combine_trend(a, b, +1), note)
        if self.op == "-":
            return Measured(a.value - b.value, final, _combine_trend(a, b, -1), note)
        if self.op == "*":
            return Measured(a.value * b.value, final, note=note)
        return Measured(ratio(a.value, b.value), final, note=note)

    def runs(self) -> set[str]:
        return self.left.runs() | self.right.runs()

    def children(self) -> list[Expr]:
        return [self.left, self.right]

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


@dataclass
class Negate(Expr):
    inner: Expr

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        m = self.inner.evaluate(traces)
        return Measured(None if m.value is None else -m.value, m.final, -m.trend, m.note)

    def runs(self) -> set[str]:
        return self.inner.runs()

    def children(self) -> list[Expr]:
        return [self.inner]

    def __str__(self) -> str:
        return f"-{self.inner}"


@dataclass
class MathCall(Expr):
    name: str
    args: list[Expr]

    def evaluate(self, traces: Mapping[str, Trace]) -> Measured:
        ms = [a.evaluate(traces) for a in self.args]
        note = "; ".join(m.note for m in ms if m.note)
        final = all(m.final for m in ms)
        if any(m.value is None for m in ms):
            return Measured(None, final, note=note)
        trend = ms[0].trend if self.name in ("log10", "ln") else 0
        return Measured(float(MATH[self.name][1](*(m.value for m in ms))), final, trend, note)

    def runs(self) -> set[str]:
        return set().union(*(a.runs() for a in self.args))

    def children(self) -> list[Expr]:
        return list(self.args)

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(str, self.args))})"


# ---- the parser ------------------------------------------------------------------------------
TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
                   r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|==|!=|[-+*/()<>,=]))")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = len(text) - len(text[pos:].lstrip())
            raise LessonError(f"unexpected character {text[bad]!r} at column {bad + 1}")
        kind = m.lastgroup or "op"
        out.append((kind, m.group(kind), m.start(kind) + 1))
        pos = m.end()
    out.append(("end", "", len(text) + 1))
    return out


class _Parser:
    """Recursive descent over ``check := expr cmp expr`` (module docstring)."""

    def __init__(self, text: str, runs: Sequence[str]) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.runs = list(runs)

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        if value is not None and tok[1] != value:
            found = "the end" if tok[0] == "end" else repr(tok[1])
            raise LessonError(f"expected {value!r} at column {tok[2]}, found {found}")
        self.i += 1
        return tok

    def check(self) -> tuple[Expr, str, Expr]:
        left = self.expr()
        kind, op, col = self.take()
        if op not in OPERATORS:
            raise LessonError(f"expected a comparison (<=, <, >=, >, ==, !=) at column {col}")
        right = self.expr()
        if self.peek()[0] != "end":
            raise LessonError(f"unexpected {self.peek()[1]!r} at column {self.peek()[2]}")
        return left, op, right

    def expr(self) -> Expr:
        node = self.term()
        while self.peek()[1] in ("+", "-"):
            node = Binary(self.take()[1], node, self.term())
        return node

    def term(self) -> Expr:
        node = self.unary()
        while self.peek()[1] in ("*", "/"):
            node = Binary(self.take()[1], node, self.unary())
        return node

    def unary(self) -> Expr:
        if self.peek()[1] == "-":
            self.take()
            return Negate(self.unary())
        return self.atom()

    def atom(self) -> Expr:
        kind, value, col = self.take()
        if kind == "num":
            return Number(float(value))
        if value == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if kind == "name" and value in CONSTANTS:
            return Number(CONSTANTS[value])
        if kind == "name" and value in MATH:
            return self.math_call(value)
        if kind == "name" and value in MEASURES:
            return self.measure(MEASURES[value], col)
        if kind == "name":
            raise LessonError(f"unknown measure {value!r} at column {col}; measures are "
                              f"{', '.join(MEASURES)}; functions {', '.join(MATH)}")
        raise LessonError(f"expected a number, a measure or '(' at column {col}")

    def math_call(self, name: str) -> Expr:
        self.take("(")
        args = [self.expr()]
        while self.peek()[1] == ",":
            self.take()
            args.append(self.expr())
        self.take(")")
        if len(args) != MATH[name][0]:
            raise LessonError(f"{name}() takes {MATH[name][0]} argument(s), got {len(args)}")
        return MathCall(name, args)

    def measure(self, spec: MeasureSpec, col: int) -> Expr:
        self.take("(")
        raw: list[tuple[str, str, int]] = []
        keywords: dict[str, str] = {}
        while True:
            tok = self.take()
            if tok[1] == "-" and self.peek()[0] == "num":
                tok = ("num", "-" + self.take()[1], tok[2])
            if tok[0] not in ("name", "num"):
                raise LessonError(f"{spec.name}(): expected an argument at column {tok[2]}")
            if self.peek()[1] == "=":
                self.take()
                val = self.take()
                if val[0] not in ("name", "num"):
                    raise LessonError(f"{spec.name}(): expected a value after '{tok[1]}=' at column {val[2]}")
                keywords[tok[1]] = val[1]
            elif keywords:
                raise LessonError(f"{spec.name}(): positional argument after a keyword at column {tok[2]}")
            else:
                raw.append(tok)
            if self.peek()[1] != ",":
                break
            self.take()
        self.take(")")
        return self.bind(spec, raw, keywords, col)

    def bind(self, spec: MeasureSpec, raw: list, keywords: dict[str, str], col: int) -> Call:
        usage = f"{spec.name}(run{''.join(', ' + a for a in spec.args)})"
        if len(raw) != 1 + len(spec.args):
            raise LessonError(f"{spec.name}() at column {col} takes {usage}, got {len(raw)} argument(s)")
        run = raw[0][1]
        if run not in self.runs:
            raise LessonError(f"{spec.name}(): unknown run {run!r}; the lesson's runs are {', '.join(self.runs)}")
        args: list[Any] = []
        for kind, (tk, tv, tc) in zip(spec.args, raw[1:], strict=True):
            if kind == "number":
                if tk != "num":
                    raise LessonError(f"{spec.name}(): expected a number at column {tc}, got {tv!r}")
                args.append(float(tv))
            elif kind == "metric":
                if tv not in STEP_METRICS + EPOCH_METRICS:
                    raise LessonError(f"{spec.name}(): unknown metric {tv!r} at column {tc}; use one of "
                                      f"{', '.join(STEP_METRICS + EPOCH_METRICS)}")
                args.append(tv)
            else:
                if tk != "name":
                    raise LessonError(f"{spec.name}(): expected a node id, first, last or all at column {tc}")
                if tv == "all" and not spec.takes_all:
                    raise LessonError(f"{spec.name}(): 'all' is not a single layer; name a node, first or last")
                args.append(tv)
        return Call(spec, run, tuple(args), self.selector(spec, keywords))

    def selector(self, spec: MeasureSpec, keywords: dict[str, str]) -> Selector:
        unknown = sorted(set(keywords) - set(spec.selectors))
        if unknown:
            allowed = ", ".join(f"{s}=" for s in spec.selectors) or "no selector"
            raise LessonError(f"{spec.name}(): unknown keyword {unknown[0]}=; it takes {allowed}")
        window = None
        if "last" in keywords:
            text = keywords.pop("last")
            if not text.isdigit() or int(text) < 1:
                raise LessonError(f"{spec.name}(): last= needs a positive number of samples, got {text!r}")
            if set(keywords) - {"at"}:
                raise LessonError(f"{spec.name}(): last= goes with at=, not with step= or epoch=")
            window = int(text)
        if len(keywords) > 1:
            raise LessonError(f"{spec.name}(): give one of {', '.join(f'{k}=' for k in keywords)}, not several")
        if "at" in keywords or window:
            at = keywords.get("at", "last")
            if at not in REDUCERS:
                raise LessonError(f"{spec.name}(): at={at} is not one of {', '.join(REDUCERS)}")
            if at == "best" and ("epoch" not in spec.selectors or window):
                raise LessonError(f"{spec.name}(): at=best (the epoch early stopping kept) is for epoch "
                                  "metrics, without last=")
            return Selector(at=at, window=window)
        for key in ("step", "epoch"):
            if key in keywords:
                text = keywords[key]
                if not text.isdigit() or int(text) < 1:
                    raise LessonError(f"{spec.name}(): {key}= needs a positive integer, got {text!r}")
                return Selector(**{key: int(text)})
        return Selector()


# ---- a parsed expectation ------------------------------------------------------------------
@dataclass
class Outcome:
    """What :meth:`Check.evaluate` reports: ``status`` is ``met``, ``unmet`` or ``pending``;
    ``value`` the left side so far, ``target`` the right side; ``note`` e.g. where a run
    diverged or that a level was never reached."""

    status: str
    value: float | None
    target: float | None
    note: str = ""


@dataclass
class Check:
    """``left OP right``, parsed from the lesson's text form."""

    text: str
    left: Expr
    op: str
    right: Expr

    def runs(self) -> set[str]:
        return self.left.runs() | self.right.runs()

    def calls(self) -> list[Call]:
        return self.left.calls() + self.right.calls()

    def evaluate(self, traces: Mapping[str, Trace]) -> Outcome:
        a, b = self.left.evaluate(traces), self.right.evaluate(traces)
        note = "; ".join(n for n in (a.note, b.note) if n)
        if a.value is None or b.value is None:
            status = "unmet" if a.final and b.final else "pending"
            return Outcome(status, a.value, b.value, note or ("nothing measured" if status == "unmet" else ""))
        holds = bool(OPERATORS[self.op](a.value, b.value))
        if a.final and b.final:
            return Outcome("met" if holds else "unmet", a.value, b.value, note)
        gap = Measured(0.0, False, _combine_trend(a, b, -1))  # trend of left − right
        decided = self.decided_early(holds, gap.trend)
        return Outcome(decided or "pending", a.value, b.value, note)

    def decided_early(self, holds: bool, trend: int) -> str | None:
        """With left − right only growing (+1) or only shrinking (−1), some answers are final."""
        if trend == 0 or self.op in ("==", "!="):
            return None
        grows_good = self.op in (">=", ">")
        if holds and (trend > 0) == grows_good:
            return "met"
        if not holds and (trend > 0) != grows_good:
            return "unmet"
        return None

    @property
    def symbol(self) -> str:
        return SYMBOLS[self.op]


def parse_check(text: str, runs: Sequence[str]) -> Check:
    """Parse ``expr OP expr``; LessonError says what is wrong and at which column."""
    if not isinstance(text, str) or not text.strip():
        raise LessonError("'check' must be a non-empty text such as \"train_acc(after) >= 0.9\"")
    left, op, right = _Parser(text, runs).check()
    return Check(text.strip(), left, op, right)


def measures_markdown() -> str:
    """The table of measures for docs/lessons.md."""
    rows = ["| measure | arguments | selectors | meaning |", "|---|---|---|---|"]
    for m in MEASURES.values():
        args = ", ".join(("run",) + m.args)
        sel = ", ".join(f"`{s}=`" for s in m.selectors) or "—"
        rows.append(f"| `{m.name}` | {args} | {sel} | {m.help} |")
    return "\n".join(rows)
