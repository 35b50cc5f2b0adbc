"""Generated reference docs are up to date with the declarations."""

from pathlib import Path

from engine.docs import layers_markdown
from engine.layers import REGISTRY

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_layers_doc_is_regenerated():
    text = (DOCS / "layers.md").read_text(encoding="utf-8")
    assert text == layers_markdown(), "docs/layers.md is stale: run python -m engine.docs"


def test_every_layer_and_parameter_is_documented():
    text = layers_markdown()
    for layer in REGISTRY.values():
        assert f"### {layer.name}" in text
        for spec in layer.params:
            assert f"`{spec.name}`" in text
