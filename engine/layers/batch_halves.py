"""Two threads for one layer: the halves of a batch computed at once.

Convolutions (those with enough filters: conv.SPLIT_MIN_FILTERS) and recurrent layers work
example by example, so the two halves of a batch are independent computations, and
everything they call releases the GIL (the Numba kernels are ``nogil``, NumPy's BLAS drops
it). When NumPy's BLAS may use two or more threads (its budget:
OPENBLAS_NUM_THREADS, threadpoolctl) and the batch has at least :data:`MIN_SPLIT` examples,
a layer runs its first half on the calling thread and its second on one helper thread, and
holds the BLAS it calls to one thread meanwhile (:func:`run_parts` holds NumPy's; the
convolution and recurrent kernels hold the one they call from Numba, NumPy's too where it
bundles OpenBLAS, with strided_gemm.ONE_BLAS_THREAD): two threads each asking BLAS for two
would put four threads on two cores. With a budget of one thread (the studio leaves a core to the UI
this way) the batch is one part and nothing changes.

Why not leave the threads to BLAS: the convolutions' products are thin (6 or 16 rows), and the
passes around them (im2col, col2im, the layouts) are single-threaded; splitting the batch runs
all of it on both cores. Layers that only move data (pooling, a 6-filter convolution's im2col)
were measured no faster on two threads, so they do not split (see conv.SPLIT_MIN_FILTERS).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from engine.kernels.strided_gemm import ONE_BLAS_THREAD, USES_NUMPY_BLAS, _OneBlasThread

MIN_SPLIT = 16
"""The smallest batch that is split into two halves computed on two threads at once."""


ONE_NUMPY_BLAS_THREAD = ONE_BLAS_THREAD if USES_NUMPY_BLAS else _OneBlasThread(numpy=True)
"""NumPy's own OpenBLAS (the one ``np.matmul`` calls) on one thread: the same holder as the
kernels' when they call it too, so that nested holds from both sides count as one."""


_PART = threading.local()


def inside_part() -> bool:
    """Whether this thread is running one of the parts of :func:`run_parts` (a half of a
    batch already has its thread: nothing inside it splits again)."""
    return getattr(_PART, "active", False)


def halves(n: int, budget: int | None = None) -> list[tuple[int, int]]:
    """Rows [a, b) of a batch of ``n`` per part: two halves when NumPy's BLAS may use two or
    more threads (``budget``, default its current setting), n ≥ :data:`MIN_SPLIT` and this
    thread is not already running a part (:func:`inside_part`), else one."""
    budget = ONE_NUMPY_BLAS_THREAD.budget() if budget is None else budget
    if budget < 2 or n < MIN_SPLIT or inside_part():
        return [(0, n)]
    half = (n + 1) // 2
    return [(0, half), (half, n)]


@functools.cache
def _helper() -> ThreadPoolExecutor:
    """The one helper thread (started on first use) that runs every second half."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-half")


def run_parts(tasks: Sequence[Callable[[], None]], hold_numpy_blas: bool = True) -> None:
    """Run one task per part: the first on this thread, the second on the helper thread at the
    same time, NumPy's BLAS on one thread while both run (``hold_numpy_blas``; the convolution and
    recurrent kernels, which call BLAS from Numba, have theirs held by the caller).
    One task runs as it is. While the parts run, :func:`inside_part` is true on both threads."""
    if len(tasks) > 1:
        with ONE_NUMPY_BLAS_THREAD if hold_numpy_blas else nullcontext():
            second = _helper().submit(_as_part, tasks[1])
            try:
                _as_part(tasks[0])
            finally:
                second.result()
    else:
        tasks[0]()


def _as_part(task: Callable[[], None]) -> None:
    before = inside_part()
    _PART.active = True
    try:
        task()
    finally:
        _PART.active = before


#: Layer categories whose layers split batches with :func:`run_parts`.
SPLITTING = frozenset({"conv"})
#: Layer categories whose kernels hold their BLAS to one thread (strided_gemm.ONE_BLAS_THREAD).
ONE_THREAD_KERNELS = frozenset({"recurrent"})


def step_blas_threads(categories: Iterable[str]) -> AbstractContextManager[Any]:
    """What a training step of a model with layers of these ``categories`` runs inside:
    NumPy's BLAS on one thread when a layer splits batches or its kernels want one BLAS
    thread, else nothing.

    Between the split layers, the small Dense products of a CNN would otherwise run on two
    BLAS threads, and OpenBLAS's second thread then spins waiting for work while the helper
    thread of the next split layer needs that core (measured, LeNet-5 batch 64, quiet
    machine: 8.4k samples/s with two BLAS threads around the halves, 11.9k with one).
    The recurrent layers hold the BLAS to one thread in their forward and in their backward;
    held once around the whole step, those holds only count up (no thread-count changes:
    W5 at two threads, 40 µs a step of threadpoolctl calls). The price: a recurrent graph's
    Dense products then run on one thread too, as a CNN's do; in the graphs this program
    teaches with, the recurrence dominates the step.
    """
    categories = set(categories)
    if SPLITTING & categories or (USES_NUMPY_BLAS and ONE_THREAD_KERNELS & categories):
        return ONE_NUMPY_BLAS_THREAD
    return nullcontext()
