"""Which transport a run uses, chosen in one place from its settings, as pytest-testinfra picks a backend
by the connection named in its host spec (testinfra.backend.get_backend).

A run names no transport itself: a replay folder means the saved answers (ReplayTransport), anything else
the servers' WSMan endpoints through pypsrp (PsrpTransport; the embedded lab is reached the same way, on
loopback). --save wraps whichever was chosen in a SavingTransport. A new transport is one module with a
Transport subclass (dagcheck.remote.base) and one entry in TRANSPORTS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dagcheck.inventory import Server
from dagcheck.remote.base import Transcript, Transport
from dagcheck.remote.credentials import Credentials
from dagcheck.remote.psrp import PsrpTransport
from dagcheck.remote.replay import ReplayTransport, SavingTransport


@dataclass(frozen=True)
class TransportSettings:
    """What a run knows when it picks its transport: the servers (with their connection settings), the
    credentials already resolved for some of them (the lab's), the run's transcript, and --replay/--save."""

    servers: tuple[Server, ...] = ()
    transcript: Transcript | None = None
    credentials: Mapping[str, Credentials] = field(default_factory=dict)
    replay: str | None = None  # a saved folder: answer from it, contact nothing
    save: str | None = None  # also write every answer here, for a later --replay
    inventory_file: str = ""  # named in the saved folder's manifest

    @property
    def kind(self) -> str:
        """The name of the transport these settings ask for (a key of TRANSPORTS)."""
        return "replay" if self.replay else "psrp"


def _psrp(settings: TransportSettings) -> Transport:
    return PsrpTransport({s.name: s for s in settings.servers}, settings.transcript, dict(settings.credentials))


def _replay(settings: TransportSettings) -> Transport:
    return ReplayTransport(settings.replay or "", settings.transcript)


# The one map from a setting to the transport that serves it.
TRANSPORTS: dict[str, Callable[[TransportSettings], Transport]] = {"psrp": _psrp, "replay": _replay}


def transport_for(settings: TransportSettings) -> Transport:
    """The transport the settings ask for; wrapped to keep every answer when they name a --save folder."""
    try:
        make = TRANSPORTS[settings.kind]
    except KeyError:
        raise ValueError(f"unknown transport {settings.kind!r} (known: {', '.join(TRANSPORTS)})") from None
    transport = make(settings)
    if settings.save:
        transport = SavingTransport(transport, settings.save, settings.inventory_file)
    return transport
