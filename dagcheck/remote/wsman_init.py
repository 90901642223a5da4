"""One pypsrp WSMan object built at a time.

pypsrp's `WSMan.__init__` registers its XML namespaces with ElementTree (`ET.register_namespace`), which
iterates and rewrites one module-wide dict without a lock. Collection opens servers' connections from many
threads: two constructors at once can make one of them fail with "dictionary keys changed during iteration"
(a garbage collection inside the iteration lets the other thread in). That error ended a 300-server run
during collection on the loaded shared machine (issue 27, benchmarks/README.md), every check with it.
Building a WSMan object sends nothing, so serializing the constructors costs no wall time.
"""

from __future__ import annotations

import threading
from typing import Any

from pypsrp.wsman import WSMan

_BUILDING = threading.Lock()


def new_wsman(*args: Any, **kwargs: Any) -> WSMan:
    """`WSMan(*args, **kwargs)`, one at a time in this process."""
    with _BUILDING:
        return WSMan(*args, **kwargs)
