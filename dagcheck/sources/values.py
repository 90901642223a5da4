"""The readers every source shares: a property of a deserialized object (dagcheck.clixml) in each form it arrives in.

Over remote PowerShell, top-level enums keep their ToString and integer, nested ones degrade to
strings, monitoring results arrive as localized ToString, and enums unknown to the calling shell
arrive as bare integers (EXCHANGE-NOTES.md §5). The parsers accept all of these forms.

Two shapes of the same object reach the sources' parsers (docs/remote-session-shapes.md): the *live* shape
(what Export-Clixml writes on an Exchange server, where Exchange's value types are rebuilt: a
ServerVersion bag with Major/Minor/Build/Revision, an ADObjectId bag, enums as ToString + I32) and
the *remote-session* shape a client of /PowerShell without Exchange's assemblies receives (those
value types as their ToString: "Version 15.2 (Build 1544.4)", "contoso.com/Configuration/Sites/A",
"1.5 GB (1,610,612,736 bytes)", "7.00:00:00"; enums as their names). A value in neither form raises
ParseError naming the cmdlet, the property and the value: never a silent zero or empty string.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from dagcheck.errors import ParseError


def prop(obj: Any, name: str, default: Any = None) -> Any:
    """A property of a deserialized object (adapted or extended), or default when absent."""
    meta = getattr(obj, "PSObject", None)
    if meta is None:
        return default
    for p in (*meta.adapted_properties, *meta.extended_properties):
        if p.name == name:
            return p.get_value(obj)
    return default


def text(value: Any) -> str | None:
    return None if value is None else str(value)


def enum_name(value: Any, by_int: dict[int, str] | None = None) -> str | None:
    """An enum's name whether it arrived as an enum object, its ToString, or a bare integer."""
    if value is None:
        return None
    meta = getattr(value, "PSObject", None)
    is_enum = meta is not None and any(t.endswith("System.Enum") for t in getattr(meta, "type_names", []))
    if isinstance(value, int) and not isinstance(value, bool) and not is_enum and by_int is not None:
        return by_int.get(int(value), str(int(value)))
    to_string = getattr(meta, "to_string", None) if meta is not None else None
    return str(to_string) if to_string else str(value)


def strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def short_name(value: Any) -> str:
    """Server names: Exchange returns upper-case NetBIOS names or FQDNs; compare short, lower-case."""
    return str(value or "").split(".", 1)[0].lower()


# ---- strict readers: one form or the other, else ParseError ----------------------------------------

_ENUM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_SERVER_VERSION = re.compile(r"^Version (\d+)\.(\d+) \(Build (\d+)\.(\d+)\)$")
_BYTES = re.compile(r"^(?:[\d.,]+ (?:B|KB|MB|GB|TB|PB) )?\((\d{1,3}(?:,\d{3})*|\d+) bytes\)$")
_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


def required(obj: Any, cmdlet: str, name: str, label: str | None = None) -> str:
    """A property that must be there and not empty (a name, an identity): its string form.
    label names it in the error when it is nested (e.g. 'LocalStates[].Requester')."""
    value = prop(obj, name)
    if value is None or str(value).strip() == "":
        raise ParseError(cmdlet, label or name, value, "a non-empty value")
    return str(value)


def integer(obj: Any, cmdlet: str, name: str, default: int | None = None, label: str | None = None) -> int:
    """An integer property (I32/I64/U64, or its decimal string); absent means default, if there is one."""
    value = prop(obj, name)
    if value is None and default is not None:
        return default
    if isinstance(value, int) and not isinstance(value, bool) and not _is_enum(value):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").replace(",", "").isdigit():
        return int(value.strip().replace(",", ""))
    raise ParseError(cmdlet, label or name, value, "an integer")


def boolean(obj: Any, cmdlet: str, name: str, default: bool | None = None) -> bool:
    """A Boolean property, or its string form True/False; absent means default, if there is one."""
    value = prop(obj, name)
    if value is None and default is not None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ParseError(cmdlet, name, value, "True or False")


def enum_value(
    obj: Any, cmdlet: str, name: str, by_int: dict[int, str] | None = None, default: str | None = None, label: str | None = None
) -> str:
    """An enum property: an enum object (ToString + I32), its name as a string, or a bare integer."""
    raw = prop(obj, name)
    if raw is None and default is not None:
        return default
    value = enum_name(raw, by_int)
    if value is None or not (_ENUM_NAME.match(value) or (value.lstrip("-").isdigit() and by_int is not None)):
        examples = f" such as {', '.join(list(by_int.values())[:3])}" if by_int else ""
        raise ParseError(cmdlet, label or name, raw, f"an enum name{examples}")
    return value


def server_version(obj: Any, cmdlet: str, name: str = "AdminDisplayVersion") -> tuple[int, int, int, int]:
    """ServerVersion: live, a bag with Major/Minor/Build/Revision; remote, its ToString
    'Version 15.2 (Build 1544.4)' (the form HealthChecker parses from AdminDisplayVersion.ToString())."""
    value = prop(obj, name)
    if hasattr(value, "PSObject") and prop(value, "Major") is not None:
        parts = [prop(value, k) for k in ("Major", "Minor", "Build", "Revision")]
        if all(isinstance(x, int) and not isinstance(x, bool) for x in parts):
            return tuple(int(x) for x in parts)  # type: ignore[return-value]
    match = _SERVER_VERSION.match(str(value).strip()) if isinstance(value, str) else None
    if match:
        return tuple(int(g) for g in match.groups())  # type: ignore[return-value]
    raise ParseError(cmdlet, name, value, "a ServerVersion (Major, Minor, Build, Revision) or 'Version 15.2 (Build 1544.4)'")


