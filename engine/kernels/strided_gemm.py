"""Row-major matrix products on strided operands, callable from ``@njit`` code.

``np.dot`` inside Numba needs whole contiguous arrays and always overwrites its output;
the recurrent and convolution kernels need products of sub-blocks (rows of a larger
matrix, a time step inside a sequence buffer) and accumulation (C ← C + A·B) without
temporaries. ``gemm`` calls ``cblas_?gemm`` by the name of an external symbol,
``backprop_cblas_sgemm`` / ``backprop_cblas_dgemm``, which this module binds when it is
imported:

- to NumPy's own OpenBLAS (``engine.kernels.blas``: a newer build than the one SciPy
  bundles, whose small-matrix kernels are faster on the thin products of a convolution:
  LeNet-5's (6×25)·(25×4704) 65 against 109 µs, (16×150)·(150×800) 90 against 145 µs,
  one core of an AMD EPYC);
- where NumPy has no bundled OpenBLAS (or ``BACKPROP_NUMBA_DOT`` is set), to a small
  C-callable wrapper of ``numba_xxgemm``, the helper Numba's ``np.dot`` uses (SciPy's BLAS).

Kernels reference the symbol by name, never an address, so they stay in Numba's on-disk
cache, and a cached kernel works whichever library the symbol is bound to.
"""

from __future__ import annotations

import threading
from typing import Any

import llvmlite.binding as llvm
import numpy as np
from numba import cfunc, types
from numba.extending import intrinsic, overload
from numba.np.linalg import _BLAS, ensure_blas

from engine.kernels.blas import NO_TRANS, ROW_MAJOR, TRANS, gemm_address

_SYMBOLS = {np.dtype(np.float32): "backprop_cblas_sgemm", np.dtype(np.float64): "backprop_cblas_dgemm"}


def _signature(real: types.Float, p: types.Type = types.voidptr) -> types.Type:
    """``cblas_?gemm`` with 64-bit integers (OpenBLAS's ``…64_`` interface): order, transa,
    transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc; matrices as ``p`` pointers."""
    i32, i64 = types.int32, types.int64
    return types.void(i32, i32, i32, i64, i64, i64, real, p, i64, p, i64, real, p, i64)


@intrinsic
def _data(typingctx, arr):
    """The typed pointer to an array's first element (``numba_xxgemm`` takes no ``voidptr``)."""
    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data
    return types.CPointer(arr.dtype)(arr), codegen


def _numba_blas_fallback(dtype: np.dtype) -> int:
    """The address of a C-callable row-major ``cblas_?gemm`` built on ``numba_xxgemm``."""
    real = types.float32 if dtype == np.float32 else types.float64
    xxgemm = _BLAS().numba_xxgemm(real)
    kind, t_char, n_char = np.int8(ord("s" if dtype == np.float32 else "d")), np.int8(ord("t")), np.int8(ord("n"))

    @cfunc(_signature(real, types.CPointer(real)), nogil=True)
    def row_major_gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        scalars = np.empty(2, dtype)
        scalars[0], scalars[1] = alpha, beta
        # BLAS is column-major: a row-major C is a column-major Cᵀ = op(B)ᵀ·op(A)ᵀ
        xxgemm(kind, t_char if trans_b == TRANS else n_char, t_char if trans_a == TRANS else n_char,
               n, m, k, _data(scalars[0:]), b, ldb, a, lda, _data(scalars[1:]), c, ldc)

    _KEEP.append(row_major_gemm)
    return row_major_gemm.address


_KEEP: list[Any] = []
"""The fallback wrappers (their machine code lives as long as these objects)."""


def _bind_symbols() -> bool:
    """Bind the kernels' ``cblas_?gemm`` symbols; True when they call NumPy's OpenBLAS."""
    ensure_blas()
    uses_numpy = True
    for dtype, name in _SYMBOLS.items():
        address = gemm_address(dtype)
        if not address:
            uses_numpy, address = False, _numba_blas_fallback(dtype)
        llvm.add_symbol(name, address)
    return uses_numpy


USES_NUMPY_BLAS: bool = _bind_symbols()
"""Whether :func:`gemm` runs on NumPy's OpenBLAS (else SciPy's, through Numba)."""


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
    dtype = c.dtype
    if dtype not in (types.float32, types.float64):
        return None
    np_dtype = np.dtype(np.float32 if dtype == types.float32 else np.float64)
    cblas = types.ExternalFunction(_SYMBOLS[np_dtype], _signature(dtype))
    real = np_dtype.type
    one, zero = real(1.0), real(0.0)

    def impl(trans_a, trans_b, m, n, k, a, lda, b, ldb, accumulate, c, ldc):
        cblas(ROW_MAJOR, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS, m, n, k,
              one, a.ctypes, lda, b.ctypes, ldb, one if accumulate else zero, c.ctypes, ldc)
    return impl


class _OneBlasThread:
    """``with ONE_BLAS_THREAD:`` — the BLAS the kernels call (:data:`USES_NUMPY_BLAS`) on one thread.

    The recurrent kernels make two small products per time step (≈10⁶ flops each); OpenBLAS
    splits products of that size between its threads, paying a synchronisation per call,
    and when another process holds the second core every step waits for it (measured: W5
    eight times slower). Entered from several threads at once, the first entrant lowers the
    thread count and the last to leave restores it. ``numpy`` chooses the library: NumPy's
    own OpenBLAS (the one ``np.matmul`` calls) or SciPy's.
    """

    def __init__(self, numpy: bool) -> None:
        self._numpy = numpy
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: list[tuple[Any, int]] = []
        self._libraries: list[Any] | None = None

    def _find(self) -> list[Any]:
        if self._libraries is None:
            try:
                import scipy.linalg.cython_blas  # noqa: F401  (loaded, so threadpoolctl sees it)
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - declared dependencies; without them no control
                self._libraries = []
                return self._libraries
            self._libraries = [lc for lc in ThreadpoolController().lib_controllers
                               if lc.user_api == "blas" and ("numpy.libs" in lc.filepath) == self._numpy]
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
        """How many threads this BLAS may use outside these blocks (its setting, as
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


ONE_BLAS_THREAD = _OneBlasThread(numpy=USES_NUMPY_BLAS)
"""One thread for the BLAS :func:`gemm` calls."""
