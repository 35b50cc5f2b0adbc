"""Regenerate the generator reference in docs/datasets.md (``python -m engine.data``).

Only the text between the two marker comments is replaced; the rest of the page is prose.
"""

from __future__ import annotations

import sys
from pathlib import Path

from engine.data import generators_markdown

BEGIN, END = "<!-- generators:begin -->", "<!-- generators:end -->"


def main() -> int:
    target = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
    text = target.read_text(encoding="utf-8")
    head, sep1, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep1 and sep2):
        print(f"{target}: markers {BEGIN} / {END} not found", file=sys.stderr)
        return 1
    target.write_text(f"{head}{BEGIN}\n{generators_markdown()}{END}{tail}", encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
