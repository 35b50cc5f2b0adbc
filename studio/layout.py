"""Layered (Sugiyama-style) auto-layout of a DAG, left to right. Pure Python, no Qt.

Steps, each the textbook one kept small:

1. **Layers**: a node's column is the longest path from a source (so every wire points
   right).
2. **Dummies**: a wire spanning several columns gets a chain of zero-size dummy nodes, so
   long skip connections take part in crossing reduction and get their own lane.
3. **Order**: barycentre sweeps left→right and right→left; the order with the fewest
   crossings seen is kept (crossings between adjacent columns are counted exactly).
4. **Coordinates**: each node is pulled towards the mean y of its neighbours, then overlaps
   are removed with a sweep that keeps the order and the minimum gap; a few passes settle it.
5. **Bands**: a very long network (a 20-layer chain is 40 columns) would be a thin strip
   nobody can read when fitted to a window, so the columns are cut into bands stacked top to
   bottom, like lines of text, when that brings the drawing closer to ``wrap_aspect``
   (width / height). Within a band every wire still points right.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence

Size = tuple[float, float]
NodeKey = Hashable
#: A wire ``(src, dst)`` or ``(src, dst, port)``: ``port`` in [0, 1) is where on ``dst`` it
#: enters (input ``k`` of ``n`` → ``k / n``), so that in0 is fed from above in1.
EdgeSpec = tuple[NodeKey, NodeKey] | tuple[NodeKey, NodeKey, float]


def _split(edge: EdgeSpec) -> tuple[NodeKey, NodeKey, float]:
    return (edge[0], edge[1], float(edge[2])) if len(edge) > 2 else (edge[0], edge[1], 0.0)  # type: ignore[misc]


def assign_layers(nodes: Sequence[NodeKey], edges: Iterable[EdgeSpec]) -> dict[NodeKey, int]:
    """Longest-path layering; edges that would close a cycle are ignored."""
    succ: dict[NodeKey, list[NodeKey]] = defaultdict(list)
    indeg = {n: 0 for n in nodes}
    for a, b, _ in map(_split, edges):
        if a in indeg and b in indeg and a != b:
            succ[a].append(b)
            indeg[b] += 1
    layer = {n: 0 for n in nodes}
    ready = [n for n in nodes if indeg[n] == 0]
    done: set[NodeKey] = set()
    while True:
        while ready:
            n = ready.pop()
            done.add(n)
            for m in succ[n]:
                layer[m] = max(layer[m], layer[n] + 1)
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
        rest = [n for n in nodes if n not in done]
        if not rest:
            return layer
        ready = [rest[0]]  # a cycle: break it at the first remaining node
        indeg[rest[0]] = 0


def count_crossings(left: Sequence[NodeKey], right: Sequence[NodeKey], edges: Iterable[EdgeSpec]) -> int:
    """Crossings between two adjacent columns: pairs of wires whose ends are inverted
    (ends on the same node count by port position)."""
    lpos = {n: i for i, n in enumerate(left)}
    rpos = {n: i for i, n in enumerate(right)}
    pairs = sorted((lpos[a], rpos[b] + f) for a, b, f in map(_split, edges) if a in lpos and b in rpos)
    count = 0
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            if pairs[i][0] < pairs[j][0] and pairs[i][1] > pairs[j][1]:
                count += 1
    return count


class _Layered:
    """The working state: columns of real and dummy nodes and the wires between columns."""

    def __init__(self, nodes: Sequence[NodeKey], edges: Sequence[EdgeSpec]) -> None:
        self.layer = assign_layers(nodes, edges)
        self.dummies: set[NodeKey] = set()
        self.up: dict[NodeKey, list[NodeKey]] = defaultdict(list)
        self.down: dict[NodeKey, list[NodeKey]] = defaultdict(list)
        self.port: dict[tuple[NodeKey, NodeKey], float] = {}  # where a link enters its target
        for a, b, f in map(_split, edges):
            if a not in self.layer or b not in self.layer or a == b:
                continue
            la, lb = self.layer[a], self.layer[b]
            if la > lb:
                a, b, la, lb = b, a, lb, la
            prev = a
            for k in range(la + 1, lb):
                dummy = ("__dummy__", a, b, f, k)
                self.dummies.add(dummy)
                self.layer[dummy] = k
                self._link(prev, dummy)
                prev = dummy
            self._link(prev, b, f)
        n_layers = max(self.layer.values(), default=-1) + 1
        self.columns: list[list[NodeKey]] = [[] for _ in range(n_layers)]
        for n in list(nodes) + [d for d in self.layer if d in self.dummies]:
            self.columns[self.layer[n]].append(n)

    def _link(self, a: NodeKey, b: NodeKey, port: float = 0.0) -> None:
        self.down[a].append(b)
        self.up[b].append(a)
        self.port[(a, b)] = port

    def crossings(self, columns: list[list[NodeKey]]) -> int:
        total = 0
        for i in range(len(columns) - 1):
            edges = [(a, b, self.port[(a, b)]) for a in columns[i] for b in self.down[a]]
            total += count_crossings(columns[i], columns[i + 1], edges)
        return total

    def order(self, sweeps: int = 8) -> list[list[NodeKey]]:
        cols = [list(c) for c in self.columns]
        best, best_cross = [list(c) for c in cols], self.crossings(cols)
        for sweep in range(sweeps):
            if best_cross == 0:
                break
            forward = sweep % 2 == 0
            rng = range(1, len(cols)) if forward else range(len(cols) - 2, -1, -1)
            for i in rng:
                ref = cols[i - 1] if forward else cols[i + 1]
                pos = {n: k for k, n in enumerate(ref)}
                nbrs = self.up if forward else self.down
                cur = {n: k for k, n in enumerate(cols[i])}

                def bary(n: NodeKey, pos: dict = pos, nbrs: dict = nbrs, cur: dict = cur,
                         forward: bool = forward) -> float:
                    ps = [pos[m] + (0.0 if forward else self.port[(n, m)]) for m in nbrs[n] if m in pos]
                    return sum(ps) / len(ps) if ps else float(cur[n])

                cols[i].sort(key=lambda n, b=bary, c=cur: (b(n), c[n]))
            cross = self.crossings(cols)
            if cross < best_cross:
                best, best_cross = [list(c) for c in cols], cross
        return best


def _place_column(col: list[NodeKey], want: dict[NodeKey, float], heights: dict[NodeKey, float],
                  gap: float) -> dict[NodeKey, float]:
    """Centres as close to ``want`` as possible, in order, at least ``gap`` apart.

    Forward sweep pushes nodes down, backward sweep pulls them up; averaging the two sweeps
    keeps a symmetric result for symmetric wants.
    """
    if not col:
        return {}
    down: list[float] = []
    for i, n in enumerate(col):
        y = want[n]
        if i:
            prev = col[i - 1]
            y = max(y, down[-1] + (heights[prev] + heights[n]) / 2 + gap)
        down.append(y)
    up: list[float] = [0.0] * len(col)
    for i in range(len(col) - 1, -1, -1):
        n = col[i]
        y = want[n]
        if i < len(col) - 1:
            nxt = col[i + 1]
            y = min(y, up[i + 1] - (heights[nxt] + heights[n]) / 2 - gap)
        up[i] = y
    mid = [(a + b) / 2 for a, b in zip(down, up, strict=True)]
    for i in range(1, len(col)):  # the average can still overlap: one last push down
        need = mid[i - 1] + (heights[col[i - 1]] + heights[col[i]]) / 2 + gap
        mid[i] = max(mid[i], need)
    return dict(zip(col, mid, strict=True))


def layered_layout(
    nodes: Sequence[NodeKey],
    edges: Sequence[EdgeSpec],
    sizes: Mapping[NodeKey, Size] | None = None,
    h_gap: float = 90.0,
    v_gap: float = 36.0,
    origin: tuple[float, float] = (0.0, 0.0),
    wrap_aspect: float | None = 1.8,
    band_gap: float = 120.0,
    min_band_columns: int = 6,
) -> dict[NodeKey, tuple[float, float]]:
    """Top-left position of every node: columns left to right, few crossings, no overlaps;
    long networks wrapped into bands (``wrap_aspect=None`` never wraps)."""
    if not nodes:
        return {}
    sizes = sizes or {}
    lay = _Layered(nodes, edges)
    cols = lay.order()
    default = (180.0, 80.0)
    heights = {n: (0.0 if n in lay.dummies else sizes.get(n, default)[1]) for n in lay.layer}
    dummy_h = 8.0
    for d in lay.dummies:
        heights[d] = dummy_h
    y: dict[NodeKey, float] = {}
    for col in cols:  # initial stacking, centred on 0
        total = sum(heights[n] for n in col) + v_gap * (len(col) - 1)
        cursor = -total / 2
        for n in col:
            y[n] = cursor + heights[n] / 2
            cursor += heights[n] + v_gap
    for it in range(6):
        forward = it % 2 == 0
        order = range(len(cols)) if forward else range(len(cols) - 1, -1, -1)
        for i in order:
            want = {}
            for n in cols[i]:
                nb = (lay.up[n] + lay.down[n]) if it >= 4 else (lay.up[n] if forward else lay.down[n])
                want[n] = sum(y[m] for m in nb) / len(nb) if nb else y[n]
            y.update(_place_column(cols[i], want, heights, v_gap))
    widths = [max((sizes.get(n, default)[0] for n in col if n not in lay.dummies), default=0.0)
              for col in cols]
    bands = _bands(cols, widths, y, heights, h_gap, band_gap, wrap_aspect, min_band_columns)
    x0, y0 = origin
    out: dict[NodeKey, tuple[float, float]] = {}
    band_top = y0
    for band in bands:
        real = [n for i in band for n in cols[i] if n not in lay.dummies]
        members = [n for i in band for n in cols[i]]
        top = min(y[n] - heights[n] / 2 for n in members)
        bottom = max(y[n] + heights[n] / 2 for n in members)
        cursor_x = x0
        for i in band:
            for n in cols[i]:
                if n not in lay.dummies:
                    out[n] = (cursor_x, y[n] - heights[n] / 2 - top + band_top)
            cursor_x += widths[i] + h_gap
        if real:
            band_top += bottom - top + band_gap
    return out


def _bands(cols: list[list[NodeKey]], widths: list[float], y: dict[NodeKey, float],
           heights: dict[NodeKey, float], h_gap: float, band_gap: float, aspect: float | None,
           min_columns: int) -> list[list[int]]:
    """Column indices per band: b bands make width ≈ W/b and height ≈ b·(H + gap), so
    b = √(W / (aspect·(H + gap))) brings width/height to ``aspect``."""
    everything = [list(range(len(cols)))]
    if aspect is None or len(cols) < 2 * min_columns:
        return everything
    width = sum(widths) + h_gap * (len(cols) - 1)
    members = [n for col in cols for n in col]
    height = max(y[n] + heights[n] / 2 for n in members) - min(y[n] - heights[n] / 2 for n in members)
    n_bands = min(round(math.sqrt(width / (aspect * (height + band_gap)))), len(cols) // min_columns)
    if n_bands <= 1:
        return everything
    per = math.ceil(len(cols) / n_bands)
    return [list(range(i, min(i + per, len(cols)))) for i in range(0, len(cols), per)]
