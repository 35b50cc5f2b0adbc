"""``backprop-studio --self-check``: every icon the studio references loads, the style sheet
is applied, templates/lessons/guide are found; and it fails, naming what is missing, when the
resources are not there (what a broken wheel looks like)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QAction

from studio.icons import icon_path
from studio.training.workspace import ICONS as TRAINING_ICONS

ROOT = Path(__file__).resolve().parents[2]


def run_self_check(tmp_path: Path, beside_engine: Path | None = None) -> subprocess.CompletedProcess:
    """``backprop-studio --self-check`` in a subprocess (it restyles the application), run from
    ``tmp_path``; ``beside_engine`` replaces the folder where the resources are looked for."""
    code = ("import sys\nfrom pathlib import Path\nimport engine.resources as r\n"
            "if len(sys.argv) > 1: r._BESIDE_ENGINE = Path(sys.argv[1])\n"
            "from studio.app import main\nsys.exit(main(['backprop-studio', '--self-check']))\n")
    args = [sys.executable, "-c", code] + ([str(beside_engine)] if beside_engine else [])
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    return subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)


def test_every_icon_the_studio_references_is_a_file(window):
    names = {str(act.property("icon_name")) for act in window.findChildren(QAction) if act.property("icon_name")}
    names |= set(TRAINING_ICONS.values()) | {"app"}
    assert {"new", "open", "save", "play", "stop", "fit"} <= names
    for name in sorted(names):
        assert icon_path(name).is_file(), name


def test_self_check_passes_on_the_checkout(tmp_path):
    proc = run_self_check(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith("self-check ok: ") and f"from the checkout {ROOT}" in out
    assert int(out.split("self-check ok: ")[1].split(" icons")[0]) >= 15


def test_self_check_names_what_a_broken_installation_lacks(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()  # no resources/, examples/, docs/ here
    proc = run_self_check(tmp_path, empty)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "self-check: icon 'play' of action 'Train' did not load (resources/icons/play.svg)" in out
    assert "the window icon did not load" in out
    assert "the style sheet resources/styles/studio.qss is missing or empty" in out
    assert "no example graphs (examples/*.json) found" in out and "no user guide pages" in out
    assert "lessons (resources/lessons/*.toml): " in out and "no lessons folder" in out
    assert out.strip().splitlines()[-1].startswith("self-check FAILED: ")
    assert "resources/icons/" in proc.stderr and "not found" in proc.stderr  # one line for the user, too
