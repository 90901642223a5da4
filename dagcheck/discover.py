"""`dagcheck discover`: write the inventory from what Exchange itself knows, instead of by hand.

One Exchange server is asked, over the normal transport, for the organisation's topology (four read
cmdlets, each once: dagcheck/sources/exchange_servers.py, dags.py, mailbox_servers.py,
client_access_services.py). The answer becomes an inventory in which every value says where it came
from, and the values that are *expectations* (what later runs hold the organisation to: activation
policy, build rule, Autodiscover SCP per site) say that they were taken from the state as it is now and
must be confirmed by the administrator: a discovered expectation that is wrong today would make a
broken configuration pass.

Connection settings come from a seed file (any inventory, or just `connection:` and the one server), so
that credentials stay variable names and the `connection.endpoints` map (FQDN -> where it is reached)
carries over: in the lab that is how the servers found by name reach their loopback ports.

Run again over an existing inventory, discover never overwrites the administrator's expectations: it
prints what changed in the topology (servers added or removed, DAG membership, sites, witnesses) and
what differs from the expectations, and rewrites only the topology with --update (keeping a .bak).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dagcheck.errors import DagcheckError, InventoryError, RemoteError
from dagcheck.inventory import ConnectionSettings, Server, parse_inventory, server_connection, validate_part
from dagcheck.remote.base import Endpoint, Transport
from dagcheck.sources import client_access_services, dags, exchange_servers, mailbox_servers
from dagcheck.sources.client_access_services import ScpEntry
from dagcheck.sources.dags import DagConfig
from dagcheck.sources.exchange_servers import ExchangeServerEntry
from dagcheck.sources.mailbox_servers import MailboxServerEntry
from dagcheck.yamlfile import read_yaml

# The cmdlets discovery runs (the doctor's RBAC layer needs them too).
SOURCES = (exchange_servers, dags, mailbox_servers, client_access_services)
CONFIRM = "EXPECTATION taken from the state now: confirm it"


class DiscoveryError(DagcheckError):
    """Discovery cannot produce an inventory; the message says why and what to do."""


@dataclass(frozen=True)
class Topology:
    """What the organisation answered, parsed."""

    asked: str  # the server that answered (its FQDN)
    servers: tuple[ExchangeServerEntry, ...]
    dags: tuple[DagConfig, ...]
    mailbox: tuple[MailboxServerEntry, ...]
    scps: tuple[ScpEntry, ...]


@dataclass(frozen=True)
class Seed:
    """The connection side of the seed file: defaults, the endpoints map, and per-server settings."""

    file: str | None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def connection(self) -> dict[str, Any]:
        return dict(self.raw.get("connection") or {})

    def own(self, fqdn: str, name: str) -> dict[str, Any] | None:
        """A server's own connection block from the seed, found by FQDN or name."""
        for s in self.raw.get("servers") or ():
            if isinstance(s, dict) and (
                str(s.get("fqdn", "")).lower() == fqdn.lower() or str(s.get("name", "")).lower() == name.lower()
            ):
                return s.get("connection")
        return None

    def own_differing(self, fqdn: str, name: str) -> dict[str, Any]:
        """The keys of a server's own block that the top-level connection and its endpoints entry do not already give
        (a lab-written seed repeats them per server: the discovered inventory need not)."""
        shared = {
            **{k: v for k, v in self.connection.items() if k != "endpoints"},
            **{str(k).lower(): v for k, v in (self.connection.get("endpoints") or {}).items()}.get(fqdn.lower(), {}),
        }
        return {k: v for k, v in (self.own(fqdn, name) or {}).items() if shared.get(k) != v}

    def server(self, name_or_fqdn: str) -> Server:
        """The server to ask: from the seed's servers, else from the endpoints map, else the name as given."""
        wanted = name_or_fqdn.lower()
        fqdn = wanted
        for s in self.raw.get("servers") or ():
            if isinstance(s, dict) and wanted in (str(s.get("name", "")).lower(), str(s.get("fqdn", "")).lower()):
                fqdn = str(s.get("fqdn") or wanted).lower()
        if "." not in fqdn:
            known = [k for k in (self.connection.get("endpoints") or {}) if k.lower().split(".", 1)[0] == fqdn]
            fqdn = known[0].lower() if len(known) == 1 else fqdn
        defaults = server_connection({}, fqdn, self.connection, ConnectionSettings())
        settings = server_connection(self.raw, fqdn, self.own(fqdn, wanted.split(".", 1)[0]), defaults)
        return Server(name=fqdn.split(".", 1)[0], fqdn=fqdn, site="", dag=None, connection=settings)


