"""Layer declarations. Importing this package registers every layer family.

The families register in the order below, which is the palette's and the docs' order.
"""

from engine.layers.base import REGISTRY, LayerType, NodeRuntime, ParamSpec, register

# isort: off
from engine.layers import io, dense, activations, regularisation, merge, reshape, conv, recurrent  # noqa: E402,F401,E501
from engine.layers import mixture  # noqa: E402,F401  (registration)
# isort: on

__all__ = ["REGISTRY", "LayerType", "NodeRuntime", "ParamSpec", "register"]
