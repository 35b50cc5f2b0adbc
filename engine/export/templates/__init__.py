"""Templates of the generated files. Each is a valid Python file whose marked blocks
(``# <<name>>`` … ``# <</name>>``) the exporters replace; the rest is copied as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(template: str, blocks: Mapping[str, str]) -> str:
    """The template's text with every marked block replaced by ``blocks[name]``."""
    text = (HERE / template).read_text(encoding="utf-8")
    for name, value in blocks.items():
        pattern = re.compile(rf"^# <<{name}>>\n.*?^# <</{name}>>\n", re.S | re.M)
        text, count = pattern.subn(lambda _m, v=value: v, text)
        if count != 1:
            raise KeyError(f"template {template} has no block {name!r}")
    if "# <<" in text:
        raise KeyError(f"template {template}: a block was left unfilled")
    return text