def read_seed(path: str | None) -> Seed:
    """The seed file's connection settings, validated against the schema's connection definition (the file need
    not be a whole inventory: `connection:` and one server are enough)."""
    if path is None:
        return Seed(None)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise InventoryError(path, "(top level)", "expected a mapping with connection: and servers:")
    if data.get("connection") is not None:
        validate_part(data["connection"], "connection", path, "connection")
    for i, s in enumerate(data.get("servers") or ()):
        if not isinstance(s, dict) or not s.get("name") and not s.get("fqdn"):
            raise InventoryError(path, f"servers[{i}]", "a server needs a name or an fqdn")
        if s.get("connection") is not None:
            validate_part(s["connection"], "connection", path, f"servers[{i}].connection")
    return Seed(path, data)


def ask(transport: Transport, server: Server) -> Topology:
    """Run the four read cmdlets once each on one server; a failure names the cmdlet and suggests the doctor."""
    answers: dict[str, list[Any]] = {}
    for source in SOURCES:
        try:
            answers[source.CMDLET] = [source.parse(o) for o in transport.run(server.name, Endpoint.EXCHANGE, source.COMMAND)]
        except RemoteError as exc:
            raise DiscoveryError(
                f"{server.fqdn}: {source.COMMAND.render()} failed: {exc.reason}. "
                f"`dagcheck doctor --inventory <seed> --server {server.name}` diagnoses the "
                "connection layer by layer"
            ) from None
    return Topology(
        server.fqdn,
        tuple(answers[exchange_servers.CMDLET]),
        tuple(answers[dags.CMDLET]),
        tuple(answers[mailbox_servers.CMDLET]),
        tuple(answers[client_access_services.CMDLET]),
    )


# ---- from the topology to an inventory --------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    dags: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()


@dataclass
class Draft:
    """The inventory's data and the comments that go beside its values (keyed by a path such as servers.mbx1)."""

    data: dict[str, Any]
    notes: dict[str, str]
    edge: list[ExchangeServerEntry]


def _dag_of(topology: Topology) -> dict[str, str]:
    """Server -> DAG, from the DAGs' Servers (and Get-MailboxServer's DatabaseAvailabilityGroup as a second source)."""
    out = {m.name: m.dag for m in topology.mailbox if m.dag}
    for d in topology.dags:
        for member in d.members:
            out[member] = d.name
    return out


def _selected(topology: Topology, selection: Selection) -> tuple[list[ExchangeServerEntry], list[DagConfig]]:
    dag_of = _dag_of(topology)
    wanted_dags = {d.lower() for d in selection.dags}
    wanted_sites = {s.lower() for s in selection.sites}
    chosen_dags = [
        d
        for d in topology.dags
        if (not wanted_dags or d.name.lower() in wanted_dags)
        and (not wanted_sites or any(_site(topology, m).lower() in wanted_sites for m in d.members))
    ]
    unknown = [d for d in selection.dags if d.lower() not in {x.name.lower() for x in topology.dags}]
    if unknown:
        raise DiscoveryError(
            f"--dag {', '.join(unknown)}: no such DAG (Exchange has: {', '.join(d.name for d in topology.dags) or 'none'})"
        )
    members = {m for d in chosen_dags for m in d.members}
    servers = []
    for s in sorted(topology.servers, key=lambda x: x.name):
        in_dag = dag_of.get(s.name)
        if s.name in members:
            servers.append(s)  # a DAG member of a chosen DAG, whatever its site (a DAG is kept whole)
        elif in_dag is None and not wanted_dags and (not wanted_sites or s.site.lower() in wanted_sites):
            servers.append(s)  # outside any DAG: listed as such
    return servers, chosen_dags


