"""The settings reference (``docs/configuration/settings.md``), generated so it cannot drift:
each field of :class:`bot.settings.Settings` by its environment name, with its type and default
from the class and its meaning from the comment above it in ``.env.example``.

``python -m bot.settings_doc`` prints it, ``--write`` writes it; a test compares the committed
page with a fresh one.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / ".env.example"
PAGE = ROOT / "docs" / "configuration" / "settings.md"
_ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=")


def meanings(example: str) -> dict[str, str]:
    """Each variable of ``.env.example`` with the comment block above it (variables listed
    together share one)."""
    found: dict[str, str] = {}
    comment: list[str] = []
    last_was_variable = False
    for raw in example.splitlines():
        line = raw.strip()
        match = _ASSIGNMENT.match(line)
        if match:
            found[match.group(1)] = " ".join(comment)
            last_was_variable = True
        elif line.startswith("#"):
            if last_was_variable:
                comment = []
                last_was_variable = False
            comment.append(line.lstrip("#").strip())
        elif not line:
            comment, last_was_variable = [], False
    return found


def type_name(annotation: Any) -> str:
    """A field's type as a reader of the environment sees it."""
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in get_args(annotation) if a is not type(None)]
        return " \\| ".join(names) + " (optional)"
    if origin is list:
        return f"list of {type_name(get_args(annotation)[0])} (comma-separated or JSON)"
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: Any) -> str:
    """A field's default as one would write it in ``.env``."""
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None or value == []:
        return "(empty)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, SecretStr):
        return "(set)"
    return f"`{value}`"


def settings_reference() -> str:
    """The page, in Markdown."""
    described = meanings(EXAMPLE.read_text(encoding="utf-8"))
    lines = [
        "# Every setting",
        "",
        "Generated from `bot/settings.py` and `.env.example` by",
        "`python -m bot.settings_doc --write`; a test fails when this page and the code differ.",
        "Each is read from the environment or from `.env`.",
        "",
        "| Setting | Type | Default | Meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        env = name.upper()
        meaning = described.get(env, "").replace("|", "\\|")
        lines.append(
            f"| `{env}` | {type_name(field.annotation)} | {default_text(field)} | {meaning} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Print the page, or with ``--write`` write it to :data:`PAGE`."""
    page = settings_reference()
    if "--write" in sys.argv[1:]:
        PAGE.parent.mkdir(parents=True, exist_ok=True)
        PAGE.write_text(page, encoding="utf-8")
    else:
        sys.stdout.write(page)


if __name__ == "__main__":
    main()
