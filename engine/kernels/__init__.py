"""Numba kernels. ``kernels_cached`` tells whether a first run will have to compile them."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ENGINE = _HERE.parent


def kernels_cached() -> bool:
    """True if Numba's on-disk cache already holds the engine's kernels.

    Numba writes ``<module>.<function>-<line>.pyXY.nbi`` index files beside the sources;
    their absence means the first training step will compile (tens of seconds), which the
    CLI and the studio announce instead of looking frozen.
    """
    expected = {"activations.act_forward", "losses.mse_kernel", "optim"}
    found = [p.name for p in _ENGINE.rglob("__pycache__/*.nbi")]
    return all(any(name.startswith(e) for name in found) for e in expected)
