"""Numba kernels: the compiled leaves of the engine.

Two things about Numba's on-disk cache (``cache=True``) are handled here, at import, before
any kernel module is loaded:

- **Staleness.** Numba keys a cached kernel on its own source file only. A kernel that
  inlines or calls a function from another file (the fused step calls the activation and
  loss kernels) keeps its old machine code when only that other file changes, and silently
  computes the old formula. :func:`invalidate_stale_cache` hashes every kernel source and,
  when the hash differs from the one recorded beside the cache, deletes the cached kernels,
  so they are compiled again from the current sources.
- **The first run.** :func:`kernels_cached` tells whether a graph's kernels will have to be
  compiled (tens of seconds on a fresh install), which the CLI and the studio announce
  instead of looking frozen.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_ENGINE = _HERE.parent
_STAMP = "sources.sha256"

#: Kernel modules every training run uses, and those only some layer categories need.
_ALWAYS = ("activations.", "losses.", "optim.")
_BY_CATEGORY = {"conv": ("conv.",), "recurrent": ("recurrent.",)}


def _cache_dirs() -> list[Path]:
    """Where Numba keeps this package's cached kernels: beside the sources, or under
    ``NUMBA_CACHE_DIR`` (which mirrors the source path) when that is set."""
    dirs = [_HERE / "__pycache__"]
    custom = os.environ.get("NUMBA_CACHE_DIR")
    if custom:
        dirs.append(Path(custom) / str(_HERE).lstrip(os.sep))
    return dirs


def sources_hash() -> str:
    """SHA-256 over the names and contents of every kernel source file."""
    digest = hashlib.sha256()
    for path in sorted(_HERE.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def invalidate_stale_cache() -> bool:
    """Delete cached kernels compiled from other sources than today's; True if it did.

    Cheap (one hash of ~100 kB of source per process). Files another process deletes first,
    or a cache folder that is not writable (an installed package), are passed over: Numba
    then compiles in memory, as without a cache.
    """
    current = sources_hash()
    removed = False
    for folder in _cache_dirs():
        stamp = folder / _STAMP
        try:
            if stamp.read_text().strip() == current:
                continue
        except OSError:
            pass
        if not folder.is_dir():
            continue
        for cached in list(folder.glob("*.nbi")) + list(folder.glob("*.nbc")):
            try:
                cached.unlink()
                removed = True
            except OSError:
                pass
        try:
            tmp = folder / f".{_STAMP}.{os.getpid()}"
            tmp.write_text(current + "\n")
            os.replace(tmp, stamp)
        except OSError:
            pass
    return removed


def kernels_cached(categories: Iterable[str] = ()) -> bool:
    """True if Numba's on-disk cache already holds the kernels a graph with layers of these
    ``categories`` needs (e.g. ``{"dense", "recurrent"}``); with none, the common ones.

    Numba writes ``<module>.<function>-<line>.pyXY.nbi`` index files beside the sources.
    """
    expected = list(_ALWAYS)
    for category in categories:
        expected += _BY_CATEGORY.get(category, ())
    found = [p.name for folder in _cache_dirs() if folder.is_dir() for p in folder.glob("*.nbi")]
    return all(any(name.startswith(e) for name in found) for e in expected)


def graph_categories(graph: object) -> set[str]:
    """The layer categories a Graph uses (for :func:`kernels_cached`)."""
    nodes = getattr(graph, "nodes", {})
    return {node.layer.category for node in nodes.values()}


invalidate_stale_cache()
