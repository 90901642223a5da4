"""Build psrpcore PSObjects shaped like what Exchange's remote session serializes.

The shapes follow the real Export-Clixml output in ../shared/fixtures/css-exchange (type name
hierarchy, ToString, enums as ToString plus I32, ADObjectId as a property bag, nested requester
states as plain strings, multi-valued properties as lists). Where no real sample exists the shape
comes from Microsoft Learn and is marked "shape guessed" at the builder.

Two shapes (docs/remote-session-shapes.md). The builders make the *live* shape, the one of the
fixture files. remote_shape() turns an object into what a client of Exchange's /PowerShell
endpoint without Exchange's assemblies receives: Exchange's own value types (ServerVersion,
ADObjectId, ByteQuantifiedSize, EnhancedTimeSpan, KeyValuePair, QueueIdentity) as their ToString,
enums as their names. The type names on the wire stay the real ones: the receiving deserializer
(PowerShell's, and psrpcore's) prefixes every TN entry with "Deserialized.".
"""

from __future__ import annotations

import datetime as dt
import types
import uuid
from collections.abc import Iterable
from functools import cache
from typing import Any

from psrpcore.types import PSDateTime, PSEnumBase, PSList, PSNoteProperty, PSObject, PSType

EX = "Microsoft.Exchange"
CONFIGURABLE = [f"{EX}.Data.ConfigurableObject", "System.Object"]
AD_PRESENTATION = [
    f"{EX}.Data.Directory.Management.ADPresentationObject",
    f"{EX}.Data.Directory.ADObject",
    f"{EX}.Data.Directory.ADRawEntry",
    *CONFIGURABLE,
]
MVP_STRING = (
    f"{EX}.Data.MultiValuedProperty`1"
    "[[System.String, mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089]]"
)

ENUMS: dict[str, dict[str, int]] = {
    "Microsoft.Exchange.Data.ServiceState": {"Inactive": 0, "Active": 1, "Draining": 3},
    "Microsoft.Exchange.Data.ObjectState": {"New": 0, "Unchanged": 1, "Changed": 2, "Deleted": 3},
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.DatabaseCopyAutoActivationPolicyType": {
        "Unrestricted": 0,
        "IntrasiteOnly": 1,
        "Blocked": 2,
    },
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ExtendedProtectionTokenCheckingMode": {
        "None": 0,
        "Allow": 1,
        "Require": 2,
    },
    # Mailbox 2 as before; HubTransport 32 and FrontendTransport 16384 are guessed integers.
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ServerRole": {
        "Mailbox": 2,
        "HubTransport": 32,
        "FrontendTransport": 16384,
    },
    # Basic 0 and Fba 3 are CSS-Exchange's GetOwaVirtualDirectory.xml; the other integers are guessed.
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.AuthenticationMethod": {
        "Basic": 0,
        "Digest": 1,
        "Ntlm": 2,
        "Fba": 3,
        "WindowsIntegrated": 4,
        "LiveIdFba": 5,
        "LiveIdBasic": 6,
        "WSSecurity": 7,
        "Certificate": 8,
        "NegoEx": 9,
        "OAuth": 10,
        "Adfs": 11,
        "Kerberos": 12,
        "Negotiate": 13,
    },
    "Microsoft.Exchange.Data.ServerEditionType": {"Standard": 1, "StandardEvaluation": 2, "Enterprise": 3},
    "Microsoft.Exchange.Management.SystemConfigurationTasks.CopyStatus": {
        "Unknown": 0,
        "Failed": 3,
        "Seeding": 4,
        "Suspended": 5,
        "Healthy": 6,
        "ServiceDown": 7,
        "Initializing": 8,
        "Resynchronizing": 9,
        "Mounted": 11,
        "Dismounted": 12,
        "Mounting": 13,
        "Dismounting": 14,
        "DisconnectedAndHealthy": 15,
        "FailedAndSuspended": 16,
        "DisconnectedAndResynchronizing": 17,
        "NonExchangeReplication": 18,
        "SeedingSource": 19,
        "Misconfigured": 20,
    },
    # 2019+ adds NotApplicable; its integer is 11 (as seen from 2013 tooling, EXCHANGE-NOTES §5).
    "Microsoft.Exchange.Management.SystemConfigurationTasks.ContentIndexStatusType": {
        "Unknown": 0,
        "Healthy": 1,
        "Crawling": 2,
        "Failed": 3,
        "Seeding": 4,
        "FailedAndSuspended": 5,
        "Suspended": 6,
        "Disabled": 7,
        "AutoSuspended": 8,
        "HealthyAndUpgrading": 9,
        "NotApplicable": 11,
    },
    "Microsoft.Exchange.Data.QueueViewer.QueueStatus": {
        "None": 0,
        "Active": 1,
        "Ready": 2,
        "Retry": 3,
        "Suspended": 4,
        "Connecting": 5,
    },
    # Shape guessed: the integer order of DeliveryType is not published; names are from Learn.
    "Microsoft.Exchange.Data.DeliveryType": {
        "Undefined": 0,
        "DnsConnectorDelivery": 1,
        "MapiDelivery": 2,
        "NonSmtpGatewayDelivery": 3,
        "SmartHostConnectorDelivery": 4,
        "SmtpRelayToRemoteActiveDirectorySite": 5,
        "SmtpRelayToTiRg": 6,
        "SmtpRelayWithinAdSite": 7,
        "SmtpRelayWithinAdSiteToEdge": 8,
        "Unreachable": 9,
        "ShadowRedundancy": 10,
        "Heartbeat": 11,
        "SmtpRelayToDag": 12,
        "SmtpRelayToMailboxDeliveryGroup": 13,
        "SmtpDeliveryToMailbox": 14,
        "SmtpRelayToConnectorSourceServers": 15,
        "SmtpRelayToServers": 16,
        "SmtpRelayToRemoteForest": 17,
        "DeliveryAgent": 18,
        "SmtpDeliveryToExo": 19,
    },
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.WitnessShareUsage": {
        "Primary": 0,
        "Alternate": 1,
        "InvalidConfiguration": 2,
        "None": 3,
    },
    "Microsoft.FailoverClusters.PowerShell.ClusterNodeState": {"Unknown": -1, "Up": 0, "Down": 1, "Paused": 2, "Joining": 3},
    # CLUSTER_GROUP_STATE (learn.microsoft.com/windows/win32/api/clusapi/ne-clusapi-cluster_group_state).
    "Microsoft.FailoverClusters.PowerShell.ClusterGroupState": {
        "Unknown": -1,
        "Online": 0,
        "Offline": 1,
        "Failed": 2,
        "PartialOnline": 3,
        "Pending": 4,
    },
    "System.ServiceProcess.ServiceControllerStatus": {
        "Stopped": 1,
        "StartPending": 2,
        "StopPending": 3,
        "Running": 4,
        "ContinuePending": 5,
        "PausePending": 6,
        "Paused": 7,
    },
    "System.ServiceProcess.ServiceStartMode": {"Boot": 0, "System": 1, "Automatic": 2, "Manual": 3, "Disabled": 4},
    # Managed Availability (Get-ServerHealth); integers in the enums' declaration order (guessed).
    "Microsoft.Exchange.Data.Storage.ActiveMonitoring.MonitorAlertState": {
        "Unknown": 0,
        "Healthy": 1,
        "Degraded": 2,
        "Unhealthy": 3,
        "Repairing": 4,
        "Disabled": 5,
    },
    "Microsoft.Exchange.Data.Storage.ActiveMonitoring.MonitorServerComponentState": {
        "Unknown": 0,
        "NotApplicable": 1,
        "Online": 2,
        "PartiallyOnline": 3,
        "Offline": 4,
        "Functional": 5,
        "Sidelined": 6,
    },
}


