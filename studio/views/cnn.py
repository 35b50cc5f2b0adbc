"""The views a convolutional network adds to the training workspace, wired to each other.

:func:`cnn_views` makes the Feature maps, Filters and Class report panels for a
:class:`~studio.training.controller.TrainingController`; the workspace docks them like its
other plot panels (same redraw scheduling, same Export Plot as PNG). Clicking a
misclassified example in the Class report shows it in the Feature maps and brings that
dock to the front.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDockWidget

from studio.plots.common import PlotPanel
from studio.views.class_report import ClassReportPanel
from studio.views.feature_maps import FeatureMapsPanel, FiltersPanel


def cnn_views(controller: Any) -> dict[str, PlotPanel]:
    maps = FeatureMapsPanel(controller)
    report = ClassReportPanel(controller)

    def show_in_maps(index: int) -> None:
        dock = maps.parentWidget()
        if isinstance(dock, QDockWidget):
            dock.show()
            dock.raise_()
        maps.show_example(index)

    report.exampleChosen.connect(show_in_maps)
    return {"feature_maps": maps, "filters": FiltersPanel(controller), "class_report": report}