def _site(topology: Topology, name: str) -> str:
    return next((s.site for s in topology.servers if s.name == name), "")


def _most_common(values: list[str]) -> tuple[str, list[str]]:
    counts = Counter(values)
    top = counts.most_common(1)[0][0]
    return top, sorted(set(values) - {top})


def draft(topology: Topology, seed: Seed, selection: Selection = Selection()) -> Draft:
    """The inventory for the selected part of the topology (validated by the caller with parse_inventory)."""
    servers, chosen = _selected(topology, selection)
    edge = [s for s in servers if s.is_edge]
    servers = [s for s in servers if not s.is_edge]
    if not chosen:
        raise DiscoveryError(
            "no DAG in the selection: dagcheck checks database availability groups (Exchange "
            f"lists DAGs: {', '.join(d.name for d in topology.dags) or 'none'})"
        )
    dag_of = {m: d.name for d in chosen for m in d.members}
    notes: dict[str, str] = {}
    policy = {m.name: m.activation_policy for m in topology.mailbox}
    out_servers = []
    for s in servers:
        entry: dict[str, Any] = {"name": s.name, "fqdn": s.fqdn, "site": s.site}
        if s.name in dag_of:
            entry["dag"] = dag_of[s.name]
        own = seed.own_differing(s.fqdn, s.name)
        if own:
            entry["connection"] = own
        out_servers.append(entry)
        role = "in no DAG (a standalone Mailbox server)" if s.name not in dag_of else f"DAG {dag_of[s.name]}"
        notes[f"servers.{s.name}"] = (
            f"{role}; build {s.build} (AdminDisplayVersion), ServerRole {s.roles}, activation policy {policy.get(s.name, '?')}"
        )
    sites = sorted(
        {s.site for s in servers if s.site}
        | {x for scp in topology.scps for x in scp.site_scope if scp.name in {s.name for s in servers}}
    )
    out_dags = []
    for d in chosen:
        entry = {"name": d.name, "members": sorted(d.members)}
        if d.witness_server:
            witness: dict[str, Any] = {"server": d.witness_server}
            for key, value in (
                ("directory", d.witness_directory),
                ("alternate_server", d.alternate_witness_server),
                ("alternate_directory", d.alternate_witness_directory),
            ):
                if value:
                    witness[key] = value
            entry["witness"] = witness
        out_dags.append(entry)
    data: dict[str, Any] = {"sites": [{"name": s} for s in sites]}
    if seed.connection:
        data["connection"] = seed.connection
    data.update(
        {"servers": out_servers, "dags": out_dags, "expectations": _expectations(servers, topology, sites, notes, policy)}
    )
    return Draft(data, notes, edge)