@cache
def _enum_class(type_name: str) -> type[PSEnumBase]:
    members = ENUMS[type_name]

    def fill(namespace: dict[str, Any]) -> None:
        namespace.update(members)

    cls = types.new_class(type_name.rsplit(".", 1)[-1], (PSEnumBase,), {}, fill)
    # rehydrate=False: a deserializer in the same process must see what a remote client sees.
    return PSType([type_name], rehydrate=False)(cls)


def enum(type_name: str, name: str) -> PSEnumBase:
    """An enum value serialized as <ToString>name</ToString><I32>n</I32>, like a top-level Exchange enum."""
    return _enum_class(type_name)[name]


def obj(type_names: list[str], props: dict[str, Any], to_string: str | None = None) -> PSObject:
    """A property bag with the given type hierarchy; props keep their order, as Format-List shows them."""
    value = PSObject()
    value.PSObject.type_names[:] = type_names
    value.PSObject.to_string = to_string if to_string is not None else type_names[0]
    for name, prop in props.items():
        value.PSObject.adapted_properties.append(PSNoteProperty(name, _convert(prop)))
    return value


def _convert(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return PSDateTime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo or dt.UTC,
        )
    if isinstance(value, PSList):
        return value  # already typed by its builder
    if isinstance(value, (list, tuple)):
        return typed_list(value, [MVP_STRING, "System.Object"])
    return value


def typed_list(values: Iterable[Any], type_names: list[str]) -> PSList:
    out = PSList(_convert(v) for v in values)
    out.PSObject.type_names[:] = type_names
    return out


def mvp(
    values: Iterable[Any],
    element: str = "System.String, mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089",
) -> PSList:
    return typed_list(values, [f"{EX}.Data.MultiValuedProperty`1[[{element}]]", "System.Object"])


AUTH_METHOD = (
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.AuthenticationMethod, Microsoft.Exchange.Data.Directory, "
    "Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"
)
EP_FLAG = (
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.ExtendedProtectionFlag, Microsoft.Exchange.Data.Directory, "
    "Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"
)


