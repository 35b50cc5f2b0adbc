"""Reference documentation generated from the declarations (``python -m engine.docs``).

``docs/layers.md`` is this module's output; a test fails when it is out of date, so the
docs can never drift from the registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.layers import REGISTRY
from engine.layers.base import CATEGORY_TITLES, ParamSpec
from engine.losses import LOSSES


def _default(spec: ParamSpec) -> str:
    value = spec.default
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"`{value}`" if isinstance(value, str) else str(value)


def _allowed(spec: ParamSpec) -> str:
    if spec.kind == "choice":
        return ", ".join(f"`{c}`" for c in spec.choices)
    return spec.describe_range()


def layers_markdown() -> str:
    """Markdown reference of every registered layer type, grouped by palette category."""
    out = ["# Layer reference", "",
           "Generated from the layer declarations by `python -m engine.docs`; do not edit by hand.",
           "Shapes exclude the batch axis.", ""]
    for category, layers in REGISTRY.categories().items():
        out += [f"## {CATEGORY_TITLES.get(category, category.title())}", ""]
        for layer in layers:
            out += [f"### {layer.name}", "", layer.help, ""]
            defaults = layer.default_params()
            ports = ", ".join(f"`{p}`" for p in layer.inputs(defaults)) or "none"
            outs = layer.output_ports(defaults)
            label = "Output" if len(outs) == 1 else "Outputs"
            out += [f"Inputs: {ports}. {label}: {', '.join(f'`{p}`' for p in outs)}. Exports: "
                    + (", ".join(sorted(layer.exporters)) or "none") + ".", ""]
            if layer.params:
                out += ["| parameter | default | allowed | meaning |", "|---|---|---|---|"]
                out += [f"| `{s.name}` | {_default(s)} | {_allowed(s)} | {s.help} |" for s in layer.params]
                out.append("")
            if layer.presets:
                out += ["Palette entries: " + ", ".join(layer.presets) + ".", ""]
    out += ["## Losses", "", "| loss | meaning |", "|---|---|"]
    out += [f"| `{name}` | {spec.help} |" for name, spec in LOSSES.items()]
    return "\n".join(out) + "\n"


def main() -> int:
    target = Path(__file__).resolve().parent.parent / "docs" / "layers.md"
    target.write_text(layers_markdown(), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
