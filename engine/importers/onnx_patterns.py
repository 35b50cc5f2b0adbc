"""Layers that ONNX spells with several operators, recognised where their last operator is.

- MixtureDensity: ``Split`` into (a, m, s) → ``Softmax(a)``, ``m``, ``σ_min + exp(s)`` (or
  softplus) → ``Concat``, as Backprop Studio exports it.
- Maxout: ``Reshape`` to (F/k, k) → ``ReduceMax`` over the last axis.

The layers that the first operators became (a Split, a Softmax, a Reshape) stay behind
unused and are dropped when the graph is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.importers import onnx_elementwise as ew
from engine.importers.onnx_values import Data, Expr, Value


def _source(view: Any, d: Data, type_name: str) -> Data | None:
    """The data feeding the importer's own ``type_name`` layer that produced ``d``."""
    imp = view.imp
    p = imp.producer.get(d.ref)
    if p is None or p.type != type_name or not d.is_canonical:
        return None
    ref = p.inputs[0]
    return Data.canonical(ref, imp.shapes[ref])


def _sigma_tree(view: Any, s: Value, split_ref: tuple[str, str]) -> Any:
    """The σ branch as one tree over the split's third part, through a softplus layer if any."""
    base = s if isinstance(s, Data) else s.base if isinstance(s, Expr) else None
    if base is None or not base.is_canonical:
        return None
    tree = "x" if isinstance(s, Data) else s.tree
    if base.ref == split_ref:
        return tree
    act = view.imp.producer.get(base.ref)
    if act is not None and act.type == "Activation" and act.params.get("function") == "softplus" \
            and act.inputs[0] == split_ref:
        return ew.substitute(tree, ("Softplus", {}, ["x"]))
    return None


def mixture_density(view: Any) -> list[Value | None] | None:
    """Concat(Softmax(a), m, σ(s)) of one three-way split: a MixtureDensity layer, or None."""
    if len(view.values) != 3 or not all(isinstance(v, (Data, Expr)) for v in view.values):
        return None
    a, m, s = view.values
    if not isinstance(a, Data) or not isinstance(m, Data) or not m.is_canonical:
        return None
    pi_source = _source(view, a, "Softmax")
    split = view.imp.producer.get(m.ref)
    if pi_source is None or split is None or split.type != "Split" or split.params["parts"] != 3:
        return None
    z = Data.canonical(split.inputs[0], view.imp.shapes[split.inputs[0]])
    last = len(z.shape) - 1
    if pi_source.ref != (split.id, "out0") or m.ref != (split.id, "out1") \
            or split.params["axis"] % len(z.shape) != last:
        return None
    if a.axis(view.attrs.get("axis", 0)) != last + 1:
        return None
    tree = _sigma_tree(view, s, (split.id, "out2"))
    sigma = None if tree is None else ew.match_mixture_sigma(tree)
    if sigma is None:
        return None
    view.attr("axis")
    kind, floor = sigma
    return view.layer("MixtureDensity", {"components": z.shape[-1] // 3, "sigma": kind, "min_sigma": floor}, [z])


def maxout(view: Any) -> list[Value | None]:
    """ReduceMax over the last axis of an (F/k, k) reshape of (F,) features: maxout with k pieces."""
    x = view.data(0)
    axes = view.attr("axes")
    if axes is None and view.value(1) is not None:
        axes = [int(a) for a in np.asarray(view.const(1, "axes")).reshape(-1)]
    keep = view.attr("keepdims", 1)
    view.attr("noop_with_empty_axes", 0)
    z = _source(view, x, "Reshape")
    if z is None or len(z.shape) != 1 or len(x.shape) != 2 or keep or axes is None \
            or [a % 3 for a in axes] != [2]:
        view.refuse("only the maximum over groups of consecutive features (maxout: a Reshape to (F/k, k) and "
                    "ReduceMax over the last axis, keepdims = 0) has a Backprop Studio layer")
    return view.layer("Activation", {"function": "maxout", "pieces": x.shape[1]}, [z])