def ad_object_id(name: str, dn: str, guid: uuid.UUID, to_string: str | None = None) -> PSObject:
    """ADObjectId as the fixtures show it: a bag with Name, DistinguishedName, ObjectGuid, Parent, Rdn, Depth."""
    rdn, _, rest = dn.partition(",")
    parent = rest.split(",", 1)[0].split("=", 1)[-1] if rest else ""
    domain = ".".join(p.split("=", 1)[1] for p in dn.split(",") if p.upper().startswith("DC="))
    return obj(
        [f"{EX}.Data.Directory.ADObjectId", f"{EX}.Data.ObjectId", "System.Object"],
        {
            "OrgHierarchyToIgnore": None,
            "IsDeleted": False,
            "Rdn": rdn,
            "Parent": parent,
            "Depth": dn.count(",") + 1,
            "DistinguishedName": dn,
            "IsRelativeDn": False,
            "DomainId": domain,
            "ObjectGuid": guid,
            "Name": name,
        },
        to_string=to_string or name,
    )


def server_version(major: int, minor: int, build: int, revision: int) -> PSObject:
    return obj(
        [f"{EX}.Data.ServerVersion", "System.Object"],
        {"Major": major, "Minor": minor, "Build": build, "Revision": revision, "FilePatchLevelDescription": None},
        to_string=f"Version {major}.{minor} (Build {build}.{revision})",
    )


# ---- the remote-session shape ------------------------------------------------------------------

SHAPES = ("remote", "live")
# Exchange value types whose properties a non-Exchange client never sees: only their ToString.
# Established for ServerVersion ("Version 15.2 (Build 1544.4)", HealthChecker's string branch) and
# ByteQuantifiedSize ("152.1 MB (159,449,088 bytes)", Shay Levy 2011); guessed for the others, by
# analogy (their ToString is what the fixtures carry as <ToString>).
STRING_FORM_TYPES = (
    f"{EX}.Data.ServerVersion",
    f"{EX}.Data.Directory.ADObjectId",
    f"{EX}.Data.ByteQuantifiedSize",
    f"{EX}.Data.EnhancedTimeSpan",
    "Microsoft.Exchange.Data.QueueViewer.QueueIdentity",
    "System.Collections.Generic.KeyValuePair`2",
)


def remote_shape(value: Any) -> Any:
    """value as a remote session delivers it: string forms for Exchange value types, enum names as
    strings (guessed: top-level enum properties of Exchange objects arrive as <S>, as in CSS-Exchange's
    non-rebuilt Deserialized.* exports), lists element by element, other bags property by property."""
    if isinstance(value, PSEnumBase):
        return value.name
    if isinstance(value, PSList):
        return typed_list((remote_shape(v) for v in value), list(value.PSObject.type_names))
    if isinstance(value, PSObject) and type(value) is PSObject:
        first = value.PSObject.type_names[0] if value.PSObject.type_names else ""
        if first.startswith(STRING_FORM_TYPES):
            return str(value.PSObject.to_string)
        out = PSObject()
        out.PSObject.type_names[:] = list(value.PSObject.type_names)
        out.PSObject.to_string = value.PSObject.to_string  # type: ignore[assignment]  # None when it has none
        for p in value.PSObject.adapted_properties:
            out.PSObject.adapted_properties.append(PSNoteProperty(p.name, remote_shape(p.get_value(value))))
        return out
    return value


def byte_quantified_size(n: int) -> PSObject:
    """ByteQuantifiedSize, live: its ToString is all the lab models (shape guessed: no sample with its
    properties). ToString: the largest 1024-based unit with at most 4 significant digits, then the
    exact bytes with thousands separators (derived from '152.1 MB (159,449,088 bytes)', '1.5 GB
    (1,610,612,736 bytes)', '49.5 GB (53,150,121,984 bytes)')."""
    return obj([f"{EX}.Data.ByteQuantifiedSize", "System.ValueType", "System.Object"], {}, to_string=byte_size_text(n))


def byte_size_text(n: int) -> str:
    units = ("B", "KB", "MB", "GB", "TB", "PB")
    i = 0
    while i + 1 < len(units) and n >= 1024 ** (i + 1):
        i += 1
    scaled = n / 1024**i
    digits = max(0, 3 - len(str(int(scaled))) + 1)
    shown = f"{scaled:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{scaled:.0f}"
    return f"{shown} {units[i]} ({n:,} bytes)"


def enhanced_time_span(text: str) -> PSObject:
    """EnhancedTimeSpan, live (shape guessed: a bag whose ToString is TimeSpan's '[d.]hh:mm:ss')."""
    return obj([f"{EX}.Data.EnhancedTimeSpan", "System.ValueType", "System.Object"], {}, to_string=text)


def with_property(value: PSObject, name: str, new: Any) -> PSObject:
    """A copy of a bag with one property's value replaced (added when absent): the malformed_value fault."""
    out = PSObject()
    out.PSObject.type_names[:] = list(value.PSObject.type_names)
    out.PSObject.to_string = value.PSObject.to_string  # type: ignore[assignment]  # None when it has none
    found = False
    for p in value.PSObject.adapted_properties:
        found = found or p.name == name
        out.PSObject.adapted_properties.append(PSNoteProperty(p.name, new if p.name == name else p.get_value(value)))
    if not found:
        out.PSObject.adapted_properties.append(PSNoteProperty(name, new))
    return out
