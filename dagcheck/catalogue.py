"""The check catalogue: each check's id, title, severity, rationale and remediation next to it.

A check is a pytest test function decorated with @check. The plugin parametrizes it with one
Target per object the check's source returns (a copy, a component, a queue ...), so that test
ids name what is checked: test_database_copy_is_healthy[DB01\\mbx2].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

PHASES = ("health", "preflight", "maintenance", "postflight")
SEVERITIES = ("critical", "warning")


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    severity: str
    rationale: str
    remediation: str  # the exact command(s); {server}, {key} and other Target fields are filled in
    phases: tuple[str, ...]
    source: str
    select: Callable[[Any], bool] | None = None  # which of the source's objects the check applies to
    per_server: bool = False  # judge all selected objects of a server at once (item is a tuple)
    function: str = ""


CATALOGUE: dict[str, CheckSpec] = {}


def check(
    id: str,
    title: str,
    *,
    severity: str,
    rationale: str,
    remediation: str,
    phases: tuple[str, ...],
    source: str,
    select: Callable[[Any], bool] | None = None,
    per_server: bool = False,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    if severity not in SEVERITIES:
        raise ValueError(f"{id}: severity must be one of {SEVERITIES}")
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise ValueError(f"{id}: unknown phase(s) {sorted(unknown)}")

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        if id in CATALOGUE and CATALOGUE[id].function != fn.__name__:
            raise ValueError(f"check id {id} is used twice ({CATALOGUE[id].function} and {fn.__name__})")
        spec = CheckSpec(id, title, severity, rationale, remediation, tuple(phases), source, select, per_server, fn.__name__)
        CATALOGUE[id] = spec
        fn._dagcheck_check = spec  # type: ignore[attr-defined]
        for phase in phases:
            fn = getattr(pytest.mark, phase)(fn)
        return fn

    return register


class CheckFailure(AssertionError):
    """A check's verdict: what was expected and what was found, in an administrator's words."""

    def __init__(self, message: str, expected: str, actual: str, remediation: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.actual = actual
        self.remediation = remediation


def require(condition: bool, message: str, *, expected: str, actual: str, remediation: str | None = None) -> None:
    """Fail the check with expected vs actual unless condition holds."""
    if not condition:
        raise CheckFailure(f"{message} (expected: {expected}; actual: {actual})", expected, actual, remediation)
