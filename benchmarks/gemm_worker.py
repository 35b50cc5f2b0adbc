"""The machine's float32 GEMM throughput on one shape (NumPy), for run.py; prints one JSON line.

    python benchmarks/gemm_worker.py N K M SECONDS

Times ``np.dot(A, B, out=C)`` for A (N, K), B (K, M) float32 (what NumPy's BLAS, the one the
engine's fused step calls, does at the thread count of the environment) in rounds of at
least 20 ms for ``SECONDS``; reports the median round as GFLOP/s (2·N·K·M per product).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np


def main() -> None:
    n, k, m = (int(a) for a in sys.argv[1:4])
    seconds = float(sys.argv[4])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, k)).astype(np.float32)
    b = rng.standard_normal((k, m)).astype(np.float32)
    c = np.empty((n, m), np.float32)
    flops = 2.0 * n * k * m
    for _ in range(5):
        np.dot(a, b, out=c)
    t0 = time.perf_counter()
    np.dot(a, b, out=c)
    reps = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-7)))
    rates, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(rates) < 5:
        t0 = time.perf_counter()
        for _ in range(reps):
            np.dot(a, b, out=c)
        rates.append(flops * reps / (time.perf_counter() - t0) / 1e9)
    print(json.dumps({"shape": [n, k, m], "gflops": statistics.median(rates), "rounds": len(rates)}))


if __name__ == "__main__":
    main()
