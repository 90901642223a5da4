"""Configuration drift across maintenance: a baseline of a server's settings saved before it enters
maintenance, compared with the same settings after it leaves.

Why: a CU re-runs setup, and setup rewrites IIS and virtual-directory configuration. What it quietly
resets (a vdir's URL, its authentication, Extended Protection, SSL flags, web.config customisations, a
receive connector, the certificate bound to IIS or SMTP) breaks clients hours later, long after the
post-maintenance checks passed on their own terms. Comparing each setting with what it was before the
patch catches every such reset, whether or not a check knows what the setting should be.

The baseline is built from the pre-flight snapshot (collect once: the gate has just read most of these
sources), written to reports/baseline-<server>.json before the first change, and kept until the next
entry into maintenance replaces it. The comparison reads the post-maintenance snapshot.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dagcheck.collect import SourceFailed
from dagcheck.errors import RemoteError
from dagcheck.files import read_bounded, write_private

FORMAT = 1
MAX_BYTES = 16 * 1024 * 1024  # a baseline is some 10 KB a server; a file far larger is not one dagcheck wrote

# The areas a setting belongs to, in the order the report lists them. Each names the sources it reads.
AREAS: dict[str, str] = {
    "build": "ExSetup.exe and AdminDisplayVersion",
    "urls": "virtual directories' InternalUrl and ExternalUrl",
    "authentication": "virtual directories' Internal/ExternalAuthenticationMethods",
    "extended_protection": "Extended Protection (the vdir cmdlets and IIS)",
    "ssl": "IIS sslFlags",
    "autodiscover": "the Autodiscover SCP and its site scope",
    "receive_connectors": "receive connectors' bindings, authentication and permission groups",
    "certificates": "the Exchange certificates and the services they are bound to (IIS, SMTP)",
    "components": "server component states",
    "mailbox_server": "the mailbox server's activation settings",
}
# Settings the inventory states an expectation for: Extended Protection (its matrix and overrides), the
# SCP (expectations.autodiscover), the activation policy; SSL comes with the EP matrix. A change of one
# of these is the critical DAG-DRIFT-001; any other unexpected change is the warning DAG-DRIFT-002.
# expectations.drift_critical adds areas (e.g. urls).
INVENTORY_EXPECTED = ("extended_protection", "ssl", "autodiscover", "mailbox_server")
EXPECTED_TO_CHANGE = ("build",)  # what a patch is for


@dataclass(frozen=True)
class Setting:
    area: str
    item: str  # what it belongs to: "owa (Default Web Site)", "Default Frontend MBX1", "mbx1"
    name: str  # the property: ExternalUrl, tokenChecking, Bindings
    value: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.area, self.item, self.name)


@dataclass
class Baseline:
    server: str
    taken_at: dt.datetime
    settings: list[Setting]
    unread: dict[str, str] = field(default_factory=dict)  # area -> why it could not be read
    path: Path | None = field(default=None, compare=False)  # the file it was loaded from (named in errors)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "server": self.server,
            "taken_at": self.taken_at.isoformat(),
            "settings": [[s.area, s.item, s.name, s.value] for s in self.settings],
            "unread": self.unread,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], path: Path) -> Baseline:
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            return cls(
                str(data["server"]),
                dt.datetime.fromisoformat(data["taken_at"]),
                [Setting(*map(str, row)) for row in data["settings"]],
                dict(data.get("unread") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BaselineError(f"{path}: not a configuration baseline dagcheck can read ({exc})") from None


class BaselineError(Exception):
    """The baseline file exists but cannot be read; the message names the file."""


@dataclass(frozen=True)
class Difference:
    area: str
    item: str
    name: str
    before: str | None  # None: the setting did not exist
    after: str | None
    expected: bool  # a change the maintenance was for (the build)
    critical: bool  # a setting the inventory expects

    @property
    def verdict(self) -> str:
        return "expected" if self.expected else "critical" if self.critical else "unexpected"

    def describe(self) -> str:
        return f"{self.item} {self.name}: {show(self.before)} -> {show(self.after)}"


@dataclass
class Drift:
    """The comparison of one server's baseline with its settings after maintenance."""

    server: str
    baseline_taken: dt.datetime
    differences: list[Difference]
    not_compared: dict[str, str]  # area -> why (unreadable before or after)
    compared: int  # settings compared
    critical_areas: frozenset[str] = frozenset(INVENTORY_EXPECTED)

    @property
    def critical(self) -> list[Difference]:
        return [d for d in self.differences if d.critical and not d.expected]

    @property
    def unexpected(self) -> list[Difference]:
        return [d for d in self.differences if not d.critical and not d.expected]

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "baseline_taken": self.baseline_taken.isoformat(timespec="seconds"),
            "compared": self.compared,
            "differences": [asdict(d) | {"verdict": d.verdict} for d in self.differences],
            "not_compared": self.not_compared,
        }


