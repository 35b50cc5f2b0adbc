"""Feature maps and Filters: what the convolution and pooling layers see, live while training.

**Feature maps**: for one chosen example (of the test split, else validation, else
training data), the example itself and the output of every convolution and pooling layer,
each channel a small grey image stretched to its own range (white lines separate them).
**Filters**: the first convolution's kernels W (one row per filter, one tile per input
channel), mid-grey a zero weight, white positive, black negative, on one scale for all.

Both come from :mod:`engine.inspection` on the preview model (a copy of the training
weights, :class:`studio.views.live.LivePanel`), at most 4 (maps) and 2 (filters) times a
second and only while on screen. One redraw of LeNet-5 is one batch-of-1 forward plus a
few small images: about a millisecond or two of the GUI thread, none of the trainer's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QWidget

from engine.inspection import conv_filters, conv_nodes, feature_maps, image_grid
from studio.plots.common import palette_colors
from studio.views.live import Examples, LivePanel, class_probabilities, examples_of, map_nodes

MAX_COLUMNS = 16
MAX_FILTERS = 32


def map_columns(channels: int) -> int:
    """Tiles per row: up to 16 in one row, then rows of 16."""
    return max(1, min(channels, MAX_COLUMNS))


class _Row:
    """One labelled image of the layout (created once per network, updated with setImage)."""

    def __init__(self, glw: pg.GraphicsLayoutWidget, row: int, title: str) -> None:
        self.label = glw.addLabel(title, row=row, col=0, justify="right", size="8pt")
        self.view = glw.addViewBox(row=row, col=1, lockAspect=True, enableMouse=False, invertY=True)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)

    def show(self, grid: np.ndarray) -> None:
        self.image.setImage(grid, autoLevels=False, levels=(0.0, 1.0))
        self.view.autoRange(padding=0.02)


class FeatureMapsPanel(LivePanel):
    """The activations of every conv/pool layer for one example (see module docstring)."""

    title = "Feature maps"
    empty_hint = ("Train a network with convolution layers on image data (digits, shapes, MNIST, image "
                  "files): the output of every convolution and pooling layer for one example appears here, live.")
    max_hz = 4.0

    def _build(self) -> None:
        self.examples: Examples | None = None
        self.index = 0
        self.nodes: list[str] = []
        self.rows: dict[str, _Row] = {}
        self.counts: dict[str, int] = {}  # maps drawn per node at the last redraw
        self.predicted: int | None = None
        self._layout_key: tuple = ()
        self._run: Any = None
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(8, 4, 8, 0)
        row.addWidget(QLabel("Example"))
        self.picker = QSpinBox()
        self.picker.setKeyboardTracking(False)
        self.picker.setToolTip("which example of the held-out data to show (click a misclassified one in "
                               "the Class report to pick it)")
        self.picker.valueChanged.connect(self.show_example)
        row.addWidget(self.picker)
        self.info = QLabel()
        row.addWidget(self.info, 1)
        self.layout().insertWidget(0, bar)
        self.bar = bar

    # -- inputs -------------------------------------------------------------------------------
    def set_examples(self, examples: Examples | None) -> None:
        self.examples = examples
        self.picker.blockSignals(True)
        self.picker.setRange(0, max(0, len(examples) - 1) if examples is not None else 0)
        self.index = min(self.index, self.picker.maximum())
        self.picker.setValue(self.index)
        self.picker.blockSignals(False)
        self._weights_version += 1
        self.refresh()

    def show_example(self, index: int) -> None:
        """Show example ``index`` of the current split (the picker and the class report call this)."""
        self.index = int(index)
        if self.picker.value() != self.index:
            self.picker.setValue(self.index)  # comes back here through valueChanged
            return
        self._weights_version += 1
        self.refresh(force=self.on_screen())

    def has_content(self) -> bool:
        return self.examples is not None

    def weights_changed(self) -> None:
        run = self.controller.run
        if run is not None and (self.examples is None or self._run is not run):
            self._run = run
            self.set_examples(examples_of(run))
        super().weights_changed()

    # -- drawing ------------------------------------------------------------------------------
    def _ensure_rows(self, model: Any, x_shape: tuple[int, ...]) -> None:
        nodes = map_nodes(model)
        key = (tuple(nodes), tuple(model.shapes[n] for n in nodes), x_shape)
        if key == self._layout_key:
            return
        self._layout_key = key
        self.glw.clear()
        self.nodes = nodes
        self.rows = {"input": _Row(self.glw, 0, f"<b>input</b> {_shape(x_shape)}")}
        for r, nid in enumerate(nodes, start=1):
            layer = model.runtimes[nid].type.name
            self.rows[nid] = _Row(self.glw, r, f"<b>{nid}</b> {layer}<br>{_shape(model.shapes[nid])}")
        self.glw.ci.layout.setColumnStretchFactor(1, 6)
        self._style()

    def _draw(self) -> None:
        model = self.preview()
        ex = self.examples
        if model is None or ex is None or not len(ex):
            return
        i = min(self.index, len(ex) - 1)
        x = ex.X[i]
        if x.shape != model.shapes[model.input_id]:
            self.info.setText("the examples do not fit this network's Input")
            return
        self._ensure_rows(model, tuple(x.shape))
        maps = feature_maps(model, x, self.nodes)
        probs = class_probabilities(model, model.output_of(model.output_id)[0])
        img = x if x.ndim == 3 else x[:, None, :]
        self.rows["input"].show(image_grid(img if img.shape[0] != 3 else img[:1], columns=1))
        self.counts = {}
        for nid, m in maps.items():
            self.rows[nid].show(image_grid(m, columns=map_columns(len(m))))
            self.counts[nid] = len(m)
        self._show_info(ex, i, probs)
        self.frames += 1

    def _show_info(self, ex: Examples, i: int, probs: np.ndarray) -> None:
        true = int(np.asarray(ex.y[i]).reshape(-1)[0]) if ex.y.size else -1
        self.predicted = int(np.argmax(probs)) if probs.size else None
        text = f"of {len(ex):,} ({ex.split} data) · label <b>{ex.label(true)}</b>"
        if self.predicted is not None:
            ok = "✓" if self.predicted == true else "✗"
            text += f" · predicted <b>{ex.label(self.predicted)}</b> ({100 * probs[self.predicted]:.0f} %) {ok}"
        self.info.setText(text)

    def _style(self) -> None:
        _, fg, _ = palette_colors()
        for row in self.rows.values():
            row.label.setAttr("color", fg.name())
            row.label.setText(row.label.text)


class FiltersPanel(LivePanel):
    """The first convolution's kernels, live (see module docstring)."""

    title = "Filters"
    empty_hint = "Train a network with a convolution layer: the kernels of its first convolution appear here."
    max_hz = 2.0

    def _build(self) -> None:
        self.node: str | None = None
        self.shape: tuple[int, ...] = ()
        self.label = self.glw.addLabel("", row=0, col=0)
        self.view = self.glw.addViewBox(row=1, col=0, lockAspect=True, enableMouse=False, invertY=True)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)

    def _draw(self) -> None:
        model = self.preview()
        if model is None:
            return
        nodes = conv_nodes(model)
        if not nodes:
            self.label.setText("this network has no convolution layer")
            self.image.clear()
            return
        W = conv_filters(model)[:MAX_FILTERS]
        f, c, kh, kw = W.shape
        self.node, self.shape = nodes[0], (f, c, kh, kw)
        tiles = W.reshape(f * c, kh, kw)
        columns = c if c > 1 else map_columns(f)
        self.image.setImage(image_grid(tiles, columns=columns, scale="symmetric"), autoLevels=False,
                            levels=(0.0, 1.0))
        self.view.autoRange(padding=0.02)
        rows = "one row per filter, one tile per input channel; " if c > 1 else ""
        more = f" (first {MAX_FILTERS} of {conv_filters(model).shape[0]})" if f == MAX_FILTERS else ""
        _, fg, _ = palette_colors()
        self.label.setText(f"<b>{nodes[0]}</b>: {f} filters of {c}×{kh}×{kw}{more} · {rows}grey 0, white +, "
                           f"black −", color=fg.name())
        self.frames += 1


def _shape(shape: Any) -> str:
    return "×".join(str(s) for s in shape) if shape else "?"

