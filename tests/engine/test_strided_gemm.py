"""The kernels' matrix product (engine.kernels.strided_gemm.gemm) on either BLAS it binds to.

In this environment NumPy is a wheel with its own OpenBLAS, so the kernels call it; with
BACKPROP_NUMBA_DOT set (or a NumPy without one) the same cached kernels call SciPy's through
Numba. Both must compute the same products, sub-blocks and accumulation included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from engine.kernels import strided_gemm
from engine.kernels.blas import gemm_address
from engine.kernels.strided_gemm import ONE_BLAS_THREAD, gemm

ROOT = Path(__file__).resolve().parents[2]


@njit(cache=True)
def _product(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc):
    gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc)


def products_match_numpy(dtype: type) -> float:
    """The largest relative error of gemm against NumPy over transposes, accumulation and
    sub-blocks of wider matrices (leading dimensions larger than the block)."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for trans_a in (False, True):
        for trans_b in (False, True):
            for accumulate in (False, True):
                m, n, k, pad = 5, 7, 9, 3
                a = rng.standard_normal((k, m + pad) if trans_a else (m, k + pad)).astype(dtype)
                b = rng.standard_normal((n, k + pad) if trans_b else (k, n + pad)).astype(dtype)
                c = rng.standard_normal((m, n + pad)).astype(dtype)
                op_a = a[:, :m].T if trans_a else a[:, :k]
                op_b = b[:, :k].T if trans_b else b[:, :n]
                expected = c.copy()
                expected[:, :n] = op_a.astype(np.float64) @ op_b + (c[:, :n] if accumulate else 0)
                _product(trans_a, trans_b, m, n, k, a.reshape(-1), a.shape[1], b.reshape(-1), b.shape[1],
                         accumulate, c.reshape(-1), c.shape[1])
                worst = max(worst, float(np.abs(c - expected).max() / np.abs(expected).max()))
    return worst


def _lenet_and_lstm_losses() -> list[float]:
    """Three training steps of a small CNN and an LSTM: their losses (same seeds everywhere)."""
    from engine.compiler import compile_graph
    from engine.graph import Graph
    from engine.training import TrainConfig, Trainer

    losses = []
    for kind in ("conv", "lstm"):
        g = Graph(kind)
        if kind == "conv":
            g.add_node("Input", {"shape": [2, 9, 9]}, "x")
            g.add_node("Conv2D", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}, "c")
            g.add_node("Flatten", {}, "f")
            g.add_node("Dense", {"units": 3}, "d")
            g.connect("x", "c")
            g.connect("c", "f")
        else:
            g.add_node("Input", {"shape": [6, 3]}, "x")
            g.add_node("LSTM", {"units": 5}, "c")
            g.add_node("Dense", {"units": 3}, "d")
            g.connect("x", "c")
        g.connect("f" if kind == "conv" else "c", "d")
        rng = np.random.default_rng(1)
        X = rng.standard_normal((20,) + tuple(g.nodes["x"].params["shape"]))
        y = rng.integers(0, 3, 20)
        model = compile_graph(g, dtype="float64", seed=0)
        cfg = TrainConfig.from_training(g.training)
        trainer = Trainer(model, X, y, cfg, task="classification", n_classes=3)
        for _ in range(3):
            loss = trainer.train_step(trainer.X, trainer.T, 0.05)
        losses.append(loss)
    return losses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_match_numpy(dtype):
    assert products_match_numpy(dtype) < (1e-5 if dtype == np.float32 else 1e-12)


def test_kernels_call_numpys_blas_where_numpy_bundles_one():
    assert gemm_address(np.float32) != 0, "this environment's NumPy is a wheel with OpenBLAS"
    assert strided_gemm.USES_NUMPY_BLAS
    libraries = ONE_BLAS_THREAD._find()
    assert libraries and all("numpy.libs" in lc.filepath for lc in libraries)


def test_the_scipy_fallback_computes_the_same(tmp_path):
    """A process with BACKPROP_NUMBA_DOT binds the kernels to SciPy's BLAS: same products,
    and the same training steps of a CNN and an LSTM as this process (NumPy's BLAS)."""
    script = tmp_path / "fallback.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import numpy as np\n"
        "import test_strided_gemm as t\n"
        "from engine.kernels import strided_gemm\n"
        "print(json.dumps({'numpy': strided_gemm.USES_NUMPY_BLAS,\n"
        "                  'errors': [t.products_match_numpy(d) for d in (np.float32, np.float64)],\n"
        "                  'losses': t._lenet_and_lstm_losses()}))\n")
    env = {**os.environ, "BACKPROP_NUMBA_DOT": "1"}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert there["numpy"] is False
    assert there["errors"][0] < 1e-5 and there["errors"][1] < 1e-12
    np.testing.assert_allclose(there["losses"], _lenet_and_lstm_losses(), rtol=1e-12)
