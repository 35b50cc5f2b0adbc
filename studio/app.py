"""Entry point: ``backprop-studio [FILE]`` and ``python -m studio [FILE]``."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

import studio
from studio import theme
from studio.display import platform_problem
from studio.icons import app_icon, stylesheet

ORGANIZATION = "BackpropStudio"
APPLICATION = "Backprop Studio"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="backprop-studio", description="Backprop Studio: the node editor.")
    parser.add_argument("file", nargs="?", help="a graph file (.json) or a trained model (.bpmodel) to open")
    parser.add_argument("--theme", choices=theme.THEMES, help="override the light/dark scheme")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="open FILE, save a picture of the window to PNG and quit (docs, checks)")
    parser.add_argument("--size", default="1600x1000", help="window size for --screenshot (WxH)")
    parser.add_argument("--select", metavar="NODE", help="select this node (for --screenshot)")
    parser.add_argument("--self-check", action="store_true",
                        help="check that every icon, the style sheet, the templates, lessons and guide loaded; "
                             "print what was found and quit (exit 1 if anything is missing)")
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
    if not existed:
        if {"-h", "--help", "--version"} & set(argv[1:]):
            parse_args(argv[1:])  # prints and exits: no window needed
        problem = platform_problem(os.environ, argv)
        if problem:  # Qt would abort the process with a message of its own
            print(problem, file=sys.stderr)
            return 2
    app = create_app(argv)
    # a new QApplication has removed Qt's own options (-platform, -style...) from its copy
    args = parse_args(argv[1:] if existed else app.arguments()[1:])
    from studio.main_window import MainWindow  # after the app exists (fonts, palette)

    if args.screenshot or args.self_check:  # reproducible: default layout, user settings untouched
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    mode = args.theme or str(QSettings().value("view/theme", "system"))
    theme.apply_theme(mode)
    window = MainWindow()
    if args.screenshot:
        width, _, height = args.size.partition("x")
        window.resize(int(width), int(height))
    window.show()
    if args.file:
        window.files.open(args.file)
    if args.screenshot or args.self_check:
        return _screenshot(app, window, args.screenshot, args.select, args.self_check)
    return app.exec()


def _screenshot(app: QApplication, window, path: str | None, select: str | None, check: bool = False) -> int:
    """Let the layout settle, run the self-check and/or grab the window, quit without asking anything."""
    for _ in range(5):
        app.processEvents()
    status = 0
    if check:
        from studio.self_check import report

        status = report(window)
    window.view.show_start()
    if select:
        window.scene.select_nodes([select])
    for _ in range(5):
        app.processEvents()
    if path and not window.grab().save(path):
        print(f"backprop-studio: could not write the screenshot {path}", file=sys.stderr)
        status = 1
    window.document.undo_stack.setClean()
    window.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
