"""The size arithmetic of convolution and pooling layers, in numbers and in words.

Per spatial axis (height and width of a (C, H, W) image, length of a (C, L) signal), with
input size I, kernel k, dilation d (the kernel spans F = d·(k − 1) + 1 inputs), padding P
before and after, and stride S, the output size is

    I₂ = ⌊(I − F + 2P)/S⌋ + 1

The division "must be exact" (the lecture's (32 − 5)/2 + 1 = 14.5 does not work): when
(I − F + 2P) mod S = r > 0, the last r rows (columns) of the padded input are covered by no
window and are dropped. That is a *warning*, not an error: the layer still works, as in
PyTorch, and :class:`Axis` says which padding or stride would divide exactly.

``"same"`` padding is PyTorch's ``padding="same"``: stride 1 only, the total d·(k − 1)
split as ⌊total/2⌋ before and the rest after (an even kernel pads one more at the end), so
that I₂ = I. ``"valid"`` is no padding.

:func:`resolve` turns a layer's parameters and input shape into :class:`Axis` objects (or a
ShapeError that names the problem and the fix); :class:`Arithmetic` is what the studio's
inspector shows: the formula filled in with the numbers, the weight count, the warnings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import ShapeError

Shape = tuple[int, ...]
AXIS_NAMES = {1: ("length",), 2: ("height", "width")}
DROPPED_WORD = {"height": "row", "width": "column", "length": "position"}


def _number(value: float) -> str:
    """14.5 → "14.5", 14.333… → "14.33", 28.0 → "28"."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a convolution or pooling window."""

    name: str  # "height", "width" or "length"
    size: int  # I
    kernel: int  # k
    dilation: int  # d
    stride: int  # S
    before: int  # padding before (top / left)
    after: int  # padding after (bottom / right)
    pool: bool = False  # pools refuse padding above half the window, as PyTorch does

    @property
    def span(self) -> int:
        """F = d·(k − 1) + 1: how many inputs one window covers."""
        return self.dilation * (self.kernel - 1) + 1

    @property
    def padded(self) -> int:
        return self.size + self.before + self.after

    @property
    def numerator(self) -> int:
        """I − F + 2P."""
        return self.padded - self.span

    @property
    def out(self) -> int:
        """I₂ = ⌊(I − F + 2P)/S⌋ + 1."""
        return self.numerator // self.stride + 1

    @property
    def dropped(self) -> int:
        """Rows (columns) at the end of the padded input that no window covers."""
        return self.numerator % self.stride

    @property
    def exact(self) -> bool:
        return self.dropped == 0

    def _padding_text(self) -> str:
        if self.before == self.after:
            return f"2·{self.before}"
        return f"({self.before} + {self.after})"

    @property
    def quotient(self) -> str:
        """``(32 − 5 + 2·0)/2 + 1 = 14.5``: the formula with its exact (maybe fractional) value."""
        text = f"({self.size} − {self.span} + {self._padding_text()})/{self.stride} + 1"
        return f"{text} = {_number(self.numerator / self.stride + 1)}"

    @property
    def formula(self) -> str:
        """The seed's formula filled in, e.g. ``(28 − 5 + 2·2)/1 + 1 = 28`` or
        ``(32 − 5 + 2·0)/2 + 1 = 14.5 → 14`` when the division is not exact."""
        return self.quotient if self.exact else f"{self.quotient} → {self.out}"

    @property
    def kernel_text(self) -> str:
        """``5``, or ``2·(3 − 1) + 1 = 5`` for a dilated kernel."""
        if self.dilation == 1:
            return str(self.kernel)
        return f"{self.dilation}·({self.kernel} − 1) + 1 = {self.span}"

    def padding_fixes(self) -> tuple[int, ...]:
        """The symmetric paddings nearest to the current one that make the division exact
        (none when S is even and I − F is odd: 2P is always even)."""
        limit = self.kernel // 2 if self.pool else max(self.span - 1, self.before + self.stride)
        base = self.size - self.span
        good = [p for p in range(0, limit + 1) if (base + 2 * p) % self.stride == 0 and base + 2 * p >= 0]
        return _nearest(good, self.before)

    def stride_fixes(self) -> tuple[int, ...]:
        """The strides nearest to the current one that divide I − F + 2P exactly."""
        n = self.numerator
        good = [s for s in range(1, max(n, 1) + 1) if n % s == 0]
        return _nearest([s for s in good if s != self.stride], self.stride)

    def advice(self) -> str:
        """Why the division is not exact and what would make it so ("" when it is exact), e.g.
        ``height: (32 − 5 + 2·0)/2 + 1 = 14.5 is not a whole number: the last 1 row of the
        input is covered by no window and is dropped (height 14); to divide exactly use stride 1
        (height 28) or 3 (height 10) (no padding divides)``."""
        if self.exact:
            return ""
        what = _plural(self.dropped, DROPPED_WORD[self.name])
        verb = "is" if self.dropped == 1 else "are"
        text = (f"{self.name}: {self.quotient} is not a whole number: the last {what} of the "
                f"{'padded ' if self.before or self.after else ''}input {verb} covered by no window and "
                f"{verb} dropped ({self.name} {self.out})")
        base = self.size - self.span
        pads = [f"{p} ({self.name} {(base + 2 * p) // self.stride + 1})" for p in self.padding_fixes()]
        strides = [f"{s} ({self.name} {self.numerator // s + 1})" for s in self.stride_fixes()]
        fixes = [f"{word} " + " or ".join(options) for word, options in (("padding", pads), ("stride", strides))
                 if options]
        if not fixes:
            return text
        return text + "; to divide exactly use " + ", or ".join(fixes) + ("" if pads else " (no padding divides)")


