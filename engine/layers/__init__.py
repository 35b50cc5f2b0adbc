"""Layer declarations. Importing this package registers every layer family."""

from engine.layers.base import REGISTRY, LayerType, NodeRuntime, ParamSpec, register

from engine.layers import io, dense, activations, regularisation, merge, reshape  # noqa: E402,F401  (registration)

__all__ = ["REGISTRY", "LayerType", "NodeRuntime", "ParamSpec", "register"]
