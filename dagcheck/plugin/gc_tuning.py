"""The cyclic garbage collector during a check run (issue 27: client CPU at fleet scale).

A fleet run holds everything it collected until its reports are written: hundreds of thousands of
deserialized objects, a test item and three reports per check. With Python's default thresholds
(700, 10, 10) the collector keeps walking that whole heap again as it grows, and again while the checks
run, although none of it becomes garbage before the end. Measured with `benchmarks/fleet.py` (its
`gc=` figure is the CPU the collector took in the client; see benchmarks/README.md).

So, for a run of the checks only:
- a larger first threshold while collecting, so that short-lived garbage (the transport's messages)
  is still collected young but the heap of answers is walked far less often;
- once the items are built (the answers are in), one collection and `gc.freeze()`: what exists then lives
  to the end of the run, and later collections no longer walk it.

Nothing a check judges depends on when the collector runs. The settings are restored when pytest
unconfigures, so that a process that runs pytest more than once (the project's tests) starts each run
with the interpreter's own.
"""

from __future__ import annotations

import gc

import pytest

from dagcheck.plugin.scope import runs_checks

# Young collections every 50,000 net allocations instead of 700; the older generations keep their ratios.
THRESHOLD0 = 50_000
_SAVED = pytest.StashKey[tuple[int, int, int]]()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if not runs_checks(config):
        return
    saved = gc.get_threshold()
    config.stash[_SAVED] = saved
    gc.set_threshold(max(THRESHOLD0, saved[0]), saved[1], saved[2])


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    if _SAVED not in session.config.stash:
        return
    gc.collect()
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_SAVED, None)
    if saved is None:
        return
    gc.unfreeze()
    gc.set_threshold(*saved)
