"""Matrix products from ``@njit`` code through NumPy's own BLAS.

``np.dot`` inside Numba calls SciPy's bundled OpenBLAS; NumPy ships its own (a newer
build), which on this project's machines is 15–30 % faster on the batch-sized products of
a training step (e.g. (64×784)·(784×256): 69 vs 53 GFLOP/s on one core). :func:`matmul`
calls NumPy's ``cblas_?gemm`` directly:

    C = op(A) · op(B),   op(X) = X or Xᵀ,   all three C-contiguous (row-major)

The function's address is looked up once per process (:data:`GEMM`) and passed to the
kernels as an integer, so the compiled code, which Numba caches on disk, never embeds an
address. Where NumPy's BLAS cannot be found (a NumPy built against another BLAS), the
address is 0 and :func:`matmul` falls back to ``np.dot``: same numbers up to rounding.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import intrinsic

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112
#: ``cblas_?gemm`` symbols of the OpenBLAS wheel NumPy bundles (64-bit integers).
_SYMBOLS = {np.dtype(np.float32): "scipy_cblas_sgemm64_", np.dtype(np.float64): "scipy_cblas_dgemm64_"}


def _numpy_blas() -> ctypes.CDLL | None:
    """NumPy's bundled OpenBLAS, if this NumPy is a wheel that bundles one."""
    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*"))):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _addresses() -> dict[np.dtype, int]:
    lib = _numpy_blas()
    out = {}
    for dtype, name in _SYMBOLS.items():
        fn = getattr(lib, name, None) if lib is not None else None
        out[dtype] = (ctypes.cast(fn, ctypes.c_void_p).value or 0) if fn is not None else 0
    return out


#: ``{dtype: address of NumPy's cblas_?gemm}`` (0: not available, use np.dot).
GEMM: dict[np.dtype, int] = _addresses()


def gemm_address(dtype: np.dtype) -> int:
    """The address :func:`matmul` needs for arrays of ``dtype`` (0 means np.dot)."""
    if os.environ.get("BACKPROP_NUMBA_DOT"):  # measure or work around: force the np.dot path
        return 0
    return GEMM.get(np.dtype(dtype), 0)


@intrinsic
def _cblas_gemm(typingctx, addr, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc):
    """Call ``cblas_?gemm(RowMajor, trans_a, trans_b, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)``."""
    for arr in (a, b, c):
        if not isinstance(arr, types.Array) or arr.layout != "C" or arr.dtype != c.dtype:
            raise TypingError("_cblas_gemm needs C-contiguous arrays of one float dtype")
    if c.dtype not in (types.float32, types.float64):
        raise TypingError("_cblas_gemm supports float32 and float64")
    sig = types.void(addr, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc)

    def codegen(context, builder, signature, args):
        addr_v, ta, tb, m_v, n_v, k_v, a_v, lda_v, b_v, ldb_v, c_v, ldc_v = args
        real = context.get_value_type(signature.args[10].dtype)
        i32, i64 = ir.IntType(32), ir.IntType(64)
        ptr = real.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real,
                                               ptr, i64])
        fn = builder.inttoptr(addr_v, fnty.as_pointer())

        def data(value, index):
            return context.make_array(signature.args[index])(context, builder, value).data

        ints = [builder.sext(v, i64) if v.type.width < 64 else v for v in (m_v, n_v, k_v, lda_v, ldb_v, ldc_v)]
        builder.call(fn, [ir.Constant(i32, ROW_MAJOR), builder.trunc(ta, i32), builder.trunc(tb, i32),
                          ints[0], ints[1], ints[2], ir.Constant(real, 1.0), data(a_v, 6), ints[3],
                          data(b_v, 8), ints[4], ir.Constant(real, 0.0), data(c_v, 10), ints[5]])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True)
def matmul(addr: int, a: np.ndarray, trans_a: bool, b: np.ndarray, trans_b: bool, c: np.ndarray) -> None:
    """c = op(a) · op(b) with op(x) = xᵀ when its flag is set (at most one); C-contiguous 2-D.

    ``addr`` is :func:`gemm_address` of the dtype (0: ``np.dot``, SciPy's BLAS).
    """
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    if addr == 0:
        if trans_a:
            np.dot(a.T, b, c)
        elif trans_b:
            np.dot(a, b.T, c)
        else:
            np.dot(a, b, c)
        return
    _cblas_gemm(addr, TRANS if trans_a else NO_TRANS, TRANS if trans_b else NO_TRANS, m, n, k,
                a, a.shape[1], b, b.shape[1], c, n)
