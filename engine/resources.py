"""Where the program's own data files are, in a source checkout and in an installed wheel alike.

Three folders of the repository are read at run time:

- ``resources/``: icons, style sheets, lessons, small bundled data (``resource_path``);
- ``examples/``: the graph files behind File ▸ New from Template and the lessons' runs;
- ``docs/``: the user guide the studio shows (Help ▸ User Guide, F1).

In a source checkout (plain or ``pip install -e .``) they are the folders beside ``engine/``.
A wheel cannot ship folders with such generic names at the top of site-packages, so setup.py
installs them as one package with a name of its own, :data:`PACKAGE`, beside ``engine/``:
``resources/*`` → ``backprop_resources/*``, ``examples/`` → ``backprop_resources/examples/``,
``docs/`` → ``backprop_resources/docs/``. Every reader goes through this module, so no code
depends on which of the two layouts it runs from (docs/packaging.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from engine.errors import BackpropError

PACKAGE = "backprop_resources"
FOLDERS = ("resources", "examples", "docs")
_BESIDE_ENGINE = Path(__file__).resolve().parents[1]  # the checkout, or site-packages


class ResourceError(BackpropError):
    """A data file the program ships with is missing: the installation is incomplete."""


@dataclass(frozen=True)
class Layout:
    """The three data folders of one installation."""

    resources: Path
    examples: Path
    docs: Path
    installed: bool  # True: a wheel's backprop_resources/; False: a source checkout

    def folder(self, name: str) -> Path:
        if name not in FOLDERS:
            raise ResourceError(f"unknown data folder {name!r}: the program's data folders are {', '.join(FOLDERS)}")
        return getattr(self, name)


@lru_cache(maxsize=1)
def layout() -> Layout:
    """The installed package if there is one beside ``engine/``, else the source checkout."""
    wheel = _BESIDE_ENGINE / PACKAGE
    if wheel.is_dir():
        return Layout(wheel, wheel / "examples", wheel / "docs", installed=True)
    root = _BESIDE_ENGINE
    return Layout(root / "resources", root / "examples", root / "docs", installed=False)


def _existing(path: Path, shown: str) -> Path:
    if not path.exists():
        if layout().installed:
            fix = "the installation is incomplete: reinstall it (pip install --force-reinstall backprop-studio)"
        else:
            fix = "the source checkout lacks it: restore it (git checkout -- .) or pull again"
        raise ResourceError(f"{shown}: not found at {path}; {fix}")
    return path


def resource_path(*parts: str) -> Path:
    """``resources/<parts>`` (e.g. ``resource_path("icons", "play.svg")``); ResourceError naming
    the file if it is missing."""
    return _existing(layout().resources.joinpath(*parts), "/".join(("resources", *parts)))


def locate(relative: str | Path) -> Path:
    """Where a path as the repository spells it (``examples/xor.json``, ``docs/studio.md``,
    ``resources/lessons``) is in this installation, whether or not it exists; ResourceError
    if it does not start with one of the data folders."""
    parts = Path(relative).parts
    if not parts or parts[0] not in FOLDERS or ".." in parts:
        raise ResourceError(f"{relative}: not a path inside the program's data folders "
                            f"({', '.join(f'{f}/…' for f in FOLDERS)})")
    return layout().folder(parts[0]).joinpath(*parts[1:])


def data_path(relative: str | Path) -> Path:
    """:func:`locate`, and ResourceError naming the file if it is missing."""
    return _existing(locate(relative), Path(relative).as_posix())


def examples_dir() -> Path:
    """The folder of example graphs (it may be missing: callers list what is there)."""
    return layout().examples


def docs_dir() -> Path:
    """The folder of the user guide's Markdown pages (it may be missing)."""
    return layout().docs
