"""Numba's on-disk cache: stale kernels are thrown away, and a first run is announced per graph."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import engine.kernels as kernels
from engine.graph import Graph

ROOT = Path(__file__).resolve().parents[2]


def fake_package(tmp_path: Path, body: str) -> Path:
    """A copy of engine/kernels/__init__.py governing a one-kernel package of its own."""
    pkg = tmp_path / "fakekernels"
    pkg.mkdir()
    (pkg / "__init__.py").write_text((ROOT / "engine" / "kernels" / "__init__.py").read_text())
    (pkg / "k.py").write_text(textwrap.dedent(body))
    return pkg


def run(tmp_path: Path, code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_kernel_whose_dependency_changed_is_compiled_again(tmp_path):
    """k.f inlines k2.g; Numba alone would keep f's cached code after g changes."""
    pkg = fake_package(tmp_path, """
        from numba import njit
        from fakekernels.k2 import g

        @njit(cache=True)
        def f(x):
            return g(x) + 1.0
    """)
    (pkg / "k2.py").write_text("from numba import njit\n\n@njit(cache=True, inline='always')\ndef g(x):\n"
                               "    return 2.0 * x\n")
    code = "from fakekernels.k import f; print(f(1.0))"
    assert run(tmp_path, code) == "3.0"
    assert list((pkg / "__pycache__").glob("k.f-*.nbi"))
    (pkg / "k2.py").write_text("from numba import njit\n\n@njit(cache=True, inline='always')\ndef g(x):\n"
                               "    return 10.0 * x\n")
    assert run(tmp_path, code) == "11.0"
    assert run(tmp_path, code) == "11.0"  # and the new code is cached again


def test_the_stamp_matches_the_sources_after_import():
    importlib.reload(kernels)
    stamp = Path(kernels.__file__).parent / "__pycache__" / "sources.sha256"
    assert stamp.read_text().strip() == kernels.sources_hash()
    assert kernels.invalidate_stale_cache() is False


def test_a_first_run_is_announced_for_the_layer_families_a_graph_uses(tmp_path, monkeypatch):
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    monkeypatch.setattr(kernels, "_cache_dirs", lambda: [cache])
    for name in ("activations.act_forward-1.py311.nbi", "losses.mse_kernel-1.py311.nbi",
                 "optim.fused_step-1.py311.nbi"):
        (cache / name).write_text("")
    mlp = Graph.load(ROOT / "examples" / "xor.json")
    lstm = Graph.load(ROOT / "examples" / "lstm_temporal_order.json")
    assert kernels.kernels_cached(kernels.graph_categories(mlp))
    assert not kernels.kernels_cached(kernels.graph_categories(lstm))
    (cache / "recurrent.lstm_forward-1.py311.nbi").write_text("")
    assert kernels.kernels_cached(kernels.graph_categories(lstm))
