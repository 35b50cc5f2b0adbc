"""Image data in the Dataset panel: the grid of samples with their labels, and choosing files.

The samples are :func:`engine.data.sample_indices` (classes in turn, so every class shows),
drawn as :class:`studio.views.images.Tile`s; the grid reflows to the panel's width.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtWidgets import QGridLayout, QLayout, QSizePolicy, QWidget

from engine.data import sample_indices
from engine.data.image_files import looks_like_idx
from studio.views.images import Tile

SAMPLES = 24
TILE = 52


def sample_caption(ds: Any, i: int) -> str:
    """The label of example ``i``: its class name, or the target value for regression."""
    y = np.asarray(ds.y[i])
    if ds.task == "classification" and y.ndim == 0:
        return str(ds.class_names[int(y)])
    return ", ".join(f"{v:.3g}" for v in y.reshape(-1)[:3])


class ImageSampleGrid(QWidget):
    """Up to :data:`SAMPLES` images of a dataset with their labels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.grid.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        # the width comes from the panel and the tiles reflow into it, never the other way round
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.tiles: list[Tile] = []
        self.indices = np.zeros(0, np.int64)
        self._columns = 0

    def set_dataset(self, ds: Any | None, count: int = SAMPLES) -> None:
        """Show ``count`` samples of an image dataset ((C, H, W) examples); None clears."""
        for tile in self.tiles:
            self.grid.removeWidget(tile)
            tile.deleteLater()
        self.tiles = []
        if ds is None or ds.layout != "image":
            self.indices = np.zeros(0, np.int64)
            self.hide()
            return
        self.indices = sample_indices(ds, count)
        for i in self.indices:
            caption = sample_caption(ds, int(i))
            self.tiles.append(Tile(ds.X[i], caption, TILE, f"example {int(i)}: {caption}", self))
        self._columns = 0
        self._reflow()
        self.show()

    def _reflow(self) -> None:
        parent = self.parentWidget()
        width = self.width() if self.isVisible() or parent is None else parent.width()
        columns = max(1, width // (TILE + 8))
        if columns == self._columns or not self.tiles:
            return
        self._columns = columns
        for k, tile in enumerate(self.tiles):
            self.grid.removeWidget(tile)
            self.grid.addWidget(tile, k // columns, k % columns)
        rows = -(-len(self.tiles) // columns)
        self.setFixedHeight(rows * (self.tiles[0].sizeHint().height() + self.grid.spacing()))

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._reflow()


# -- choosing image files ------------------------------------------------------------------
FILE_FILTER = ("Data files (*.csv *.tsv *.npz *ubyte *ubyte.gz *.idx *.idx.gz);;CSV tables (*.csv *.tsv);;"
               "NPZ arrays: X (n, F) or images (n, C, H, W) (*.npz);;"
               "IDX images, MNIST format (*ubyte *ubyte.gz *.idx *.idx.gz);;All files (*)")


def guess_labels(images: Path) -> Path | None:
    """The IDX label file beside an IDX image file (``train-images-idx3-ubyte`` →
    ``train-labels-idx1-ubyte``, gzip or not), if it exists."""
    name = images.name
    swaps = [("images", "labels"), ("idx3", "idx1"), ("imgs", "lbls"), ("image", "label")]
    candidates = {name}
    for old, new in swaps:
        candidates |= {c.replace(old, new) for c in candidates}
    candidates.discard(name)
    for candidate in sorted(candidates, key=len):
        for variant in (candidate, candidate.removesuffix(".gz"), candidate + ".gz"):
            path = images.with_name(variant)
            if path != images and path.is_file():
                return path
    return None


def file_spec(chosen: str, full: Path | None, relative: Any) -> dict[str, Any]:
    """A fresh ``dataset`` entry for a chosen file or folder; an IDX image file gets its
    label file when one lies beside it (``relative`` turns a Path into the stored text)."""
    spec: dict[str, Any] = {"path": chosen}
    if full is not None and full.is_file() and looks_like_idx(full):
        labels = guess_labels(full)
        if labels is not None:
            spec["labels"] = relative(labels)
    return spec
