"""Exchange's runspace budget: a user who opened too many runspaces in the throttling policy's time window
(PowerShellMaxRunspaces per PowerShellMaxRunspacesTimePeriod, Set-ThrottlingPolicy) is refused the next one.

The refusal is not a WSMan fault: the Create succeeds (the shell exists), then the RunspacePool goes to the
Broken state (MS-PSRP 2.2.2.9 RUNSPACEPOOL_STATE, RunspaceState 5) carrying an error record whose message
names the wait; the Windows client shows it as "Processing data from remote server ... failed with the
following error message: ... Fail to create runspace because you have exceeded your budget to create
runspace. Please wait for 2 seconds." (as reported by Exchange Online users, e.g. microsoft365dsc's
connection helper parses "you have exceeded your budget to create runspace. Please wait for "). The on-premises
wording below is the issue's ("Fail to create a runspace because ..."); the exception type, category and
error id are guessed (docs/remote-session-shapes.md).

Lab fault {kind: runspace_budget_exceeded, server, seconds}: from the first runspace that server is asked
for, it refuses every new /PowerShell runspace for `seconds` of real time (the client backs off in real time),
each refusal naming the seconds left, rounded up as Exchange says whole seconds.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from psrpcore import ServerRunspacePool
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, ErrorRecord, NETException, RunspacePoolState

from dagcheck.lab.settings import Fault

KIND = "runspace_budget_exceeded"
MESSAGE = "Fail to create a runspace because you have exceeded your budget to create runspace. Please wait for {seconds} seconds."
EXCEPTION_TYPE = "System.Management.Automation.Remoting.PSRemotingDataStructureException"  # guessed
ERROR_ID = "System.Management.Automation.Remoting.PSRemotingDataStructureException"  # guessed

_started: dict[int, tuple[Fault, float]] = {}  # id(fault) -> (the fault itself, when its window opened)
_lock = threading.Lock()


def seconds_left(faults: list[Fault]) -> int | None:
    """Whole seconds the server still refuses runspaces for (the window opens at the first request), or None."""
    now = time.monotonic()
    left: list[float] = []
    with _lock:
        for f in faults:
            entry = _started.get(id(f))
            if entry is None or entry[0] is not f:
                entry = _started[id(f)] = (f, now)
            remaining = entry[1] + float(f.get("seconds", 60)) - now
            if remaining > 0:
                left.append(remaining)
    return math.ceil(round(max(left), 3)) if left else None  # 600.0000001 s left is "600 seconds"


class RefusingPool(ServerRunspacePool):
    """A runspace pool that answers InitRunspacePool with Broken and the budget error, never Opened."""

    def __init__(self, seconds: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refusal = refusal_record(seconds)

    def _process_InitRunspacePool(self, event: Any) -> None:  # noqa: N802 - psrpcore's dispatch name
        self._change_state(RunspacePoolState.Broken, self.refusal)


def refusal_record(seconds: int) -> ErrorRecord:
    exception = NETException(Message=MESSAGE.format(seconds=seconds))
    exception.PSObject.type_names[:] = [EXCEPTION_TYPE, "System.Exception", "System.Object"]
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=ErrorCategoryInfo(Category=ErrorCategory.ResourceUnavailable, Reason=EXCEPTION_TYPE.rsplit(".", 1)[-1]),
        FullyQualifiedErrorId=ERROR_ID,
    )
