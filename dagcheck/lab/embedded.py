"""The embedded lab: the one place where a dagcheck run starts the lab for an inventory that has one.

The product reaches the lab only as endpoints and credentials: this module starts the lab's WSMan
server for the inventory's organisation and hands back, per server, the connection settings and
the (generated, throwaway) credentials to use. Nothing else in the product imports the lab.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dagcheck.inventory import ConnectionSettings, Inventory, Server
from dagcheck.lab.build import build_organization
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import lab_settings
from dagcheck.lab.state import Organization
from dagcheck.remote.credentials import Credentials


def lab_connection(
    base: ConnectionSettings, exchange_uri: str, windows_uri: str, ca_bundle: str | None = None, auth: str = "basic"
) -> ConnectionSettings:
    """Settings for one lab server. The lab uses Basic (or NTLM) auth: over HTTPS verified against its own
    certificate, over HTTP with message encryption off (loopback only)."""
    https = exchange_uri.startswith("https://")
    # The health pages (healthcheck.htm) are served by the same simulated server's listener.
    health_uri = exchange_uri.rsplit("/", 1)[0]
    return dataclasses.replace(
        base,
        exchange_uri=exchange_uri,
        windows_uri=windows_uri,
        health_uri=health_uri,
        auth=auth,
        encryption="auto" if https else "never",
        verify_tls=True,
        ca_bundle=ca_bundle,
        operation_timeout=20,
        read_timeout=30,
    )


@dataclass
class EmbeddedLab:
    org: Organization
    wire: LabServer

    def endpoints(self, servers: list[Server]) -> tuple[list[Server], dict[str, Credentials]]:
        """The inventory's servers pointed at the lab, and the credentials for each."""
        creds = Credentials(self.wire.credentials.username, self.wire.credentials.password)
        pointed = [
            dataclasses.replace(
                s, connection=lab_connection(s.connection, self.wire.exchange_uri(s.name), self.wire.windows_uri(s.name))
            )
            for s in servers
        ]
        return pointed, {s.name: creds for s in servers}

    def stop(self) -> None:
        self.wire.stop()


def start_embedded(inventory: Inventory) -> EmbeddedLab:
    org = build_organization(inventory)
    return EmbeddedLab(org, LabServer(org, latency=lab_settings(inventory).latency).start())