def _nearest(values: list[int], target: int) -> tuple[int, ...]:
    if not values:
        return ()
    best = min(abs(v - target) for v in values)
    return tuple(v for v in values if abs(v - target) == best)


@dataclass(frozen=True)
class Arithmetic:
    """What the inspector shows for a convolution or pooling node."""

    layer: str
    in_shape: Shape
    out_shape: Shape
    axes: tuple[Axis, ...]
    weights: int
    weights_formula: str  # "(5·5·1 + 1)·6 = 156"; "" for layers without weights

    @property
    def exact(self) -> bool:
        return all(a.exact for a in self.axes)

    @property
    def formulas(self) -> dict[str, str]:
        """``{"height": "(28 − 5 + 2·2)/1 + 1 = 28", "width": …}``."""
        return {a.name: a.formula for a in self.axes}

    def warnings(self) -> list[str]:
        """One message per axis whose division is not exact."""
        return [a.advice() for a in self.axes if not a.exact]


def conv_weights_formula(kernel: tuple[int, ...], channels: int, filters: int, bias: bool) -> tuple[int, str]:
    """(count, text) of a convolution's weights: (kh·kw·C + 1)·F with a bias, kh·kw·C·F without."""
    per_filter = "·".join(str(k) for k in kernel) + f"·{channels}"
    count = (math.prod(kernel) * channels + (1 if bias else 0)) * filters
    text = f"({per_filter} + 1)·{filters}" if bias else f"{per_filter}·{filters}"
    return count, f"{text} = {count:,}".replace(",", " ")