def show(value: str | None) -> str:
    return "(absent)" if value is None else "(empty)" if value == "" else value


def _joined(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


# ---- reading the settings out of a snapshot ------------------------------------------------------

Reader = Callable[[Callable[[str], tuple[Any, ...]], str], list[Setting]]


def _build(get: Callable[[str], tuple[Any, ...]], server: str) -> list[Setting]:
    out = [Setting("build", server, "ExSetup.exe", ".".join(map(str, f.version))) for f in get("exsetup")]
    out += [
        Setting("build", server, "AdminDisplayVersion", ".".join(map(str, e.admin_display_version)))
        for e in get("exchange_server")
    ]
    return out


def _vdirs(area: str) -> Reader:
    def read(get: Callable[[str], tuple[Any, ...]], server: str) -> list[Setting]:
        out = []
        for v in get("vdirs"):
            if area == "urls":
                out += [
                    Setting(area, v.name, "InternalUrl", v.internal_url or ""),
                    Setting(area, v.name, "ExternalUrl", v.external_url or ""),
                ]
            elif area == "authentication":
                out += [
                    Setting(area, v.name, "InternalAuthenticationMethods", _joined(sorted(v.internal_auth))),
                    Setting(area, v.name, "ExternalAuthenticationMethods", _joined(sorted(v.external_auth))),
                ]
            else:
                out.append(Setting(area, v.name, "ExtendedProtectionTokenChecking", v.token_checking or ""))
        return out

    return read


def _iis(area: str) -> Reader:
    def read(get: Callable[[str], tuple[Any, ...]], server: str) -> list[Setting]:
        if area == "ssl":
            return [Setting(area, f"IIS {loc.path}", "sslFlags", loc.ssl_flags or "") for loc in get("iis")]
        return [Setting(area, f"IIS {loc.path}", "tokenChecking", loc.token_checking) for loc in get("iis")]

    return read


def _scp(get: Callable[[str], tuple[Any, ...]], server: str) -> list[Setting]:
    return [
        s
        for c in get("client_access")
        for s in (
            Setting("autodiscover", server, "AutoDiscoverServiceInternalUri", c.internal_uri or ""),
            Setting("autodiscover", server, "AutoDiscoverSiteScope", _joined(c.site_scope)),
        )
    ]


def _connectors(get: Callable[[str], tuple[Any, ...]], server: str) -> list[Setting]:
    return [
        s
        for c in get("receive_connectors")
        for s in (
            Setting("receive_connectors", c.name, "Bindings", _joined(c.bindings)),
            Setting("receive_connectors", c.name, "RemoteIPRanges", _joined(c.remote_ip_ranges)),
            Setting("receive_connectors", c.name, "AuthMechanism", _joined(c.auth_mechanism)),
            Setting("receive_connectors", c.name, "PermissionGroups", _joined(c.permission_groups)),
            Setting("receive_connectors", c.name, "Enabled", str(c.enabled)),
        )
    ]


def _certificates(get: Callable[[str], tuple[Any, ...]], server: str) -> list[Setting]:
    certs = get("certificates")
    out = [
        Setting(
            "certificates",
            f"bound to {service}",
            "Thumbprint",
            _joined(sorted(c.thumbprint for c in certs if service in c.services)),
        )
        for service in ("IIS", "SMTP")
    ]
    out += [Setting("certificates", c.thumbprint, "Services", _joined(c.services)) for c in certs]
    return out


def _components(get: Callable[[str], tuple[Any, ...]], server: str) -> list[Setting]:
    return [Setting("components", c.component, "State", c.state) for c in get("components")]


def _mailbox_server(get: Callable[[str], tuple[Any, ...]], server: str) -> list[Setting]:
    return [
        s
        for m in get("mailbox_server")
        for s in (
            Setting("mailbox_server", server, "DatabaseCopyAutoActivationPolicy", m.activation_policy),
            Setting("mailbox_server", server, "DatabaseCopyActivationDisabledAndMoveNow", str(m.move_now)),
        )
    ]


READERS: dict[str, Reader] = {
    "build": _build,
    "urls": _vdirs("urls"),
    "authentication": _vdirs("authentication"),
    "extended_protection": lambda get, server: (
        _vdirs("extended_protection")(get, server) + _iis("extended_protection")(get, server)
    ),
    "ssl": _iis("ssl"),
    "autodiscover": _scp,
    "receive_connectors": _connectors,
    "certificates": _certificates,
    "components": _components,
    "mailbox_server": _mailbox_server,
}
assert set(READERS) == set(AREAS)


def read_settings(get: Callable[[str], tuple[Any, ...]], server: str) -> tuple[list[Setting], dict[str, str]]:
    """Every area's settings from a snapshot's get(source); an area whose source failed is named, not guessed."""
    settings: list[Setting] = []
    unread: dict[str, str] = {}
    for area, reader in READERS.items():
        try:
            settings += reader(get, server)
        except SourceFailed as exc:
            unread[area] = str(exc)
        except RemoteError as exc:
            unread[area] = str(exc)
    return settings, unread


def take(get: Callable[[str], tuple[Any, ...]], server: str, now: dt.datetime) -> Baseline:
    settings, unread = read_settings(get, server)
    return Baseline(server.lower(), now, settings, unread)


def build_line(settings: Iterable[Setting]) -> str | None:
    """The Exchange product line a server's settings record (major.minor of ExSetup.exe, else of
    AdminDisplayVersion: 15.1 is Exchange 2016, 15.2 Exchange 2019 and SE); None when the build was not read."""
    builds = {s.name: s.value for s in settings if s.area == "build"}
    version = builds.get("ExSetup.exe") or builds.get("AdminDisplayVersion")
    return ".".join(version.split(".")[:2]) if version else None


def compare(
    baseline: Baseline, after: list[Setting], unread_after: dict[str, str], critical_areas: Iterable[str] = INVENTORY_EXPECTED
) -> Drift:
    """The differences; BaselineError when the baseline cannot be this server's: a patch moves a server
    within its product line (a CU, an SU), never from one line to another, so a baseline of another line
    was taken of another server or installation and every difference would be false."""
    before_line, after_line = build_line(baseline.settings), build_line(after)
    if before_line and after_line and before_line != after_line:
        where = baseline.path or f"the baseline of {baseline.server}"
        raise BaselineError(
            f"{where}: taken of Exchange build line {before_line}, but {baseline.server} runs "
            f"{after_line} now: not a baseline of this installation (restored or copied from "
            "another server?); nothing compared. Remove it; the next entry into maintenance with "
            "--apply saves a new one"
        )
    critical = set(critical_areas)
    not_compared = {a: f"not read before entering maintenance: {r}" for a, r in baseline.unread.items()}
    not_compared |= {a: f"not read after leaving maintenance: {r}" for a, r in unread_after.items() if a not in not_compared}
    before = {s.key: s.value for s in baseline.settings if s.area not in not_compared}
    now = {s.key: s.value for s in after if s.area not in not_compared}
    order = {a: i for i, a in enumerate(AREAS)}
    differences = [
        Difference(area, item, name, before.get(key), now.get(key), area in EXPECTED_TO_CHANGE, area in critical)
        for key in sorted(before.keys() | now.keys(), key=lambda k: (order.get(k[0], 99), k[1], k[2]))
        for area, item, name in [key]
        if before.get(key) != now.get(key)
    ]
    return Drift(
        baseline.server, baseline.taken_at, differences, not_compared, len(before.keys() | now.keys()), frozenset(critical)
    )


# ---- the file ------------------------------------------------------------------------------------


def path_for(reports_dir: str | Path, server: str) -> Path:
    return Path(reports_dir) / f"baseline-{server.lower()}.json"


def save(baseline: Baseline, reports_dir: str | Path) -> Path:
    """Atomically and owner-only (dagcheck.files): an interrupted save leaves the previous baseline."""
    return write_private(path_for(reports_dir, baseline.server), json.dumps(baseline.to_json(), indent=1))


def load(reports_dir: str | Path, server: str) -> Baseline | None:
    """The server's baseline; None only when no file is there. Anything else that cannot be this server's
    baseline (a directory or other non-file in its place, unreadable, over MAX_BYTES, not a baseline, a
    baseline of another server) is a BaselineError naming the file: both drift checks fail with it rather
    than being skipped as "no baseline" or comparing the wrong server."""
    path = path_for(reports_dir, server)
    if not os.path.lexists(path):
        return None
    if not path.is_file():
        raise BaselineError(
            f"{path}: not a file (a directory or another object is in place of the baseline); "
            "remove it; the next entry into maintenance with --apply saves a baseline there"
        )
    try:
        data = json.loads(read_bounded(path, MAX_BYTES, "configuration baseline").decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BaselineError(f"{path}: cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: not a configuration baseline dagcheck can read (not an object)")
    baseline = Baseline.from_json(data, path)
    if baseline.server.lower() != server.lower():
        raise BaselineError(
            f"{path}: a baseline of {baseline.server}, not of {server} (copied from another server?); "
            "nothing compared. Remove it; the next entry into maintenance with --apply saves a new one"
        )
    baseline.path = path
    return baseline
