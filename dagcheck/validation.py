"""JSON Schema validation whose errors an administrator can act on: the file, the path inside it, the problem.

Two schemas judge an inventory: the product's (inventory/dagcheck.schema.json, dagcheck.inventory) and
the lab's for its own section (inventory/lab.schema.json, dagcheck.lab.settings). Both report through
here, so that an error reads the same whichever part of the file it is in: `servers[2].fqdn`,
`lab.faults[0].kind`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema

from dagcheck.errors import InventoryError


def json_path(path: Iterable[Any], prefix: str = "") -> str:
    """`servers[2].fqdn` for the parts ("servers", 2, "fqdn"); `prefix` heads it (a section's own name)."""
    out = prefix
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(error: jsonschema.ValidationError) -> str:
    """The problem in an administrator's words (jsonschema's own message where it is already clear)."""
    instance: Any = error.instance
    expected: Any = error.validator_value
    if error.validator == "additionalProperties":
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, Mapping) else {}
        extra = sorted(set(instance) - set(allowed), key=str)
        return f"unknown key {', '.join(map(repr, extra))} (allowed: {', '.join(sorted(allowed))})"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "pattern":
        return f"{instance!r} is not in the expected form"
    if error.validator == "enum":
        return f"{instance!r} is not one of {', '.join(map(str, expected))}"
    if error.validator == "minimum":
        return f"{instance!r} is below the minimum {expected}"
    return error.message


def text_keys(data: Any, file: str) -> None:
    """JSON Schema speaks of text keys only; YAML also makes numbers, booleans and dates of them (`1: x`,
    `no: x`), which the validator cannot even sort. Refused with the path, before validation."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    where = json_path(path) or "(top level)"
                    raise InventoryError(
                        file,
                        where,
                        f"key {key!r} is not text (YAML read it as {type(key).__name__}); quote it if it is meant as a name",
                    )
                stack.append((value, (*path, key)))
        elif isinstance(node, list):
            stack.extend((value, (*path, i)) for i, value in enumerate(node))


def check(validator: jsonschema.protocols.Validator, data: Any, file: str, prefix: str = "", hint: str = "") -> None:
    """Raise InventoryError for the most relevant error of `data` (shallowest paths first), if any. `prefix`
    names where `data` sits in the file; `hint` is added to the problem (e.g. which schema file judged it)."""
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors) or errors[0]
    raise InventoryError(file, json_path(error.absolute_path, prefix) or "(top level)", describe(error) + hint)
