"""Suite-wide setup: one BLAS thread per test process when pytest-xdist runs several.

``pytest -n 2`` on a two-core machine already keeps both cores busy; a second OpenBLAS
thread per process then spins for work beside Numba's kernels and made convolution tests
several times slower (the LeNet-5 digits run took 20 s instead of 3 s).
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread_per_worker():
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield
