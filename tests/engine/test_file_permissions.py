"""Saved graphs, models and exports get the permissions a plain write would give them.

Atomic writes go through ``tempfile`` (0600 files, 0700 folders whatever the umask); what
reaches the user must follow the umask like any other file, and replacing a file keeps
its mode, as ``open(path, "w")`` does.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from engine.compiler import compile_graph
from engine.export import export_model
from engine.graph import Graph, current_umask
from engine.modelfile import save_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
UMASKS = [0o022, 0o002, 0o027, 0o077]

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def plain_file_mode(folder: Path) -> int:
    ref = folder / "plain.txt"
    with open(ref, "w") as fh:
        fh.write("x")
    return mode(ref)


def plain_folder_mode(folder: Path) -> int:
    ref = folder / "plain_dir"
    ref.mkdir()
    return mode(ref)


@pytest.mark.parametrize("mask", UMASKS, ids=[f"umask_{m:03o}" for m in UMASKS])
def test_saved_graph_model_and_exports_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    expected_file, expected_dir = plain_file_mode(tmp_path), plain_folder_mode(tmp_path)
    assert expected_file == 0o666 & ~mask and expected_dir == 0o777 & ~mask  # the reference itself
    assert current_umask() == mask
    graph = Graph.load(EXAMPLES / "xor.json")
    graph.save(tmp_path / "g.json")
    model_path = tmp_path / "m.bpmodel"
    save_model(model_path, compile_graph(graph, dtype=np.float32))
    export_model(model_path, "numpy", tmp_path / "np_export")
    export_model(model_path, "onnx", tmp_path / "m.onnx")
    assert mode(tmp_path / "g.json") == expected_file
    assert mode(model_path) == expected_file
    assert mode(tmp_path / "m.onnx") == expected_file
    assert mode(tmp_path / "np_export") == expected_dir
    for inner in (tmp_path / "np_export").iterdir():
        assert mode(inner) == expected_file, inner.name
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_replacing_a_file_keeps_its_mode_like_a_plain_write(tmp_path, umask):
    umask(0o022)
    graph = Graph.load(EXAMPLES / "xor.json")
    path = tmp_path / "g.json"
    graph.save(path)
    path.chmod(0o640)
    graph.save(path)
    assert mode(path) == 0o640
    folder = tmp_path / "export"
    model_path = tmp_path / "m.bpmodel"
    save_model(model_path, compile_graph(graph, dtype=np.float32))
    export_model(model_path, "numpy", folder)
    folder.chmod(0o750)
    export_model(model_path, "numpy", folder)
    assert mode(folder) == 0o750
