"""Entry point: ``backprop-studio [FILE]`` and ``python -m studio [FILE]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

import studio
from studio import theme
from studio.icons import app_icon, stylesheet

ORGANIZATION = "BackpropStudio"
APPLICATION = "Backprop Studio"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backprop-studio", description="Backprop Studio: the node editor.")
    parser.add_argument("file", nargs="?", help="a graph file (.json) to open")
    parser.add_argument("--theme", choices=theme.THEMES, help="override the light/dark scheme")
    parser.add_argument("--version", action="version", version=f"%(prog)s {studio.__version__}")
    return parser.parse_args(list(argv))


def create_app(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication with names (for QSettings), icon and style sheet set up."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(studio.__version__)
    app.setWindowIcon(app_icon())
    app.setStyleSheet(stylesheet())
    return app  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    existed = QApplication.instance() is not None
    app = create_app(argv)
    # a new QApplication has removed Qt's own options (-platform, -style...) from its copy
    args = parse_args(argv[1:] if existed else app.arguments()[1:])
    from studio.main_window import MainWindow  # after the app exists (fonts, palette)

    mode = args.theme or str(QSettings().value("view/theme", "system"))
    theme.apply_theme(mode)
    window = MainWindow()
    window.show()
    if args.file:
        window.files.open(args.file)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
