"""Retake the README's studio screenshots: open an example, train it to the end, grab the window.

    QT_QPA_PLATFORM=offscreen python docs/screenshots.py [NAME ...]

Every picture comes from the example files as they are (no overrides), in the default layout
with fresh settings, so the figures quoted beside them in README.md can be read off the image.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
SIZE = (1600, 1000)

# picture name -> (example, plot dock (its key) to bring to the front, node to select or "")
SHOTS: dict[str, tuple[str, str, str]] = {
    "editor": ("moons_mlp", "boundary", ""),
    "gradients_sigmoid": ("deep_sigmoid", "gradients", ""),
    "gradients_relu": ("deep_relu_he", "gradients", ""),
}
# picture name -> (lesson, how many of its steps to train, one after the other with Next step)
LESSON_SHOTS: dict[str, tuple[str, int]] = {
    "lesson_in_progress": ("vanishing_gradients", 2),
    "lesson_mdn_samples": ("mixture_density", 2),
}


def settle(app: QApplication, seconds: float = 0.5) -> None:
    """Run the event loop for a while: deferred refreshes and the last plot frame draw."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def new_window():
    from studio.main_window import MainWindow

    window = MainWindow()
    window.resize(*SIZE)
    window.show()
    return window


def train(app: QApplication, window, start) -> None:
    """Press a Train button and run the event loop until the run has ended."""
    start()
    deadline = time.perf_counter() + 300
    settle(app, 0.2)
    while window.training.controller.busy:
        if time.perf_counter() > deadline:
            raise SystemExit("training did not finish in 300 s")
        app.processEvents()
        time.sleep(0.01)
    settle(app)


def take(app: QApplication, name: str, example: str, dock: str, select: str) -> Path:
    window = new_window()
    if not window.files.open(ROOT / "examples" / f"{example}.json"):
        raise SystemExit(f"could not open examples/{example}.json")
    ws = window.training
    ws.panel_docks[dock].raise_()
    train(app, window, ws.actions["train"].trigger)
    window.view.show_start()
    if select:
        window.scene.select_nodes([select])
    return grab(app, window, name)


def take_lesson(app: QApplication, name: str, lesson: str, steps: int) -> Path:
    """A lesson in the Lessons panel after ``steps`` trained steps (the earlier run is the ghost)."""
    window = new_window()
    panel = window.lessons
    if not panel.start_lesson(lesson):
        raise SystemExit(f"could not start lesson {lesson!r}")
    for k in range(steps):
        if k:
            panel.next_button.click()
            settle(app, 0.2)
        train(app, window, panel.train_button.click)
    return grab(app, window, name)


def grab(app: QApplication, window, name: str) -> Path:
    settle(app)
    path = IMAGES / f"{name}.png"
    if not window.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    window.document.undo_stack.setClean()
    window.close()
    return path


def main(names: list[str]) -> int:
    from studio import theme
    from studio.app import create_app

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tempfile.mkdtemp())
    app = create_app(sys.argv[:1])
    theme.apply_theme("light")
    for name in names or [*SHOTS, *LESSON_SHOTS]:
        if name in SHOTS:
            print(take(app, name, *SHOTS[name]))
        elif name in LESSON_SHOTS:
            print(take_lesson(app, name, *LESSON_SHOTS[name]))
        else:
            raise SystemExit(f"unknown picture {name!r}; known: {', '.join([*SHOTS, *LESSON_SHOTS])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