# ---- from parameters to axes --------------------------------------------------------------
def _per_axis(value: Any, rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (int(value),) * rank


def example_shape(shape: Shape, rank: int) -> str:
    """A (C, H, W) (or (C, L)) shape holding the same number of values, for Reshape advice."""
    total = math.prod(shape)
    if rank == 1:
        return f"(1, {total})"
    for channels in (1, 3):
        side = math.isqrt(total // channels) if total % channels == 0 else 0
        if side and channels * side * side == total:
            return f"({channels}, {side}, {side})"
    return f"(1, 1, {total})"


def check_rank(layer: str, shape: Shape, rank: int) -> None:
    """Refuse an input that is not (C, H, W) (rank 2) or (C, L) (rank 1), saying what to insert."""
    if len(shape) == rank + 1:
        return
    want = "(channels, height, width)" if rank == 2 else "(channels, length)"
    if len(shape) == 1:
        fix = f"insert a Reshape to (C, H, W) before it, e.g. {example_shape(shape, rank)}" if rank == 2 else \
              f"insert a Reshape to (C, L) before it, e.g. {example_shape(shape, rank)}"
    elif rank == 2 and len(shape) == 2:
        fix = f"use {layer.replace('2D', '1D')} for (channels, length) signals, or a Reshape to (1, {shape[0]}, " \
              f"{shape[1]}) before it"
    elif rank == 1 and len(shape) == 3:
        fix = f"use {layer.replace('1D', '2D')} for images, or a Reshape to ({shape[0]}, {shape[1] * shape[2]}) " \
              "before it"
    else:
        fix = f"insert a Reshape to {want}"
    raise ShapeError(f"{layer} needs a {want} input, got {shape}; {fix}")


def resolve(layer: str, p: Mapping[str, Any], in_shape: Shape, rank: int, pool: bool) -> tuple[Axis, ...]:
    """The axes of a convolution (``pool`` False: kernel_size, stride, padding, dilation) or a
    pooling layer (pool_size, stride or "pool_size", padding "valid" or numbers), checked."""
    check_rank(layer, in_shape, rank)
    sizes = in_shape[1:]
    names = AXIS_NAMES[rank]
    kernel = _per_axis(p["pool_size"] if pool else p["kernel_size"], rank)
    stride = kernel if p["stride"] == "pool_size" else _per_axis(p["stride"], rank)
    dilation = (1,) * rank if pool else _per_axis(p["dilation"], rank)
    padding = p["padding"]
    axes = []
    for i in range(rank):
        span = dilation[i] * (kernel[i] - 1) + 1
        if padding == "same":
            if stride[i] != 1:
                hint = ", ".join(str((dilation[j] * (kernel[j] - 1)) // 2) for j in range(rank))
                raise ShapeError(
                    f"padding 'same' needs stride 1 (as in PyTorch), but the {names[i]} stride is {stride[i]}; "
                    f"set stride to 1, or give the padding as numbers, e.g. [{hint}]")
            total = span - 1
            before, after = total // 2, total - total // 2
        elif padding == "valid":
            before = after = 0
        else:
            before = after = _per_axis(padding, rank)[i]
        if pool and before > kernel[i] // 2:
            raise ShapeError(
                f"{names[i]} padding {before} is more than half the pool size {kernel[i]}; a window would "
                f"see only padding. Use padding ≤ {kernel[i] // 2}")
        axis = Axis(names[i], sizes[i], kernel[i], dilation[i], stride[i], before, after, pool)
        if axis.numerator < 0:
            raise ShapeError(_too_large(axis, "pool_size" if pool else "kernel_size", padding == "same" or pool))
        axes.append(axis)
    return tuple(axes)


def _too_large(axis: Axis, param: str, fixed_padding: bool) -> str:
    """Why a window larger than its (padded) input does not fit, and what would."""
    spans = "" if axis.dilation == 1 else f" (dilation {axis.dilation}: it spans {axis.span})"
    padded = f" padded to {axis.padded}" if axis.before or axis.after else ""
    largest = (axis.padded - 1) // axis.dilation + 1
    fixes = [f"set {param} to at most {largest} along the {axis.name}"]
    if not fixed_padding:
        fixes.append(f"padding ≥ {(axis.span - axis.size + 1) // 2}")
    fixes.append("or remove a pooling or strided layer before it")
    return (f"the window {axis.name} {axis.kernel}{spans} is larger than the input {axis.name} "
            f"{axis.size}{padded}; " + ", ".join(fixes))


def output_shape(channels: int, axes: tuple[Axis, ...]) -> Shape:
    return (channels,) + tuple(a.out for a in axes)


def pads_4(axes: tuple[Axis, ...]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of a 2-D layer; a 1-D layer is height 1 with no padding."""
    if len(axes) == 1:
        return (0, 0, axes[0].before, axes[0].after)
    return (axes[0].before, axes[0].after, axes[1].before, axes[1].after)


def as_2d(axes: tuple[Axis, ...]) -> tuple[Axis, Axis]:
    """(height axis, width axis): a 1-D layer runs as an image of height 1."""
    if len(axes) == 2:
        return axes[0], axes[1]
    return Axis("height", 1, 1, 1, 1, 0, 0), axes[0]
