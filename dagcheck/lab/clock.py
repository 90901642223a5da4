"""The lab's clock: time that tests control, so waits and switchovers are deterministic."""

from __future__ import annotations

import datetime as dt
import threading

EPOCH = dt.datetime(2026, 11, 2, 22, 0, 0, tzinfo=dt.UTC)


class LabClock:
    """Virtual UTC time; it moves only when someone advances it (a cmdlet's duration, a test, a wait)."""

    def __init__(self, start: dt.datetime = EPOCH) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)
            return self._now
