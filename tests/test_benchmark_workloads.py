"""The reference workloads of benchmarks/ build the graphs they describe (a broken workload
table once made W2 an 0.8-step 'sequence' and the benchmark died before measuring it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from workloads import WORKLOADS  # noqa: E402

from engine.compiler import compile_graph  # noqa: E402


@pytest.mark.parametrize("wid", sorted(WORKLOADS))
def test_every_workload_builds_and_compiles_its_graph(wid):
    from workloads import engine_graph

    w = WORKLOADS[wid]
    graph = engine_graph(w)
    X, _ = w.data()
    model = compile_graph(graph)
    assert tuple(X.shape[1:]) == tuple(model.shapes["x"])
    assert (w.seq_len > 0) == (X.ndim == 3)  # only the sequence workload has a time axis
    if w.gemm_target is not None:
        assert 0 < w.gemm_target <= 1 and w.seq_len == 0
