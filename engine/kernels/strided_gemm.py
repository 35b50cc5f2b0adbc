"""Row-major matrix products on strided operands, callable from ``@njit`` code.

``np.dot`` inside Numba needs whole contiguous arrays and always overwrites its output;
the recurrent kernels need products of sub-blocks (rows of a larger matrix, a time step
inside a sequence buffer) and accumulation (C ← C + A·B) without temporaries. ``gemm``
calls BLAS's xGEMM through ``numba_xxgemm``, the helper Numba's own ``np.dot`` uses: an
external symbol, so kernels that call it stay in Numba's on-disk cache (a ctypes pointer
would not), and it takes SciPy's BLAS like ``np.dot`` does.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numba import types
from numba.extending import overload
from numba.np.linalg import _BLAS, ensure_blas


def gemm(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc):
    """C ← op(A)·op(B) (+ C when ``accumulate``), all row-major (compiled by the overload).

    C is m×n with ``ldc`` elements per row; op(A) is m×k: A itself (m rows of ``lda``
    elements) or, with ``trans_a``, the transpose of a k×m A. Likewise op(B) (k×n). ``a``,
    ``b`` and ``c`` are contiguous arrays (or 1-D views) whose first element is the
    matrix's first element, so a sub-block is ``flat[offset:]`` with the full row length.
    """
    raise NotImplementedError("gemm is only callable from @njit code")


@overload(gemm)
def _gemm_impl(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc):
    ensure_blas()
    dtype = c.dtype
    if dtype not in (types.float32, types.float64):
        return None
    xxgemm = _BLAS().numba_xxgemm(dtype)
    kind = ord("s" if dtype == types.float32 else "d")
    np_dtype = np.float32 if dtype == types.float32 else np.float64
    one, zero = np.ones(1, np_dtype), np.zeros(1, np_dtype)
    t_char, n_char = ord("t"), ord("n")

    def impl(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc):
        # BLAS is column-major: a row-major C is a column-major Cᵀ = op(B)ᵀ·op(A)ᵀ
        beta = one if accumulate else zero
        xxgemm(kind, t_char if trans_b else n_char, t_char if trans_a else n_char, n, m, k,
               one.ctypes, b.ctypes, ldb, a.ctypes, lda, beta.ctypes, c.ctypes, ldc)
    return impl


class _OneBlasThread:
    """``with ONE_BLAS_THREAD:`` — SciPy's BLAS, the one Numba's kernels call, on one thread.

    The recurrent kernels make two small products per time step (≈10⁶ flops each); OpenBLAS
    splits products of that size between its threads, paying a synchronisation per call,
    and when another process holds the second core every step waits for it (measured: W5
    eight times slower). Entered from several threads at once, the first entrant lowers the
    thread count and the last to leave restores it. NumPy's own BLAS is left alone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[tuple[Any, int]] = []
        self._libraries: list[Any] | None = None

    def _find(self) -> list[Any]:
        if self._libraries is None:
            import scipy.linalg.cython_blas  # noqa: F401  (loaded, so threadpoolctl sees it)
            from threadpoolctl import ThreadpoolController

            self._libraries = [lc for lc in ThreadpoolController().lib_controllers
                               if lc.user_api == "blas" and "numpy.libs" not in lc.filepath]
        return self._libraries

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._saved = [(lc, lc.get_num_threads()) for lc in self._find()]
                for lc, n in self._saved:
                    if n != 1:
                        lc.set_num_threads(1)
            self._depth += 1

    def budget(self) -> int:
        """How many threads SciPy's BLAS may use outside these blocks (its setting, as
        OPENBLAS_NUM_THREADS or threadpoolctl left it)."""
        with self._lock:
            if self._depth > 0:
                return max((n for _, n in self._saved), default=1)
            return max((lc.get_num_threads() for lc in self._find()), default=1)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lc, n in self._saved:
                    if n != 1:
                        lc.set_num_threads(n)


ONE_BLAS_THREAD = _OneBlasThread()
