"""The convolutional templates open in the studio: every node drawn, the conv nodes inspected."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CNN = ["lenet5_digits", "lenet5_mnist", "alexnet_mini", "vgg_mini", "inception_mini", "resnet_mini",
       "resnet_mini_plain"]


@pytest.mark.parametrize("name", CNN)
def test_cnn_template_opens_drawn_and_inspectable(window, name):
    assert window.files.open(EXAMPLES / f"{name}.json")
    graph = window.document.graph
    assert all(window.scene.node_item(nid) is not None for nid in graph.nodes)
    conv = next(nid for nid, node in graph.nodes.items() if node.type == "Conv2D")
    window.scene.select_nodes([conv])
    assert window.inspector.node_id == conv and set(window.inspector.editors) >= {"kernel_size", "padding"}
    window.view.fit_all()
    assert not window.view.viewport().grab().isNull()