def ad_name(value: Any, cmdlet: str, name: str) -> str:
    """An ADObjectId's Name: live, a bag with Name; remote, its ToString, which is the name for
    servers ('EX01'), a canonical name for others ('contoso.com/Configuration/Sites/Site-A'), or a DN."""
    if hasattr(value, "PSObject") and prop(value, "Name") not in (None, ""):
        return str(prop(value, "Name"))
    text_value = str(value).strip() if isinstance(value, str) else ""
    if text_value.upper().startswith(("CN=", "OU=")):
        rdn = re.split(r"(?<!\\),", text_value, maxsplit=1)[0]
        return rdn.split("=", 1)[1]
    last = text_value.rstrip("/").rsplit("/", 1)[-1]
    if last:
        return last
    raise ParseError(cmdlet, name, value, "an ADObjectId (a bag with Name, or its string form)")


def ad_names(obj: Any, cmdlet: str, name: str) -> tuple[str, ...]:
    """A multi-valued ADObjectId property: a list of bags or of strings; absent or empty is ()."""
    value = prop(obj, name)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    return tuple(short_name(ad_name(v, cmdlet, name)) for v in value)


def byte_size(obj: Any, cmdlet: str, name: str) -> int | None:
    """ByteQuantifiedSize (e.g. DatabaseSize): '152.1 MB (159,449,088 bytes)' in both shapes (live, the
    bag's ToString); None when the cmdlet left it empty (without -Status)."""
    value = prop(obj, name)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    match = _BYTES.match(str(value).strip())
    if match:
        return int(match.group(1).replace(",", ""))
    raise ParseError(cmdlet, name, value, "a ByteQuantifiedSize such as '1.5 GB (1,610,612,736 bytes)'")


def timespan_seconds(value: Any, cmdlet: str, name: str) -> float:
    """EnhancedTimeSpan / TimeSpan: a duration object, or its ToString '7.00:00:00' ([-][d.]hh:mm:ss[.fffffff])."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    match = _TIMESPAN.match(str(value).strip()) if isinstance(value, str) else None
    if match:
        sign, days, hours, minutes, seconds, fraction = match.groups()
        total: float = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
        total += int((fraction or "0").ljust(7, "0")) / 10**7
        return -total if sign else float(total)
    raise ParseError(cmdlet, name, value, "a time span such as '7.00:00:00'")


def _is_enum(value: Any) -> bool:
    meta = getattr(value, "PSObject", None)
    return meta is not None and any(t.endswith("System.Enum") for t in getattr(meta, "type_names", []))


def enum_names(obj: Any, cmdlet: str, name: str, label: str | None = None) -> tuple[str, ...]:
    """A MultiValuedProperty of an enum (e.g. InternalAuthenticationMethods): a list of enum objects
    (live: <ToString>Basic</ToString><I32>0</I32>, CSS-Exchange's GetOwaVirtualDirectory.xml) or of
    their names (remote, guessed); absent or empty is ()."""
    value = prop(obj, name)
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    out = []
    for v in items:
        shown = enum_name(v)
        if shown is None or not _ENUM_NAME.match(shown):
            raise ParseError(cmdlet, label or name, value, "a list of enum names such as Basic, Fba, Ntlm")
        out.append(shown)
    return tuple(out)


def flag_names(obj: Any, cmdlet: str, name: str, label: str | None = None) -> tuple[str, ...]:
    """A [Flags] enum such as AuthMechanism or PermissionGroups: its ToString 'Tls, Integrated, BasicAuth'
    (an enum object's ToString, or that text itself); sorted, so that two reads compare equal.
    Guessed: that a remote session delivers the ToString text (no capture of Get-ReceiveConnector here)."""
    raw = prop(obj, name)
    if raw is None:
        return ()
    shown = enum_name(raw)
    parts = [p.strip() for p in str(shown).split(",") if p.strip()]
    if not parts or not all(_ENUM_NAME.match(p) for p in parts):
        raise ParseError(cmdlet, label or name, raw, "flag names separated by commas, such as 'Tls, Integrated'")
    return tuple(sorted(parts))


def monitoring_result(obj: Any, names: dict[str, str], cmdlet: str = "Test-ReplicationHealth") -> str:
    """A monitoring cmdlet's Result: its .Value when the object survived, else its localized ToString,
    mapped to the enum name (Test-ExchangeServerHealth.ps1's `$r.Result.Value ?? $r.Result`, §5).
    A ToString in a language the map does not know is a ParseError, not a verdict."""
    raw = prop(obj, "Result")
    value = prop(raw, "Value") if hasattr(raw, "PSObject") and prop(raw, "Value") is not None else raw
    key = str(value if value is not None else "").strip().lower()
    if key in names:
        return names[key]
    known = {v.lower(): v for v in names.values()}
    if key in known:
        return known[key]
    raise ParseError(cmdlet, "Result", raw, f"one of {', '.join(sorted(set(names.values())))} (English or German ToString)")


# ---- command-line output (WinRS) ------------------------------------------------------------------


def registry_values(stdout: str) -> dict[str, tuple[str, str]]:
    """`reg.exe query` output -> {value name: (type, data)}; lines are '    Name    REG_TYPE    data'."""
    values = {}
    for line in stdout.splitlines():
        if line.startswith("    ") and "    REG_" in line:
            name, _, rest = line.strip().partition("    ")
            kind, _, data = rest.strip().partition("    ")
            values[name.strip()] = (kind.strip(), data.strip())
    return values
