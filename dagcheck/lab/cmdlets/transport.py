"""Transport queues: Get-Queue and Redirect-Message."""

from __future__ import annotations

from typing import Any

from dagcheck.lab import psobjects as ps
from dagcheck.lab.cmdlets.base import (
    Call,
    cmdlet,
    lookup_server,
)
from dagcheck.lab.errors import LabCmdletError
from dagcheck.lab.objects import LabServer


def _queue_obj(s: LabServer, q: Any) -> Any:
    identity = q.identity(s.name.upper())
    return ps.obj(
        [
            "Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",
            "Microsoft.Exchange.Data.QueueViewer.PagedDataObject",
            "System.Object",
        ],
        {
            "DeliveryType": ps.enum("Microsoft.Exchange.Data.DeliveryType", q.delivery_type),
            "NextHopDomain": q.next_hop,
            "TlsDomain": None,
            "NextHopConnector": "00000000-0000-0000-0000-000000000000",
            "Status": ps.enum("Microsoft.Exchange.Data.QueueViewer.QueueStatus", q.status),
            "MessageCount": q.message_count,
            "LastError": q.last_error,
            "RetryCount": 3 if q.status == "Retry" else 0,
            "LastRetryTime": None,
            "NextRetryTime": None,
            "DeferredMessageCount": 0,
            "LockedMessageCount": 0,
            "MessageCountsPerPriority": ps.typed_list(
                [0, q.message_count, 0, 0], ["System.Int32[]", "System.Array", "System.Object"]
            ),
            "IncomingRate": 0.0,
            "OutgoingRate": 0.0,
            "Velocity": 0.0,
            "NextHopCategory": "Internal",
            "RiskLevel": "Normal",
            "OutboundIPPool": 0,
            # QueueIdentity as a bag (shape guessed from QueueIdentity's public members).
            "Identity": ps.obj(
                ["Microsoft.Exchange.Data.QueueViewer.QueueIdentity", "Microsoft.Exchange.Data.ObjectId", "System.Object"],
                {
                    "RowId": q.row_id,
                    "Server": s.name.upper(),
                    "NextHopDomain": q.next_hop,
                    "Type": q.queue_type,
                    "IsLocal": True,
                    "IsEmpty": False,
                },
                to_string=identity,
            ),
            "QueueIdentity": identity,
        },
        to_string=identity,
    )


@cmdlet("Get-Queue", "Identity", "Server", "Filter", "Include", "Exclude", "ResultSize")
def get_queue(call: Call) -> list[Any]:
    org = call.org
    s = lookup_server(call, call.get("Server")) if call.get("Server") else call.server
    if s.services.get("MSExchangeTransport") != "Running" or (
        s.transport_available_at is not None and org.now() < s.transport_available_at
    ):
        raise LabCmdletError(
            f'Failed to connect to the Microsoft Exchange Transport service on computer "{s.fqdn}". '
            "Verify that a valid computer name was used and the Microsoft Exchange Transport service is started.",
            "NotSpecified",
            f"[Server={s.name.upper()}] LocalizedException,{call.cmdlet}",
            "Microsoft.Exchange.Data.QueueViewer.QueueViewerException",
            target=s.fqdn,
        )
    queues = [q for q in s.queues if q.queue_type != "Poison" or q.message_count > 0]
    if call.get("Identity"):
        queues = [q for q in queues if q.identity(s.name).lower() == str(call.get("Identity")).lower()]
    if call.get("Exclude"):
        excluded = str(call.get("Exclude")).lower()
        queues = [q for q in queues if q.delivery_type.lower() != excluded]
    if call.get("Include"):
        included = str(call.get("Include")).lower()
        queues = [q for q in queues if q.delivery_type.lower() == included]
    return [_queue_obj(s, q) for q in queues]


@cmdlet("Redirect-Message", "Server", "Target", changes_state=True)
def redirect_message(call: Call) -> list[Any]:
    source = lookup_server(call, call.require("Server"))
    target = lookup_server(call, call.require("Target"))
    if target.component_state("HubTransport") != "Active":
        raise LabCmdletError(
            f"Target server {target.fqdn} is not accepting messages (HubTransport is {target.component_state('HubTransport')}).",
            "InvalidOperation",
            f"[Server={source.name.upper()}] LocalizedException,{call.cmdlet}",
            "Microsoft.Exchange.Data.QueueViewer.QueueViewerException",
        )
    # From now on the source hands its queued mail to the target as lab time passes (Organization.tick);
    # stuck queues stay stuck, and shadow copies elsewhere go once the source is drained.
    source.redirect_target = target.name
    return []
