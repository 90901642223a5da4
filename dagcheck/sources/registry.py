"""Every source a health run collects, by name: adding a source is one module in dagcheck/sources/ and one line here.

Three kinds (dagcheck/sources/base.py): a cmdlet on a server's endpoint (Source), Windows command lines over
WinRS (HostSource), and a source that makes its own requests or times its call (ProbeSource). The order is
the order collection starts them in when their costs tie (dagcheck/collect.py).
"""

from __future__ import annotations

from dagcheck.sources import (
    certificates,
    client_access_services,
    clock,
    cluster_nodes,
    components,
    dags,
    database_copies,
    dotnet,
    exchange_servers,
    exsetup,
    health,
    iis_config,
    iis_state,
    mailbox_databases,
    mailbox_servers,
    mapi_connectivity,
    outlook_anywhere,
    pending_reboot,
    protocol_health,
    queues,
    receive_connectors,
    replication_health,
    service_health,
    services,
    tls_settings,
    virtual_directories,
    volumes,
    windows_build,
)
from dagcheck.sources.base import HostSource, ProbeSource, Source

# Cmdlets, one call (or one per cmdlet of a kind) per server and phase; DAG-wide ones once per DAG and phase.
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        components.SOURCE,
        database_copies.SOURCE,
        queues.SOURCE,
        replication_health.SOURCE,
        service_health.SOURCE,
        exchange_servers.SOURCE,
        mailbox_servers.SOURCE,
        dags.SOURCE,
        cluster_nodes.SOURCE,
        mailbox_databases.SOURCE,
        mapi_connectivity.SOURCE,
        client_access_services.SOURCE,
        virtual_directories.SOURCE,
        receive_connectors.SOURCE,
        certificates.CERTIFICATES_SOURCE,
        certificates.AUTH_CONFIG_SOURCE,
        exsetup.SOURCE,
        health.SOURCE,
        services.SOURCE,
        outlook_anywhere.SOURCE,
    )
}

# Windows command lines over WinRS.
HOST_SOURCES: dict[str, HostSource] = {
    s.name: s
    for s in (
        pending_reboot.SOURCE,
        dotnet.SOURCE,
        windows_build.SOURCE,
        volumes.SOURCE,
        services.SC_QUERY_SOURCE,
        tls_settings.SOURCE,
        certificates.SSL_BINDINGS_SOURCE,
        iis_config.SOURCE,
        iis_state.SOURCE,
    )
}

# Sources that make their own requests (HTTPS health pages) or time their call (the clock).
PROBE_SOURCES: dict[str, ProbeSource] = {
    s.name: s
    for s in (
        protocol_health.SOURCE,
        clock.SOURCE,
    )
}
