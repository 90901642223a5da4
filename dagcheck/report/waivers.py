"""Waivers: an accepted deviation (check, server/object pattern, reason, owner, expiry) turns the
matching failure into "waived" (pytest's xfail: reported, not passed, not failing the run) until its
expiry date; after that the check counts again and the expired waiver is listed in the summary."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from dagcheck.errors import InventoryError
from dagcheck.inventory import parse_date


@dataclass
class Waiver:
    check: str
    server: str
    object: str
    reason: str
    owner: str
    expires: dt.date
    matched: int = field(default=0, compare=False)

    def describe(self) -> dict[str, str]:
        return {
            "check": self.check,
            "server": self.server,
            "object": self.object,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }

    def covers(self, check_id: str, server: str, obj: str) -> bool:
        return (
            check_id == self.check
            and fnmatchcase(server.lower(), self.server.lower())
            and fnmatchcase(obj.lower(), self.object.lower())
        )

    def active(self, today: dt.date) -> bool:
        return today <= self.expires


def parse(raw: tuple[dict[str, Any], ...], file: str) -> list[Waiver]:
    out = []
    for i, w in enumerate(raw):
        try:
            expires = parse_date(w["expires"])  # the loader checked it already (exit 4 before any connection)
        except ValueError as exc:
            raise InventoryError(file, f"waivers[{i}].expires", str(exc)) from None
        out.append(Waiver(w["check"], w.get("server", "*"), w.get("object", "*"), w["reason"], w["owner"], expires))
    return out


class Waivers:
    def __init__(self, waivers: list[Waiver], today: dt.date | None = None) -> None:
        self.waivers = waivers
        self.today = today or dt.date.today()
        self.expired_hits: list[Waiver] = []

    def find(self, check_id: str, server: str, obj: str) -> Waiver | None:
        """The active waiver covering this failure; an expired one that covers it is remembered."""
        for w in self.waivers:
            if w.covers(check_id, server, obj):
                w.matched += 1
                if w.active(self.today):
                    return w
                if w not in self.expired_hits:
                    self.expired_hits.append(w)
        return None

    def review(self) -> dict[str, list[dict[str, str]]]:
        return {
            "expired": [w.describe() for w in self.waivers if not w.active(self.today)],
            "unmatched": [w.describe() for w in self.waivers if w.matched == 0],
        }
