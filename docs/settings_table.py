"""Write the README's configuration table from the fields of service/settings.py.

    python docs/settings_table.py            rewrite the table in README.md
    python docs/settings_table.py --check    exit 1 when the README's table is stale

The table sits between the two marker comments below; each row is one ``Settings`` field: its
environment variable, its default and its ``Field(description=...)`` (plus the allowed values
of a ``Literal``). Edit the descriptions in service/settings.py, never the table.
"""

import argparse
import sys
import typing
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from service.settings import Settings  # noqa: E402  (the checkout's, wherever this runs from)

README = PROJECT_ROOT / "README.md"
BEGIN = "<!-- settings table: written by `python docs/settings_table.py`; do not edit -->"
END = "<!-- end of settings table -->"
MARKDOWN_ESCAPES = {"|": "\\|", "*": "\\*", "<": "&lt;", ">": "&gt;"}
HEADER = "| variable | default | meaning |\n| --- | --- | --- |"


def default_text(field: FieldInfo) -> str:
    """The default as a user would write it in the environment."""
    if field.default_factory is list:
        return "`[]`"
    if field.default_factory is not None:
        return "per machine"
    value = field.default
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return (
            f"`{value.relative_to(PROJECT_ROOT) if value.is_relative_to(PROJECT_ROOT) else value}`"
        )
    return f"`{value}`"


def meaning_text(field: FieldInfo) -> str:
    """The description, escaped for a Markdown table cell, and a Literal's allowed values."""
    meaning = field.description or ""
    for character, escaped in MARKDOWN_ESCAPES.items():
        meaning = meaning.replace(character, escaped)
    if typing.get_origin(field.annotation) is typing.Literal:
        choices = ", ".join(f"`{choice}`" for choice in typing.get_args(field.annotation))
        meaning += f" One of: {choices}."
    return meaning


def table() -> str:
    rows = [
        f"| `MNIST_{name.upper()}` | {default_text(field)} | {meaning_text(field)} |"
        for name, field in Settings.model_fields.items()
    ]
    return "\n".join([BEGIN, HEADER, *rows, END])


def readme_with_table(readme: str) -> str:
    """The README with its table replaced; ValueError when the markers are missing."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md lacks the table markers {BEGIN!r} ... {END!r}")
    return readme[:start] + table() + readme[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report a stale table (exit 1)")
    arguments = parser.parse_args(argv)
    readme = README.read_text(encoding="utf-8")
    fresh = readme_with_table(readme)
    if arguments.check:
        if fresh != readme:
            print("README.md's settings table is stale: run python docs/settings_table.py")
            return 1
        return 0
    README.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
