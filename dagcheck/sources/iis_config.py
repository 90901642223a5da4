"""IIS's own view of Extended Protection: applicationHost.config, read as HealthChecker reads it.

The Get-*VirtualDirectory cmdlets cover eight directories of the front end and, with
-ShowMailboxVirtualDirectories, seven of the back end; they say nothing of Exchange Back
End/mapi/emsmdb, /mapi/nspi, /RpcWithCert, /PushNotifications or /Rpc, and nothing of SSL flags
or IP restrictions. IIS's applicationHost.config (%windir%\\System32\\inetsrv\\config) has all of
it, per <location path="SITE/APP">, which is why CSS-Exchange HealthChecker reads the file itself.

The text comes from the far end of a connection, so it is parsed with defusedxml (no DTD, no
entity expansion, no external entities) and a size limit. What is read follows IIS's configuration
inheritance: an attribute a location does not set comes from the nearest parent path that sets it
(site root, then the server-wide <system.webServer>), and the ipSecurity list is the parent's list
with the child's <clear/>, <remove> and <add> applied. (HealthChecker reads only the location itself,
falling back to the site root for sslFlags; for the files Exchange setup writes, the two agree.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as DET  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]

from dagcheck.errors import RemoteError
from dagcheck.inventory import Expectations
from dagcheck.remote.base import CmdResult
from dagcheck.sources.base import HostSource
from dagcheck.sources.values import short_name

# The file HealthChecker loads ("$env:WINDIR\System32\inetSrv\config\applicationHost.config"), read
# with cmd.exe's `type` over WinRS: a real command that any Windows server answers, with the file as is.
APPHOST_PATH = r"%windir%\System32\inetsrv\config\applicationHost.config"
COMMAND_LINE = f'type "{APPHOST_PATH}"'
MAX_BYTES = 32 * 1024 * 1024  # real files are ~175 KB; anything this large is not an IIS config

FRONT_END = "Default Web Site"
BACK_END = "Exchange Back End"
# Every IIS location of both web sites whose Extended Protection, SSL and IP settings are read: the paths of
# CSS-Exchange's Get-ExtendedProtectionConfiguration (Shared/), spelled as applicationHost.config spells them,
# including those no Get-*VirtualDirectory cmdlet covers (mapi/emsmdb, mapi/nspi, RpcWithCert, PushNotifications).
# What each should be set to is a rule: dagcheck/rules/extended_protection.py's IIS_MATRIX, keyed by these.
# On both sites (ActiveSync with its /Proxy application), then on one only.
_BOTH_SITES = ("API", "Autodiscover", "ecp", "EWS", "OAB", "PowerShell", "owa", "Rpc")
_ACTIVESYNC = ("Microsoft-Server-ActiveSync", "Microsoft-Server-ActiveSync/Proxy")
LOCATIONS: tuple[tuple[str, str], ...] = (
    *((site, vdir) for vdir in (*_BOTH_SITES, *_ACTIVESYNC) for site in (FRONT_END, BACK_END)),
    (FRONT_END, "mapi"),
    (BACK_END, "PushNotifications"),
    (BACK_END, "RpcWithCert"),
    (BACK_END, "mapi/emsmdb"),
    (BACK_END, "mapi/nspi"),
)

TOKEN_CHECKING = {"none": "None", "allow": "Allow", "require": "Require"}
_WINAUTH = "system.webServer/security/authentication/windowsAuthentication"
_EP = f"{_WINAUTH}/extendedProtection"
_ACCESS = "system.webServer/security/access"
_IPSEC = "system.webServer/security/ipSecurity"


class IisConfigError(RemoteError):
    """The server answered, but not with an applicationHost.config dagcheck can read (it names why)."""


@dataclass(frozen=True)
class IpRule:
    """One <ipSecurity><add>: an address (with mask) or a domain name, allowed or denied."""

    ip_address: str
    subnet_mask: str
    domain_name: str
    allowed: bool  # IIS's default for the attribute is false (a deny entry)

    @property
    def identity(self) -> tuple[str, str, str]:
        """What <remove> matches on: the collection's key attributes."""
        return self.ip_address, self.subnet_mask, self.domain_name

    def __str__(self) -> str:
        what = self.domain_name or (f"{self.ip_address}/{self.subnet_mask}" if self.subnet_mask else self.ip_address)
        return f"{'allow' if self.allowed else 'deny'} {what}"


