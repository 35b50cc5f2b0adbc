"""The engine stays headless: it never imports Qt, pyqtgraph or the studio."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("PySide6", "pyqtgraph", "studio", "PyQt5", "PyQt6")


def test_no_engine_module_names_a_forbidden_import():
    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_every_engine_module_loads_no_qt():
    code = (
        "import importlib, pkgutil, sys, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    if m.name != 'engine.__main__' and '.templates' not in m.name: importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _outside_kernels(module: str) -> bool:
    return module.startswith("relative") or (module.startswith("engine") and not module.startswith("engine.kernels"))


def test_kernels_import_only_kernels_from_the_engine():
    """engine/kernels/* are leaves: the layers, compiler, losses and trainer build on them, never
    the other way round (so a kernel never drags the Model or a declaration into compiled code)."""
    offenders = []
    for path in (ROOT / "engine" / "kernels").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else [f"relative:{node.module}"]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if _outside_kernels(n)]
    assert offenders == []
