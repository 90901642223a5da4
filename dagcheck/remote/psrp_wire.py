"""pypsrp 0.9 adapted to Exchange's answers and to dagcheck's deadlines: output objects kept as raw CLIXML for
psrpcore (the tolerant serializer), one-statement pipelines serialized without deep copies, one Receive per
HTTP timeout, and a PSRP error record read into CmdletFailed or Throttled.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from typing import Any

from pypsrp.complex_objects import Pipeline
from pypsrp.exceptions import SerializationError
from pypsrp.powershell import RunspacePool
from pypsrp.serializer import Serializer
from pypsrp.wsman import NAMESPACES as WSMAN_NAMESPACES
from pypsrp.wsman import WSMan, WSManAction

from dagcheck.clixml import from_element_text
from dagcheck.errors import CmdletFailed, Throttled
from dagcheck.remote.guard import refuse_dtd

# ErrorCategory integers (System.Management.Automation.ErrorCategory) for the names in messages.
ERROR_CATEGORIES = {
    0: "NotSpecified",
    1: "OpenError",
    2: "CloseError",
    3: "DeviceError",
    4: "DeadlockDetected",
    5: "InvalidArgument",
    6: "InvalidData",
    7: "InvalidOperation",
    8: "InvalidResult",
    9: "InvalidType",
    10: "MetadataError",
    11: "NotImplemented",
    12: "NotInstalled",
    13: "ObjectNotFound",
    14: "OperationStopped",
    15: "OperationTimeout",
    16: "SyntaxError",
    17: "ParserError",
    18: "PermissionDenied",
    19: "ResourceBusy",
    20: "ResourceExists",
    21: "ResourceUnavailable",
    22: "ReadError",
    23: "WriteError",
    24: "FromStdErr",
    25: "SecurityError",
    26: "ProtocolError",
    27: "ConnectionError",
    28: "AuthenticationError",
    29: "LimitsExceeded",
    30: "QuotaExceeded",
    31: "NotEnabled",
}
# Exchange's throttling errors: the budget/micro-delay exceptions (retry with backoff).
THROTTLING_MARKERS = ("OverBudgetException", "MicroDelay", "throttling", "ServerBusyException")


def receive_once(wsman: WSMan) -> None:
    """pypsrp resends a Receive up to 5 times after an HTTP read timeout, sleeping 2 to 62 s in between: a
    server that stopped answering in the middle of a command would be asked six times over two minutes or
    more. dagcheck's own deadline decides instead (_end_invoke, _end_process): one Receive, one HTTP
    timeout, and the server counts as hung for the rest of the run."""

    def receive(
        resource_uri: str, resource: ET.Element, option_set: Any = None, selector_set: Any = None, timeout: int | None = None
    ) -> ET.Element:
        res = wsman.invoke(
            WSManAction.RECEIVE, resource_uri, resource, option_set, selector_set, timeout, retries_on_read_timeout=0
        )
        return res.find("s:Body", namespaces=WSMAN_NAMESPACES)  # type: ignore[return-value]

    wsman.receive = receive  # type: ignore[method-assign]


class RawClixml:
    """An output object pypsrp 0.9 could not deserialize; psrpcore reads its XML instead."""

    def __init__(self, xml: str) -> None:
        self._xml = xml


class _TolerantSerializer(Serializer):
    """pypsrp 0.9 cannot read generic List`1/MultiValuedProperty contents, and then fails on a later
    <TNRef> to a type first named inside such a list (Get-DatabaseAvailabilityGroup -Status does this:
    ADObjectIds in Servers, then PrimaryActiveManager). Output objects are therefore never deserialized
    by pypsrp: a PIPELINE_OUTPUT (the only message pypsrp hands over as a bare string without metadata)
    is kept as raw XML for psrpcore, which parses it once (dagcheck.clixml). Protocol messages (state,
    error records) still go through pypsrp, one at a time: its serializer keeps per-call state, and the
    pipelines of one pool are received side by side."""

    def __init__(self) -> None:
        super().__init__()
        self._serial = threading.RLock()

    def deserialize(self, element: Any, metadata: Any = None, clear: bool = True) -> Any:
        if isinstance(element, str):
            refuse_dtd(element, "a PSRP message from the server")  # before pypsrp's ET.fromstring
        if metadata is None and clear and isinstance(element, str):
            return RawClixml(element)
        with self._serial:
            try:
                return super().deserialize(element, metadata, clear)
            except (KeyError, SerializationError, AttributeError, TypeError, ValueError):
                if not clear or not isinstance(element, str):
                    raise
                return RawClixml(element)

    def serialize(self, value: Any, metadata: Any = None, parent: Any = None, clear: bool = True) -> Any:
        with self._serial:
            return super().serialize(value, metadata, parent, clear)


_deep_statements = Pipeline._get_statements


def _one_statement(self: Pipeline) -> list[list[Any]]:
    """pypsrp 0.9's Pipeline._get_statements deep-copies every command each time the CreatePipeline
    message is serialized (twice per message): 40 % of the 4.5 ms that serializing one message costs, and
    a third of the client's collection CPU at 300 servers went to these messages. dagcheck's pipelines are
    one statement (a cmdlet, perhaps `| ForEach-Object -MemberName`) and each PowerShell object is invoked
    once, so the commands need no copy: the bytes sent are the same (tests/unit/remote/test_psrp.py). A pipeline
    of several statements keeps pypsrp's own copies."""
    commands: list[Any] = list(self.commands or ())
    if any(command.end_of_statement for command in commands[:-1]):
        return _deep_statements(self)
    commands[-1].end_of_statement = True
    return [commands]


Pipeline._get_statements = _one_statement  # type: ignore[method-assign]


def _install_tolerant_serializer(pool: RunspacePool) -> None:
    # Private attributes of pypsrp 0.9 (pinned <1 in pyproject): the pool's serializer and fragmenter.
    serializer = _TolerantSerializer()
    pool._serializer = serializer
    pool._fragmenter.serializer = serializer


def parse_output(value: Any) -> Any:
    xml = getattr(value, "_xml", None)
    return from_element_text(xml) if xml else value


def cmdlet_error(server: str, cmdlet: str, record: Any) -> CmdletFailed:
    message = str(record) or getattr(record, "message", "") or "error"
    category = ERROR_CATEGORIES.get(getattr(record, "category", 0) or 0, "NotSpecified")
    error_id = getattr(record, "fq_error", "") or ""
    if any(marker.lower() in (message + error_id).lower() for marker in THROTTLING_MARKERS):
        return Throttled(server, cmdlet, message, category, error_id)
    return CmdletFailed(server, cmdlet, message, category, error_id)
