"""Which files the wheel holds (everything else about the project is in pyproject.toml).

``engine/`` and ``studio/`` install as they are. The data folders the program reads at run
time, ``resources/``, ``examples/`` and ``docs/``, install as one package with a name of its
own, ``backprop_resources`` (a top-level ``resources`` or ``docs`` in site-packages would
collide with other projects); :mod:`engine.resources` finds them in either layout. This needs a
package-dir mapping, which pyproject.toml's package discovery cannot combine with ``find``.
"""

from pathlib import Path

from setuptools import find_namespace_packages, setup

DATA_FOLDERS = {
    "backprop_resources": "resources",            # icons/, styles/, lessons/
    "backprop_resources.examples": "examples",    # graph files: templates, the lessons' runs
    "backprop_resources.docs": "docs",            # the user guide (Help ▸ User Guide)
}


def data_packages() -> list[str]:
    """Every folder under the data folders as a (data-only) package, so each one's files ship."""
    names = []
    for package, folder in DATA_FOLDERS.items():
        subs = sorted(p for p in Path(folder).rglob("*") if p.is_dir() and p.name != "__pycache__")
        names += [package] + [".".join([package, *p.relative_to(folder).parts]) for p in subs]
    return names


CODE = find_namespace_packages(include=["engine", "engine.*", "studio", "studio.*"], exclude=["*.__pycache__"])
DATA = data_packages()

setup(
    packages=CODE + DATA,
    package_dir=DATA_FOLDERS,
    package_data={name: ["*"] for name in DATA},
    exclude_package_data={name: ["*.py[co]"] for name in DATA},
)
