"""The transport seam: run a cmdlet on a server's endpoint, get deserialized objects, record the call."""

from dagcheck.remote.base import Command, Endpoint, Invocation, Transcript, Transport

__all__ = ["Command", "Endpoint", "Invocation", "Transcript", "Transport"]
