"""Exchange data sources, one module per resource: the command that reads it, its dataclass and parser.

base.py says how a source declares itself (Source, HostSource, ProbeSource), values.py holds the readers every
parser shares, registry.py lists every source by name; dagcheck/collect.py runs them, dagcheck/rules/ judge
their dataclasses. A new cmdlet: one module here and one line in registry.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProbeContext:
    """What a source that times or makes its own requests gets from the snapshot (dagcheck.sources.base.ProbeSource):
    the other sources of the same snapshot (memoized: never a second call), the HTTPS client with the
    server's TLS settings, and the transport's run for one command on one endpoint."""

    server: str
    failed: Callable[[str], Any]  # source name -> RemoteError | None
    get: Callable[[str], tuple[Any, ...]]
    https: Callable[[], Any]  # -> dagcheck.remote.https.Getter
    run: Callable[[Any, Any], list[Any]]  # (Endpoint, Command) -> objects
    live: bool = True  # False: the answers are replayed from a --save folder (no timing, no HTTPS)