@dataclass(frozen=True)
class IisLocation:
    """The effective Extended Protection, SSL and IP-restriction settings of one site/application path."""

    server: str
    site: str  # "Default Web Site" or "Exchange Back End"
    vdir: str  # the application path inside the site, as the matrix spells it: "owa", "mapi/emsmdb"
    present: bool  # a <location path="site/vdir"> exists (absent: every value is inherited)
    token_checking: str  # None, Allow, Require; "invalid: X" when IIS would refuse the value
    ssl_flags: str | None  # the sslFlags text as configured ("Ssl, Ssl128"); None when nothing sets it
    allow_unlisted: bool  # ipSecurity allowUnlisted (IIS default true: no restriction)
    ip_rules: tuple[IpRule, ...] = ()

    @property
    def path(self) -> str:
        return f"{self.site}/{self.vdir}"

    @property
    def key(self) -> str:
        return f"{self.server}:{self.path}"

    @property
    def ip_allow_list(self) -> tuple[IpRule, ...]:
        """The addresses let through when the list is closed (allowUnlisted false): HealthChecker's
        'MitigationEnabled'. An empty tuple when the directory is not restricted at all."""
        return () if self.allow_unlisted else tuple(r for r in self.ip_rules if r.allowed)


@dataclass(frozen=True)
class _Section:
    """The attributes one <location> (or the root) sets, before inheritance."""

    token_checking: str | None
    ssl_flags: str | None
    allow_unlisted: str | None
    ip_ops: tuple[tuple[str, IpRule | None], ...]  # ("clear", None), ("add", rule), ("remove", rule)
    inherited: bool = True  # <location inheritInChildApplications="false">: for the path itself only


class ApplicationHostConfig:
    """A parsed applicationHost.config: the settings per location path, and the sites' applications."""

    def __init__(self, root: ET.Element) -> None:
        if root.tag != "configuration":
            raise ValueError(f"the document element is <{root.tag}>, not <configuration>")
        self._sections: dict[str, list[_Section]] = {}
        self.applications: set[str] = set()  # "site/app" (lower case) from <system.applicationHost><sites>
        self._add("", root)  # the server-wide <system.webServer> outside any <location>
        for location in root.findall("location"):
            inherit = location.get("inheritInChildApplications", "true").strip().lower() != "false"
            self._add(location.get("path", "").strip("/"), location, inherit)
        for site in root.findall("system.applicationHost/sites/site"):
            for app in site.findall("application"):
                self.applications.add(f"{site.get('name', '')}{app.get('path', '').rstrip('/')}".lower())

    def _add(self, path: str, node: ET.Element, inherited: bool = True) -> None:
        ep = node.find(_EP)
        access = node.find(_ACCESS)
        ipsec = node.find(_IPSEC)
        ops: list[tuple[str, IpRule | None]] = []
        for child in list(ipsec) if ipsec is not None else []:
            if child.tag == "clear":
                ops.append(("clear", None))
            elif child.tag in ("add", "remove"):
                ops.append((child.tag, _rule(child)))
        self._sections.setdefault(path.lower(), []).append(
            _Section(
                ep.get("tokenChecking") if ep is not None else None,
                access.get("sslFlags") if access is not None else None,
                ipsec.get("allowUnlisted") if ipsec is not None else None,
                tuple(ops),
                inherited,
            )
        )

    def has_location(self, path: str) -> bool:
        return path.strip("/").lower() in self._sections

    def location(self, server: str, site: str, vdir: str) -> IisLocation:
        """The effective settings of site/vdir: IIS's inheritance from the root down to the path."""
        parts = f"{site}/{vdir}".split("/")
        chain = [""] + ["/".join(parts[:i]).lower() for i in range(1, len(parts) + 1)]
        token = ssl = unlisted = None
        rules: list[IpRule] = []
        for path in chain:
            for section in self._sections.get(path, ()):
                if not section.inherited and path != chain[-1]:
                    continue  # IIS stops it at child applications (the lab's paths are all applications)
                token = section.token_checking if section.token_checking is not None else token
                ssl = section.ssl_flags if section.ssl_flags is not None else ssl
                unlisted = section.allow_unlisted if section.allow_unlisted is not None else unlisted
                for op, rule in section.ip_ops:
                    if op == "clear":
                        rules.clear()
                    elif op == "remove" and rule is not None:
                        rules = [r for r in rules if r.identity != rule.identity]
                    elif rule is not None:
                        rules.append(rule)
        return IisLocation(
            server,
            site,
            vdir,
            self.has_location(f"{site}/{vdir}"),
            _token(token),
            ssl,
            (unlisted or "true").strip().lower() != "false",
            tuple(rules),
        )


def _rule(node: ET.Element) -> IpRule:
    return IpRule(
        node.get("ipAddress", ""),
        node.get("subnetMask", ""),
        node.get("domainName", ""),
        node.get("allowed", "false").strip().lower() == "true",
    )


def _token(value: str | None) -> str:
    if value is None or not value.strip():
        return "None"  # IIS's default for tokenChecking
    return TOKEN_CHECKING.get(value.strip().lower(), f"invalid: {value.strip()}")


