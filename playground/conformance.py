"""Every call checked against the Bot API 10.1 method list, as the real Bot API would refuse it.

The list (``botapi/botapi_methods.json``, provenance and licence in ``botapi/NOTICE.md``) gives
each method's parameters with their types and whether they are required, the types reachable
from them, the documented length limits and a few enumerations. A call is refused with a 400
and a description in Telegram's style when it names an unknown method (404) or parameter, lacks
a required parameter, passes a value of the wrong type (top-level values arrive form-encoded,
so ``"123"`` is an Integer there; inside JSON objects the types must match exactly), breaks a
documented length limit, or uses a value outside an enumeration (chat actions, update kinds,
entity types).

One deliberate difference: the real Bot API ignores parameters it does not know; the emulator
refuses them, so a misspelt parameter fails a test instead of being silently dropped.
Text limits counted "after entities parsing" are checked by the emulator's own message code
(``api._formatted``), which parses the HTML first.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from playground.parser import BotAPIError, utf16_len

SPEC = Path(__file__).with_name("botapi") / "botapi_methods.json"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_INTEGER = re.compile(r"^-?\d+$")


@functools.cache
def spec() -> dict[str, Any]:
    """The method list (loaded once)."""
    loaded: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _methods_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in spec()["methods"]}


def _describe(types: list[str]) -> str:
    return " or ".join(types)


def _is_upload(value: Any) -> bool:
    return isinstance(value, dict) and bool(value.get("_upload"))


def _scalar_fits(value: Any, kind: str, top: bool) -> bool | None:
    """Whether a scalar ``value`` is a ``kind`` (None: ``kind`` is not a scalar type). At the
    top level values arrive form-encoded, so a string may stand for a number or a boolean."""
    text = isinstance(value, str) and top
    if kind == "Integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            text and bool(_INTEGER.match(value))
        )
    if kind == "Float":
        return (isinstance(value, int | float) and not isinstance(value, bool)) or (
            text and bool(_NUMBER.match(value))
        )
    if kind == "Boolean":
        return isinstance(value, bool) or (text and value.lower() in ("true", "false"))
    if kind == "String":
        if top:
            return isinstance(value, str | int | float) and not isinstance(value, bool)
        return isinstance(value, str)
    if kind == "InputFile":
        return _is_upload(value) or isinstance(value, str)
    return None


def _problem(value: Any, kind: str, top: bool = False) -> str | None:
    """Why ``value`` is not a ``kind`` (None when it is)."""
    if kind.startswith("Array of "):
        if not isinstance(value, list):
            return f"must be {kind}"
        inner = kind.removeprefix("Array of ")
        return next((p for p in (_problem(item, inner) for item in value) if p), None)
    fits = _scalar_fits(value, kind, top)
    if fits is not None:
        return None if fits else f"must be {kind}"
    return _object_problem(value, kind)


def _closest_problem(value: Any, kinds: list[str], top: bool = False) -> str | None:
    """None when ``value`` is one of ``kinds``; else the problem with the kind it resembles
    most (the object type that knows most of its fields)."""
    problems = [(kind, _problem(value, kind, top)) for kind in kinds]
    if any(problem is None for _, problem in problems):
        return None

    def resemblance(kind: str) -> int:
        definition = spec()["types"].get(kind) or {}
        known = {field["name"] for field in definition.get("fields", [])}
        return len(known & set(value)) if isinstance(value, dict) else 0

    kind, problem = max(problems, key=lambda item: resemblance(item[0]))
    return problem


def _object_problem(value: Any, kind: str) -> str | None:
    """Why ``value`` is not a ``kind`` object (None when it is)."""
    definition = spec()["types"].get(kind)
    if definition is None:
        return None  # a type the list does not describe: nothing to check
    if not isinstance(value, dict):
        return f"{kind} must be an object"
    subtypes = definition.get("subtypes") or []
    if subtypes:
        return _closest_problem(value, subtypes)
    for constant, expected in (definition.get("const") or {}).items():
        if value.get(constant) != expected:
            return f"{kind}.{constant} must be {expected!r}"
    fields = {field["name"]: field for field in definition["fields"]}
    for name in value:
        if name not in fields:
            return f"{kind} has no field {name!r}"
    for name, field in fields.items():
        if name not in value:
            if field["required"]:
                return f"{kind}.{name} is required"
            continue
        item = value[name]
        problem = _closest_problem(item, field["types"])
        if problem is not None:
            return (
                problem
                if problem.startswith(tuple(spec()["types"]))
                else f"{kind}.{name} {problem}"
            )
        problem = _limit_problem(f"{kind}.{name}", item) or _enum_problem(f"{kind}.{name}", item)
        if problem:
            return problem
    return None


def _limit_problem(key: str, value: Any) -> str | None:
    limit = spec()["limits"].get(key)
    if limit is None or limit.get("after_parsing") or not isinstance(value, str | int):
        return None
    text = str(value)
    size = len(text.encode("utf-8")) if limit["unit"] == "bytes" else utf16_len(text)
    if not limit["min"] <= size <= limit["max"]:
        return f"{key} must be {limit['min']}-{limit['max']} {limit['unit']} long"
    return None


def _enum_problem(key: str, value: Any) -> str | None:
    allowed = spec()["enums"].get(key)
    if allowed is None:
        return None
    values = value if isinstance(value, list) else [value]
    for item in values:
        if item not in allowed:
            return f"{key} may not be {item!r}"
    return None


def _decoded(value: str, kinds: list[str]) -> Any:
    """A form value that should hold a JSON object or array, decoded (as the Bot API does)."""
    if any(k in ("String", "Integer", "Float", "Boolean", "InputFile") for k in kinds):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def check_call(method: str, params: dict[str, Any]) -> None:
    """Refuse a call that does not conform, as the Bot API would.

    Raises:
        BotAPIError: 404 for an unknown method, 400 with a description for anything else.
    """
    name = _methods_by_lower_name().get(method.lower())
    if name is None:
        raise BotAPIError(404, "Not Found: method not found")
    fields = {field["name"]: field for field in spec()["methods"][name]["fields"]}
    for given in params:
        if given not in fields:
            raise BotAPIError(400, f'Bad Request: unknown parameter "{given}" of {name}')
    for field_name, field in fields.items():
        value = params.get(field_name)
        if value is None:
            if field["required"]:
                raise BotAPIError(400, f'Bad Request: parameter "{field_name}" is required')
            continue
        if isinstance(value, str):
            value = _decoded(value, field["types"])
        problem = _closest_problem(value, field["types"], top=True)
        if problem is not None:
            raise BotAPIError(
                400,
                f'Bad Request: parameter "{field_name}" must be {_describe(field["types"])}: '
                f"{problem}",
            )
        key = f"{name}.{field_name}"
        problem = _limit_problem(key, value) or _enum_problem(key, value)
        if problem is None and field_name == "allowed_updates":
            problem = _enum_problem("allowed_updates", value)
        if problem:
            raise BotAPIError(400, f"Bad Request: {problem}")