def _expectations(
    servers: list[ExchangeServerEntry], topology: Topology, sites: list[str], notes: dict[str, str], policy: dict[str, str]
) -> dict[str, Any]:
    names = {s.name for s in servers}
    in_use = [policy[n] for n in sorted(names) if n in policy]
    expectations: dict[str, Any] = {}
    if in_use:
        top, others = _most_common(in_use)
        expectations["activation_policy"] = top
        differ = [f"{n} {policy[n]}" for n in sorted(names) if policy.get(n) in others]
        notes["expectations.activation_policy"] = f"{CONFIRM} (Get-MailboxServer DatabaseCopyAutoActivationPolicy" + (
            f"; differs now: {', '.join(differ)})" if differ else ", the same on every server)"
        )
    expectations["build"] = "same-across-dag"
    builds = sorted({s.build for s in servers})
    notes["expectations.build"] = (
        f"{CONFIRM}: builds now {', '.join(builds)} (AdminDisplayVersion; an SU shows only "
        "in ExSetup.exe); or pin one build such as 15.2.2562.49"
    )
    autodiscover: dict[str, Any] = {}
    for site in sites:
        scps = [c for c in topology.scps if c.name in names and c.uri and _site(topology, c.name) == site]
        if not scps:
            continue
        uri, other_uris = _most_common([c.uri or "" for c in scps])
        scope, _ = _most_common([",".join(c.site_scope) for c in scps if c.uri == uri])
        autodiscover[site] = {"uri": uri, "site_scope": [x for x in scope.split(",") if x]}
        if other_uris:
            notes[f"expectations.autodiscover.{site}"] = f"servers of {site} differ now: {', '.join(other_uris)}"
    if autodiscover:
        expectations["autodiscover"] = autodiscover
        notes["expectations.autodiscover"] = (
            f"{CONFIRM}: the SCP each site's servers publish now "
            "(Get-ClientAccessService AutoDiscoverServiceInternalUri, "
            "AutoDiscoverSiteScope)"
        )
    return expectations


# ---- writing, with comments --------------------------------------------------------------------------


