"""The whole suite: one BLAS thread per test process.

CI runs the suite with ``pytest -n 2`` on 2 cores, so two workers already use both. With
OpenBLAS's default of one thread per core the workers' BLAS threads spin against each
other and a small matrix product can take milliseconds instead of microseconds (measured
here: a 64-unit MLP step at batch 195 went from 1.1 ms to 58 ms). The environment variable
reaches the CLI subprocesses the tests start; ``threadpool_limits`` covers a BLAS that was
already loaded before this file ran.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from threadpoolctl import threadpool_limits  # noqa: E402

threadpool_limits(1, user_api="blas")
