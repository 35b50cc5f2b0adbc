"""Small images for widgets: (C, H, W) arrays to QImage/QPixmap, and a tile with its caption.

Shared by the Dataset panel's sample grid, the Feature maps, Filters and misclassified
views. Values are stretched to the image's own min–max (a constant image is mid-grey), so
normalised data and raw pixels look the same; 3 channels are shown as RGB, anything else
as the grey levels of the first channel. Scaling up uses nearest neighbour: an 8×8 digit
stays 64 crisp squares.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W) or (C, H, W) values → (H, W) or (H, W, 3) bytes, stretched to their min–max."""
    a = np.asarray(image, np.float64)
    if a.ndim == 3:
        a = a.transpose(1, 2, 0) if a.shape[0] == 3 else a[0]
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scaled = np.full(a.shape, 0.5) if hi <= lo else (a - lo) / (hi - lo)
    return np.ascontiguousarray(np.nan_to_num(scaled, nan=0.5).clip(0, 1) * 255, dtype=np.uint8)


def to_qimage(image: np.ndarray) -> QImage:
    """A QImage owning a copy of ``image`` (see :func:`to_uint8`)."""
    data = to_uint8(image)
    h, w = data.shape[:2]
    if data.ndim == 3:
        return QImage(data.tobytes(), w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return QImage(data.tobytes(), w, h, w, QImage.Format.Format_Grayscale8).copy()


def to_pixmap(image: np.ndarray, side: int) -> QPixmap:
    """The image scaled (nearest neighbour, aspect kept) to fit ``side``×``side`` pixels."""
    return QPixmap.fromImage(to_qimage(image)).scaled(
        side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)


class Tile(QWidget):
    """An image with a caption under it (a sample and its label)."""

    def __init__(self, image: np.ndarray, caption: str, side: int, tooltip: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = caption
        col = QVBoxLayout(self)
        col.setContentsMargins(2, 2, 2, 2)
        col.setSpacing(1)
        self.picture = QLabel()
        self.picture.setPixmap(to_pixmap(image, side))
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setFixedSize(side, side)
        self.label = QLabel(caption)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setMaximumWidth(side + 8)
        col.addWidget(self.picture, 0, Qt.AlignmentFlag.AlignHCenter)
        col.addWidget(self.label)
        self.setToolTip(tooltip or caption)
