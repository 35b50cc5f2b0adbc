"""``python -m engine.lessons``: regenerate the measures table of docs/lessons.md."""

from pathlib import Path

from engine.lessons.expect import measures_markdown

BEGIN, END = "<!-- measures:begin -->\n", "<!-- measures:end -->"


def main() -> None:
    target = Path(__file__).resolve().parents[2] / "docs" / "lessons.md"
    text = target.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    target.write_text(f"{head}{BEGIN}{measures_markdown()}\n{END}{tail}", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