def parse_application_host(text: str, server: str = "", command: str = COMMAND_LINE) -> ApplicationHostConfig:
    """Parse applicationHost.config text safely; IisConfigError names the server and what is wrong."""
    if len(text) > MAX_BYTES:
        raise IisConfigError(
            server,
            command,
            f"applicationHost.config is {len(text)} characters, more than {MAX_BYTES} (not an IIS configuration file)",
        )
    body = text.lstrip("\ufeff \t\r\n")
    if not body:
        raise IisConfigError(server, command, "applicationHost.config is empty")
    try:
        root = DET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        return ApplicationHostConfig(root)
    except DefusedXmlException as exc:
        raise IisConfigError(
            server, command, f"applicationHost.config refused: {type(exc).__name__} (DTDs and entities are never expanded)"
        ) from None
    except ET.ParseError as exc:
        raise IisConfigError(server, command, f"applicationHost.config is not well-formed XML ({exc})") from None
    except ValueError as exc:
        raise IisConfigError(server, command, f"applicationHost.config is not an IIS configuration: {exc}") from None


# ---- what --save keeps of the file ---------------------------------------------------------------------

# Exactly what ApplicationHostConfig reads: per section, its attributes (and for ipSecurity its entries').
_KEPT_SECTIONS = ((_EP, ("tokenChecking",)), (_ACCESS, ("sslFlags",)), (_IPSEC, ("allowUnlisted",)))
_KEPT_IP_ATTRIBUTES = ("ipAddress", "subnetMask", "domainName", "allowed")


def reduce_application_host(text: str, server: str = "") -> str:
    """applicationHost.config cut down to what ApplicationHostConfig reads (Extended Protection's tokenChecking,
    sslFlags, ipSecurity, per location, and the sites' application paths), for `--save`: the whole file also
    holds app-pool identities and encrypted password blobs, which a saved folder must not carry. Parsing the
    result gives the same locations as parsing the original. IisConfigError when the text cannot be read."""
    source = _root(text, server)
    out = ET.Element("configuration")
    _copy_sections(source, out)
    sites = source.findall("system.applicationHost/sites/site")
    if sites:
        kept_sites = ET.SubElement(ET.SubElement(out, "system.applicationHost"), "sites")
        for site in sites:
            kept = ET.SubElement(kept_sites, "site", _attributes(site, ("name",)))
            for app in site.findall("application"):
                ET.SubElement(kept, "application", _attributes(app, ("path",)))
    for location in source.findall("location"):
        kept = ET.SubElement(out, "location", _attributes(location, ("path", "inheritInChildApplications")))
        _copy_sections(location, kept)
    return ET.tostring(out, encoding="unicode")


def _attributes(node: ET.Element, names: tuple[str, ...]) -> dict[str, str]:
    return {name: node.attrib[name] for name in names if name in node.attrib}


def _copy_sections(source: ET.Element, target: ET.Element) -> None:
    for path, names in _KEPT_SECTIONS:
        node = source.find(path)
        if node is None:
            continue
        parent = target
        for tag in path.split("/"):
            found = parent.find(tag)
            parent = found if found is not None else ET.SubElement(parent, tag)
        parent.attrib.update(_attributes(node, names))
        if path == _IPSEC:
            for child in node:
                if child.tag in ("clear", "add", "remove"):
                    ET.SubElement(parent, child.tag, _attributes(child, _KEPT_IP_ATTRIBUTES))


def _root(text: str, server: str) -> ET.Element:
    """The document element of an applicationHost.config, parsed as parse_application_host does."""
    command = COMMAND_LINE
    if len(text) > MAX_BYTES:
        raise IisConfigError(server, command, f"applicationHost.config is {len(text)} characters, more than {MAX_BYTES}")
    try:
        root = DET.fromstring(text.lstrip("\ufeff \t\r\n"), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ET.ParseError) as exc:
        raise IisConfigError(server, command, f"applicationHost.config cannot be read ({type(exc).__name__})") from None
    if root.tag != "configuration":
        raise IisConfigError(server, command, f"the document element is <{root.tag}>, not <configuration>")
    return root


# ---- the source: `type applicationHost.config` over WinRS -------------------------------------------


def read_iis(result: CmdResult, server: str) -> list[IisLocation]:
    """The `type applicationHost.config` answer -> every location of LOCATIONS, front end first.
    A failed command or an unreadable file is an IisConfigError for this server (its checks fail with
    the reason; the run goes on)."""
    if result.rc != 0:
        reason = (result.stderr or result.stdout).strip() or f"exit code {result.rc}"
        raise IisConfigError(server, COMMAND_LINE, f"could not read applicationHost.config: {reason}")
    config = parse_application_host(result.stdout, server)
    name = short_name(server)
    ordered = sorted(LOCATIONS, key=lambda k: (k[0] != FRONT_END, k[1].lower()))
    return [config.location(name, site, vdir) for site, vdir in ordered]


def _lines(server: str, expectations: Expectations) -> list[str]:
    return [COMMAND_LINE]


def _parse(results: list[CmdResult], server: str, expectations: Expectations) -> list[IisLocation]:
    return read_iis(results[0], server)


# Extended Protection, SSL flags and IP restrictions as IIS has them, for every vdir of both sites.
SOURCE = HostSource("iis", _lines, _parse)
