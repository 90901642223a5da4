"""The registry (dagcheck/sources/registry.py) lists every source a module under dagcheck/sources/ declares, once:
adding a source is its module and one line there, and forgetting the line fails here rather than leaving a
check whose snapshot source does not exist."""

from __future__ import annotations

import importlib
import pkgutil

import dagcheck.sources
from dagcheck.sources.base import HostSource, ProbeSource, Source
from dagcheck.sources.registry import HOST_SOURCES, PROBE_SOURCES, SOURCES


def _declared() -> dict[str, object]:
    """Every Source, HostSource and ProbeSource a source module holds at module level, by module.attribute."""
    found: dict[str, object] = {}
    for info in pkgutil.iter_modules(dagcheck.sources.__path__):
        module = importlib.import_module(f"dagcheck.sources.{info.name}")
        for attribute, value in vars(module).items():
            if isinstance(value, Source | HostSource | ProbeSource):
                found[f"{info.name}.{attribute}"] = value
    return found


def test_every_declared_source_is_registered_once_under_its_own_name() -> None:
    registered = [*SOURCES.values(), *HOST_SOURCES.values(), *PROBE_SOURCES.values()]
    declared = _declared()
    assert not {where: s for where, s in declared.items() if not any(s is r for r in registered)}
    names = [s.name for s in declared.values()]
    assert len(names) == len(set(names)) == len(registered)


def test_each_kind_sits_in_its_own_table() -> None:
    assert all(isinstance(s, Source) for s in SOURCES.values())
    assert all(isinstance(s, HostSource) for s in HOST_SOURCES.values())
    assert all(isinstance(s, ProbeSource) for s in PROBE_SOURCES.values())