def _flow(value: Any) -> str:
    """One value on one line (a scalar without YAML's document-end marker)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    return text[: -len("...")].strip() if text.endswith("\n...") else text


def render(draft_: Draft, topology: Topology, seed_file: str | None, now: dt.datetime) -> str:
    """The inventory as YAML with a comment beside each value saying where it came from."""
    d, notes = draft_.data, draft_.notes
    lines = [
        f"# Written by `dagcheck discover` from {topology.asked} at {now.isoformat(timespec='seconds')}"
        + (f", connection settings from {seed_file}." if seed_file else "."),
        "# Facts come from Exchange (each says which cmdlet). Values marked EXPECTATION were taken from the",
        "# organisation as it is now: later runs hold it to them, so confirm each one (a wrong setting found",
        "# today would otherwise pass). Re-run discover to see what changed; it never overwrites this file",
        "# without --update, and then only sites, servers and dags.",
        "sites:  # Get-ExchangeServer (Site) and Get-ClientAccessService (AutoDiscoverSiteScope)",
    ]
    lines += [f"  - {_flow(s)}" for s in d["sites"]]
    if "connection" in d:
        lines.append(f"connection:  # from {seed_file} (credentials are variable names, never values)")
        lines += ["  " + line for line in yaml.safe_dump(d["connection"], sort_keys=False).splitlines()]
    lines.append(
        "servers:  # Get-ExchangeServer (Name, Fqdn, Site, AdminDisplayVersion), Get-MailboxServer (DatabaseAvailabilityGroup)"
    )
    for s in d["servers"]:
        lines.append(f"  - {_flow(s)}  # {notes.get('servers.' + s['name'], '')}")
    if draft_.edge:
        lines.append("  # Edge Transport servers (Get-ExchangeServer IsEdgeServer): listed here, not checked (no DAG,")
        lines.append("  # no remote Exchange session from the organisation):")
        lines += [f"  #   {e.name} ({e.fqdn}), build {e.build}" for e in draft_.edge]
    lines.append("dags:  # Get-DatabaseAvailabilityGroup -Status (Servers, WitnessServer, WitnessDirectory, AlternateWitness*)")
    for dag in d["dags"]:
        lines.append(f"  - name: {_flow(dag['name'])}")
        lines.append(f"    members: {_flow(dag['members'])}")
        if "witness" in dag:
            lines.append(f"    witness: {_flow(dag['witness'])}")
    lines.append("expectations:")
    for key, value in d["expectations"].items():
        note = notes.get(f"expectations.{key}", "")
        if isinstance(value, dict):
            lines.append(f"  {key}:  # {note}" if note else f"  {key}:")
            for site, v in value.items():
                extra = notes.get(f"expectations.{key}.{site}")
                lines.append(f"    {_flow(site)}: {_flow(v)}" + (f"  # {extra}" if extra else ""))
        else:
            lines.append(f"  {key}: {_flow(value)}" + (f"  # {note}" if note else ""))
    lines.append("  # Not discovered (dagcheck's defaults apply until set): copy_queue_max 10, replay_queue_max 100,")
    lines.append("  # transport_queue_max 0, content_index_allowed, host volumes and free space, extended_protection.")
    return "\n".join(lines) + "\n"


# ---- re-running over an existing inventory ----------------------------------------------------------


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between an existing inventory and a fresh discovery, in an administrator's words."""
    out: list[str] = []
    old_s = {s["name"].lower(): s for s in old.get("servers") or ()}
    new_s = {s["name"].lower(): s for s in new.get("servers") or ()}
    out += [
        f"server added: {new_s[n]['name']} ({new_s[n]['fqdn']}, site {new_s[n]['site']}"
        f"{', DAG ' + new_s[n]['dag'] if new_s[n].get('dag') else ', in no DAG'})"
        for n in sorted(set(new_s) - set(old_s))
    ]
    out += [f"server removed: {old_s[n]['name']} (Exchange no longer lists it)" for n in sorted(set(old_s) - set(new_s))]
    for n in sorted(set(old_s) & set(new_s)):
        for key in ("fqdn", "site", "dag"):
            before, after = old_s[n].get(key), new_s[n].get(key)
            if str(before or "").lower() != str(after or "").lower():
                out.append(f"server {old_s[n]['name']}: {key} {before or '(none)'} -> {after or '(none)'}")
    old_d = {d["name"].lower(): d for d in old.get("dags") or ()}
    new_d = {d["name"].lower(): d for d in new.get("dags") or ()}
    out += [f"DAG added: {new_d[n]['name']} (members {', '.join(new_d[n]['members'])})" for n in sorted(set(new_d) - set(old_d))]
    out += [f"DAG removed: {old_d[n]['name']}" for n in sorted(set(old_d) - set(new_d))]
    for n in sorted(set(old_d) & set(new_d)):
        before = {m.lower() for m in old_d[n]["members"]}
        after = {m.lower() for m in new_d[n]["members"]}
        out += [f"DAG {new_d[n]['name']}: member added: {m}" for m in sorted(after - before)]
        out += [f"DAG {new_d[n]['name']}: member removed: {m}" for m in sorted(before - after)]
        if (old_d[n].get("witness") or {}) != (new_d[n].get("witness") or {}):
            out.append(f"DAG {new_d[n]['name']}: witness {_flow(old_d[n].get('witness'))} -> {_flow(new_d[n].get('witness'))}")
    old_sites = {s["name"].lower() for s in old.get("sites") or ()}
    out += [f"site added: {s['name']}" for s in new.get("sites") or () if s["name"].lower() not in old_sites]
    new_sites = {s["name"].lower() for s in new.get("sites") or ()}
    out += [
        f"site removed: {s['name']} (no server there any more)"
        for s in old.get("sites") or ()
        if s["name"].lower() not in new_sites
    ]
    old_e, new_e = old.get("expectations") or {}, new.get("expectations") or {}
    for key in ("activation_policy", "autodiscover"):
        if key in new_e and old_e.get(key) != new_e[key]:
            out.append(f"expectation {key} kept as {_flow(old_e.get(key))}; Exchange has now {_flow(new_e[key])}")
    return out


def merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """--update: the discovered topology (sites, servers, dags) with everything else the administrator wrote."""
    out = dict(old)
    out["sites"] = new["sites"]
    own = {s["name"].lower(): s.get("connection") for s in old.get("servers") or () if s.get("connection")}
    out["servers"] = [
        {**s, **({"connection": own[s["name"].lower()]} if s["name"].lower() in own else {})} for s in new["servers"]
    ]
    old_dags = {d["name"].lower(): d for d in old.get("dags") or ()}
    out["dags"] = [{**old_dags.get(d["name"].lower(), {}), **d} for d in new["dags"]]
    names = {s["name"] for s in new["sites"]}
    autodiscover = (out.get("expectations") or {}).get("autodiscover")
    if autodiscover:  # a site that no longer exists cannot keep an expectation
        out["expectations"] = {**out["expectations"], "autodiscover": {k: v for k, v in autodiscover.items() if k in names}}
    return out


# ---- the command --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    written: Path | None
    lines: tuple[str, ...]
    changed: bool


def run(
    transport: Transport,
    server: Server,
    seed: Seed,
    output: Path,
    selection: Selection = Selection(),
    update: bool = False,
    now: dt.datetime | None = None,
) -> Outcome:
    now = now or dt.datetime.now(dt.UTC)
    topology = ask(transport, server)
    made = draft(topology, seed, selection)
    parse_inventory(yaml.safe_load(yaml.safe_dump(made.data)), str(output))  # the schema and references hold
    summary = (
        f"discovered from {topology.asked}: {len(made.data['servers'])} server(s), "
        f"{len(made.data['sites'])} site(s), DAG(s) {', '.join(d['name'] for d in made.data['dags'])}"
        + (f"; {len(made.edge)} Edge server(s) listed, not checked" if made.edge else "")
    )
    if not output.exists():
        output.write_text(render(made, topology, seed.file, now), encoding="utf-8")
        return Outcome(output, (summary, f"written: {output} (confirm the values marked EXPECTATION)"), True)
    old = read_yaml(output)
    if not isinstance(old, dict):
        raise InventoryError(str(output), "(top level)", "exists but is not an inventory; choose another --output")
    found = changes(old, made.data)
    if not found:
        return Outcome(None, (summary, f"{output}: no change since it was written"), False)
    lines = [summary, f"{output} exists; what changed in Exchange since:", *[f"  {c}" for c in found]]
    if not update:
        lines.append(
            f"{output} left as it is (the expectations are yours); --update rewrites its sites, servers "
            "and dags and keeps everything else"
        )
        return Outcome(None, tuple(lines), True)
    data = merged(old, made.data)
    parse_inventory(yaml.safe_load(yaml.safe_dump(data)), str(output))
    shutil.copy2(output, output.with_name(output.name + ".bak"))
    header = (
        f"# Updated by `dagcheck discover --update` from {topology.asked} at {now.isoformat(timespec='seconds')}"
        f" (the previous file: {output.name}.bak); comments were not kept.\n"
    )
    output.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return Outcome(output, (*lines, f"updated: {output} (previous: {output.name}.bak)"), True)


def main(source: str, seed_path: str | None, output: str, dag_names: list[str], site_names: list[str], update: bool) -> int:
    """The command: 0 written or unchanged, 1 changes found and the file left as is, 4 a bad seed or output,
    8 the server could not be asked (with the doctor's command to find out why)."""
    import sys

    from dagcheck import locate
    from dagcheck.remote.psrp import PsrpTransport

    if seed_path is None:
        found = locate.find(None)
        seed_path = None if found.is_embedded_lab else str(found.path)
    try:
        seed = read_seed(seed_path)
        server = seed.server(source)
    except InventoryError as exc:
        print(f"dagcheck discover: {exc}", file=sys.stderr)
        return 4
    transport = PsrpTransport({server.name: server})
    try:
        outcome = run(transport, server, seed, Path(output), Selection(tuple(dag_names), tuple(site_names)), update)
    except InventoryError as exc:
        print(f"dagcheck discover: {exc}", file=sys.stderr)
        return 4
    except DiscoveryError as exc:
        print(f"dagcheck discover: {exc}", file=sys.stderr)
        return 8
    finally:
        transport.close()
    print("\n".join(outcome.lines))
    return 1 if outcome.changed and outcome.written is None else 0
