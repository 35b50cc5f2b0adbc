"""``backprop-studio --self-check``: did this installation find everything it ships with?

A wheel that forgot a folder still starts (icons go blank, the style falls back to the
system's, templates and lessons are empty lists), so a packaging mistake is easy to miss by
eye. The check looks at what the running window actually loaded: every toolbar/menu icon
rendered with visible pixels, the window icon, the style sheet applied to the application,
the example graphs behind New from Template, the lessons, the user guide's pages. It prints
one line per problem and a summary; ``.ci/wheel_smoke.sh`` runs it from an installed wheel.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QGuiApplication, QIcon
from PySide6.QtWidgets import QMainWindow

from engine import resources
from engine.errors import BackpropError


def _has_pixels(icon: QIcon, size: int = 20) -> bool:
    """Non-null and not fully transparent (an SVG that failed to render draws nothing)."""
    if icon.isNull():
        return False
    image = icon.pixmap(size, size).toImage()
    return any(image.pixelColor(x, y).alpha() > 0 for x in range(image.width()) for y in range(image.height()))


def _icons(window: QMainWindow, problems: list[str]) -> int:
    names = set()
    for act in window.findChildren(QAction):
        name = act.property("icon_name")
        if not name:
            continue
        names.add(str(name))
        if not _has_pixels(act.icon()):
            problems.append(f"icon '{name}' of action '{act.text().replace('&', '')}' did not load "
                            f"(resources/icons/{name}.svg)")
    if not _has_pixels(window.windowIcon(), 32):
        problems.append("the window icon did not load (resources/icons/app.svg)")
    if not names:
        problems.append("the window has no actions with icons: nothing to check")
    return len(names) + 1


def _style(problems: list[str]) -> int:
    from studio.icons import stylesheet

    sheet = stylesheet()
    applied = getattr(QGuiApplication.instance(), "styleSheet", lambda: "")()
    if not sheet.strip():
        problems.append("the style sheet resources/styles/studio.qss is missing or empty")
    elif applied != sheet:
        problems.append("the style sheet resources/styles/studio.qss was not applied to the application")
    return len(sheet)


def _count(what: str, listing: Callable[[], list], problems: list[str]) -> int:
    try:
        items = listing()
    except BackpropError as err:
        problems.append(f"{what}: {err}")
        return 0
    if not items:
        problems.append(f"no {what} found")
    return len(items)


def _lessons() -> list:
    from engine.lessons import load_catalogue

    catalogue = load_catalogue()
    if catalogue.problems:
        raise BackpropError(catalogue.problems[0])
    return catalogue.lessons


def self_check(window: QMainWindow) -> tuple[list[str], str]:
    """(problems, summary) for what ``window`` and this installation loaded; no problems = all found."""
    from studio.files import templates
    from studio.help import guide_pages

    problems: list[str] = []
    n_icons = _icons(window, problems)
    n_style = _style(problems)
    n_templates = _count("example graphs (examples/*.json)", templates, problems)
    n_lessons = _count("lessons (resources/lessons/*.toml)", _lessons, problems)
    n_pages = _count("user guide pages (docs/*.md)", guide_pages, problems)
    where = resources.layout()
    source = f"the installed package {where.resources}" if where.installed else f"the checkout {where.resources.parent}"
    summary = (f"{n_icons} icons, style sheet ({n_style} characters), {n_templates} example graphs, "
               f"{n_lessons} lessons, {n_pages} guide pages, from {source}")
    return problems, summary


def report(window: QMainWindow) -> int:
    """Print the check's outcome; 0 if everything loaded, 1 otherwise (the process's exit status)."""
    problems, summary = self_check(window)
    for problem in problems:
        print(f"self-check: {problem}")
    print(f"self-check {'FAILED' if problems else 'ok'}: {summary}")
    return 1 if problems else 0
