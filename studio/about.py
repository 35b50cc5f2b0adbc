"""The About box: what this is and the versions of everything it runs on."""

from __future__ import annotations

import platform
from importlib import metadata

import PySide6
from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QMessageBox, QWidget

import engine
import studio


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Versions shown in the About box (package metadata: nothing heavy is imported)."""
    return {
        "Backprop Studio": studio.__version__,
        "engine": engine.__version__,
        "Python": platform.python_version(),
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "NumPy": _version("numpy"),
        "Numba": _version("numba"),
        "pyqtgraph": _version("pyqtgraph"),
    }


def about_text() -> str:
    rows = "".join(f"<tr><td>{k}</td><td>&nbsp;&nbsp;{v}</td></tr>" for k, v in versions().items())
    return (
        "<h3>Backprop Studio</h3>"
        "<p>Draw neural networks as graphs, train them on a Numba engine and watch "
        "backpropagation live.</p>"
        f"<table>{rows}</table>"
        f"<p>{platform.system()} {platform.machine()}</p>"
    )


def show_about(parent: QWidget | None) -> None:
    QMessageBox.about(parent, "About Backprop Studio", about_text())
