"""engine.resources: one lookup for icons, style sheets, lessons, examples and docs, from a
source checkout and from an installed wheel's ``backprop_resources`` package alike."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import resources
from engine.lessons import lessons_dir, load_catalogue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fake site-packages: engine's lookup looks beside engine/ in ``tmp_path/site``."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.setattr(resources, "_BESIDE_ENGINE", folder)
    resources.layout.cache_clear()
    yield folder
    resources.layout.cache_clear()


def install_like_the_wheel(site: Path) -> Path:
    """What setup.py puts in site-packages: resources/* plus examples/ and docs/ under one package."""
    package = site / resources.PACKAGE
    shutil.copytree(ROOT / "resources", package)
    shutil.copytree(ROOT / "examples", package / "examples")
    shutil.copytree(ROOT / "docs", package / "docs")
    return package


def test_the_checkout_finds_icons_style_sheet_lessons_examples_and_docs():
    where = resources.layout()
    assert not where.installed and where.resources == ROOT / "resources"
    assert resources.resource_path("icons", "play.svg") == ROOT / "resources/icons/play.svg"
    assert resources.resource_path("styles", "studio.qss").read_text(encoding="utf-8").strip()
    assert lessons_dir() == ROOT / "resources/lessons" and len(list(lessons_dir().glob("*.toml"))) >= 10
    assert resources.data_path("examples/xor.json") == ROOT / "examples/xor.json"
    assert resources.examples_dir() == ROOT / "examples" and resources.docs_dir() == ROOT / "docs"
    assert resources.data_path("docs/studio.md").is_file()


def test_a_missing_resource_is_an_error_naming_it_and_the_fix():
    with pytest.raises(resources.ResourceError) as err:
        resources.resource_path("icons", "no-such-icon.svg")
    message = str(err.value)
    assert message.startswith("resources/icons/no-such-icon.svg: not found at ")
    assert str(ROOT / "resources/icons/no-such-icon.svg") in message and "git checkout" in message
    assert "\n" not in message
    with pytest.raises(resources.ResourceError, match=r"^examples/nope\.json: not found"):
        resources.data_path("examples/nope.json")


@pytest.mark.parametrize("bad", ["engine/cli.py", "../etc/passwd", "examples/../../secret", ""])
def test_paths_outside_the_data_folders_are_refused(bad):
    with pytest.raises(resources.ResourceError, match="not a path inside the program's data folders"):
        resources.locate(bad)


def test_an_installed_wheel_is_found_in_its_own_package_beside_engine(site):
    package = install_like_the_wheel(site)
    (site / "resources").mkdir()  # another project's generic top-level 'resources' is not ours
    where = resources.layout()
    assert where.installed and where.resources == package
    assert resources.resource_path("icons", "app.svg") == package / "icons/app.svg"
    assert resources.data_path("examples/xor.json") == package / "examples/xor.json"
    assert resources.docs_dir() == package / "docs" and lessons_dir() == package / "lessons"
    with pytest.raises(resources.ResourceError, match=r"installation is incomplete: reinstall it \(pip install"):
        resources.resource_path("styles", "missing.qss")


def test_lessons_find_their_example_graphs_in_the_installed_layout(site):
    package = install_like_the_wheel(site)
    catalogue = load_catalogue()
    assert catalogue.problems == [] and len(catalogue.lessons) == len(list((ROOT / "resources/lessons").glob("*.toml")))
    (package / "examples" / "xor.json").unlink()
    broken = load_catalogue()
    problem = next(p for p in broken.problems if p.startswith("xor_hidden_layer.toml"))
    assert "graph file 'examples/xor.json' not found" in problem and str(package / "examples/xor.json") in problem


def test_nothing_reads_data_files_relative_to_the_source_tree_except_through_engine_resources():
    """A new ``Path(__file__).parents[...] / "examples"`` would work in the checkout and break in
    the wheel; the generators that rewrite the checkout's docs (``python -m engine.docs`` and
    the like) are developer tools and may."""
    writers = {"engine/docs.py", "engine/optim.py", "engine/data/__main__.py", "engine/lessons/__main__.py"}
    offenders = []
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("studio/**/*.py")]:
        rel = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        if rel in writers or rel == "engine/resources.py" or "__file__" not in text:
            continue
        for word in ('"examples"', '"docs"', '"resources"', '"lessons"', '"icons"', ".qss"):
            if word in text:
                offenders.append(f"{rel}: {word}")
    assert offenders == []
