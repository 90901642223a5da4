"""`dagcheck discover` (issue 25): against a persistent lab, discovery from mbx1 writes an inventory naming
all four servers, both sites, DAG1 with its members and witness, and the Autodiscover URI per site, and the
nightly health passes on it unchanged; a seed that lists only mbx1 gives the same inventory; re-running over
an existing inventory shows what changed and keeps the administrator's expectations.

Also, from real Exchange output (CSS-Exchange's captures): a standalone Mailbox server is listed as one, and
an Edge server is listed, not checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dagcheck import clixml, discover
from dagcheck.inventory import load_inventory, parse_inventory
from dagcheck.lab.persist import PASSWORD_ENV, USERNAME_ENV
from dagcheck.sources import exchange_servers, mailbox_servers
from dagcheck.sources.client_access_services import ScpEntry
from dagcheck.sources.dags import DagConfig
from dagcheck.sources.exchange_servers import ExchangeServerEntry
from dagcheck.sources.mailbox_servers import MailboxServerEntry
from tests import shared_fixtures
from tests.conftest import ROOT
from tests.processes import budget, run, serve_lab, stop_lab

BIN = Path(sys.executable).with_name("dagcheck")
PASSWORD = "discover-test-only"
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    USERNAME_ENV: "lab\\dagcheck",
    PASSWORD_ENV: PASSWORD,
}
AUTODISCOVER = "https://autodiscover.contoso.test/Autodiscover/Autodiscover.xml"
FIXTURES = shared_fixtures.css_exchange("E19")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`python -m dagcheck.lab serve --state FILE --write-inventory PATH`: the persistent lab, its inventory."""
    folder = tmp_path_factory.mktemp("discover-lab")
    inventory = folder / "lab-inventory.yml"
    proc = serve_lab(ROOT / "inventory/lab.yml", folder / "lab.json", inventory, ENV, ROOT)
    try:
        yield folder, inventory
    finally:
        stop_lab(proc)


def _dagcheck(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A bound against a hang, scaled with the machine's load like every wait of the suite; owned by the suite.
    return run([str(BIN), *args], budget(300), cwd=cwd, env={**ENV, "HOME": str(cwd)})


def _facts(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {k: data[k] for k in ("sites", "servers", "dags", "expectations", "connection")}


@pytest.mark.skipif(not BIN.exists(), reason="the dagcheck console script is not installed in this venv")
def test_discovery_from_mbx1_finds_the_lab_and_health_passes_on_it_unchanged(lab, tmp_path) -> None:
    folder, written = lab
    out = tmp_path / "discovered.yml"
    done = _dagcheck("discover", "--from", "mbx1", "--inventory", str(written), "--output", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 server(s), 2 site(s), DAG(s) DAG1" in done.stdout
    inventory = load_inventory(out)  # validates against the schema, references included
    assert {(s.name, s.fqdn, s.site, s.dag) for s in inventory.servers} == {
        (f"mbx{i}", f"mbx{i}.lab.contoso.test", "Site-A" if i < 3 else "Site-B", "DAG1") for i in range(1, 5)
    }
    assert inventory.sites == ("Site-A", "Site-B")
    [dag] = inventory.dags
    assert dag.name == "DAG1" and set(dag.members) == {"mbx1", "mbx2", "mbx3", "mbx4"}
    assert dag.witness.server == "fsw1.lab.contoso.test" and dag.witness.directory == "C:\\DAG1"
    assert {site: (a.uri, a.site_scope) for site, a in inventory.expectations.autodiscover.items()} == {
        "Site-A": (AUTODISCOVER, ("Site-A",)),
        "Site-B": (AUTODISCOVER, ("Site-B",)),
    }
    assert inventory.expectations.activation_policy == "Unrestricted"
    text = out.read_text(encoding="utf-8")
    assert "# Get-DatabaseAvailabilityGroup -Status" in text and "EXPECTATION taken from the state now" in text
    assert PASSWORD not in text  # credentials stay variable names

    health = _dagcheck("health", "--inventory", str(out), "--reports-dir", str(tmp_path / "reports"), cwd=tmp_path)
    assert health.returncode == 0, health.stdout[-3000:] + health.stderr[-2000:]
    assert "simulated lab" not in health.stdout.splitlines()[0]  # a real-protocol run on an inventory given

    # A seed that lists only mbx1 (and the connection settings, with the lab's endpoints map) gives the same.
    seed = tmp_path / "seed.yml"
    connection = yaml.safe_load(written.read_text(encoding="utf-8"))["connection"]
    seed.write_text(
        yaml.safe_dump({"connection": connection, "servers": [{"name": "mbx1", "fqdn": "mbx1.lab.contoso.test"}]}),
        encoding="utf-8",
    )
    again = tmp_path / "from-seed.yml"
    done = _dagcheck("discover", "--from", "mbx1", "--inventory", str(seed), "--output", str(again), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _facts(again) == _facts(out)


def test_rediscovery_shows_what_changed_and_keeps_the_expectations(lab, tmp_path, monkeypatch) -> None:
    folder, written = lab
    monkeypatch.setenv(USERNAME_ENV, "lab\\dagcheck")
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    out = tmp_path / "inventory.yml"
    assert discover.main("mbx1", str(written), str(out), [], [], False) == 0
    assert discover.main("mbx1", str(written), str(out), [], [], False) == 0  # nothing changed since
    # The administrator's file: mbx4 not (yet) listed, an old mbx9, and their own activation expectation.
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    data["servers"] = [s for s in data["servers"] if s["name"] != "mbx4"] + [
        {"name": "mbx9", "fqdn": "mbx9.lab.contoso.test", "site": "Site-Z"}
    ]
    data["sites"].append({"name": "Site-Z"})
    data["dags"][0]["members"].remove("mbx4")
    data["expectations"]["activation_policy"] = "IntrasiteOnly"
    data["maintenance"] = {"poll_interval": 0}
    out.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    before = out.read_bytes()

    changes = discover.changes(data, discover.draft(*_topology(written), discover.Selection()).data)
    assert "server added: mbx4 (mbx4.lab.contoso.test, site Site-B, DAG DAG1)" in changes
    assert "server removed: mbx9 (Exchange no longer lists it)" in changes
    assert "DAG DAG1: member added: mbx4" in changes
    assert "site removed: Site-Z (no server there any more)" in changes
    assert any(c.startswith("expectation activation_policy kept as IntrasiteOnly") for c in changes)
    assert discover.main("mbx1", str(written), str(out), [], [], False) == 1
    assert out.read_bytes() == before  # shown, not overwritten

    assert discover.main("mbx1", str(written), str(out), [], [], True) == 0
    updated = load_inventory(out)
    assert {s.name for s in updated.servers} == {"mbx1", "mbx2", "mbx3", "mbx4"}
    assert updated.sites == ("Site-A", "Site-B")
    assert set(updated.dag("DAG1").members) == {"mbx1", "mbx2", "mbx3", "mbx4"}
    assert updated.expectations.activation_policy == "IntrasiteOnly"  # the administrator's, kept
    assert updated.maintenance.poll_interval == 0
    assert (tmp_path / "inventory.yml.bak").read_bytes() == before


def _topology(written: Path) -> tuple[discover.Topology, discover.Seed]:
    return _asked(discover.read_seed(str(written)))


# ---- without a lab: real Exchange output and topologies the lab does not have ---------------------------------


def _entry(name: str, site: str, edge: bool = False) -> ExchangeServerEntry:
    return ExchangeServerEntry(
        name, f"{name}.corp.example.com", site, (15, 2, 1544, 4), "Edge" if edge else "Mailbox", edge, not edge
    )


TOPOLOGY = discover.Topology(
    "ex01.corp.example.com",
    servers=(
        _entry("ex01", "HQ"),
        _entry("ex02", "HQ"),
        _entry("ex03", "DR"),
        _entry("ex04", "DR"),
        _entry("solo", "HQ"),
        _entry("edge1", "", edge=True),
    ),
    dags=(
        DagConfig(
            "DAG-PROD",
            ("ex01", "ex02", "ex03", "ex04"),
            "fsw01.corp.example.com",
            "C:\\FSW\\DAG-PROD",
            "fsw02.corp.example.com",
            "C:\\FSW\\DAG-PROD",
        ),
    ),
    mailbox=(
        *(
            MailboxServerEntry(n, "DAG-PROD", "IntrasiteOnly" if n == "ex04" else "Unrestricted")
            for n in ("ex01", "ex02", "ex03", "ex04")
        ),
        MailboxServerEntry("solo", None, "Unrestricted"),
    ),
    scps=(
        *(
            ScpEntry(n, "https://autodiscover.corp.example.com/Autodiscover/Autodiscover.xml", (site,))
            for n, site in (("ex01", "HQ"), ("ex02", "HQ"), ("ex03", "DR"), ("ex04", "DR"))
        ),
        ScpEntry("solo", None, ()),
    ),
)


def test_standalone_and_edge_servers_are_listed_as_such_and_the_alternate_witness_kept(tmp_path) -> None:
    import datetime as dt

    made = discover.draft(TOPOLOGY, discover.Seed(None))
    by_name = {s["name"]: s for s in made.data["servers"]}
    assert "dag" not in by_name["solo"] and by_name["ex01"]["dag"] == "DAG-PROD"
    assert "edge1" not in by_name and [e.name for e in made.edge] == ["edge1"]
    assert made.data["dags"][0]["witness"] == {
        "server": "fsw01.corp.example.com",
        "directory": "C:\\FSW\\DAG-PROD",
        "alternate_server": "fsw02.corp.example.com",
        "alternate_directory": "C:\\FSW\\DAG-PROD",
    }
    assert made.data["expectations"]["activation_policy"] == "Unrestricted"
    assert "differs now: ex04 IntrasiteOnly" in made.notes["expectations.activation_policy"]
    out = tmp_path / "prod.yml"
    out.write_text(discover.render(made, TOPOLOGY, None, dt.datetime(2026, 12, 7, tzinfo=dt.UTC)), encoding="utf-8")
    inventory = load_inventory(out)
    assert inventory.server("solo").dag is None and inventory.dag("DAG-PROD").witness.alternate_server == "fsw02.corp.example.com"
    text = out.read_text(encoding="utf-8")
    assert "in no DAG (a standalone Mailbox server)" in text and "#   edge1 (edge1.corp.example.com)" in text


def test_dag_and_site_selections() -> None:
    only_dr = discover.draft(TOPOLOGY, discover.Seed(None), discover.Selection(sites=("DR",)))
    # a DAG with a member in DR is kept whole; the standalone server of HQ is left out
    assert {s["name"] for s in only_dr.data["servers"]} == {"ex01", "ex02", "ex03", "ex04"}
    parse_inventory(yaml.safe_load(yaml.safe_dump(only_dr.data)))
    by_dag = discover.draft(TOPOLOGY, discover.Seed(None), discover.Selection(dags=("dag-prod",)))
    assert "solo" not in {s["name"] for s in by_dag.data["servers"]}
    with pytest.raises(discover.DiscoveryError, match="--dag DAG9: no such DAG"):
        discover.draft(TOPOLOGY, discover.Seed(None), discover.Selection(dags=("DAG9",)))


@shared_fixtures.needs(FIXTURES)
def test_real_exchange_output_parses_a_standalone_mailbox_server() -> None:
    [server] = [exchange_servers.parse(o) for o in clixml.from_file(FIXTURES / "GetExchangeServer.xml")]
    assert (server.name, server.fqdn, server.site, server.is_mailbox, server.is_edge) == (
        "solo-e19a",
        "solo-e19a.solo.com",
        "Default-First-Site-Name",
        True,
        False,
    )
    assert server.build.startswith("15.2.")
    [mailbox] = [mailbox_servers.parse(o) for o in clixml.from_file(FIXTURES / "GetMailboxServer.xml")]
    assert mailbox.dag is None and mailbox.activation_policy == "Unrestricted"


def test_a_seed_with_a_bad_connection_names_the_file_and_key(tmp_path) -> None:
    from dagcheck.errors import InventoryError

    seed = tmp_path / "seed.yml"
    seed.write_text("connection: {auth: kerberoz}\nservers: [{name: mbx1}]\n", encoding="utf-8")
    with pytest.raises(InventoryError, match=r"seed.yml: connection.auth: 'kerberoz' is not one of"):
        discover.read_seed(str(seed))


def test_a_standalone_lab_server_is_discovered_in_no_dag(monkeypatch) -> None:
    """The lab with a fifth Mailbox server in no DAG: discovery lists it, without a dag key, not dropped."""
    from dagcheck.inventory import parse_inventory as parse
    from dagcheck.lab.build import build_organization
    from dagcheck.lab.persist import inventory_for
    from dagcheck.lab.server import LabServer
    from tests.conftest import lab_data

    data = lab_data()
    data["servers"].append({"name": "mbx5", "fqdn": "mbx5.lab.contoso.test", "site": "Site-B"})
    with LabServer(build_organization(parse(data))) as server:
        monkeypatch.setenv(USERNAME_ENV, server.credentials.username)
        monkeypatch.setenv(PASSWORD_ENV, server.credentials.password)
        seed = discover.Seed("lab", inventory_for(data, server.exchange_uri, server.windows_uri, None, "basic"))
        made = discover.draft(*_asked(seed), discover.Selection())
    by_name = {s["name"]: s for s in made.data["servers"]}
    assert set(by_name) == {"mbx1", "mbx2", "mbx3", "mbx4", "mbx5"} and "dag" not in by_name["mbx5"]
    assert "in no DAG (a standalone Mailbox server)" in made.notes["servers.mbx5"]
    assert made.data["dags"][0]["members"] == ["mbx1", "mbx2", "mbx3", "mbx4"]
    parse(yaml.safe_load(yaml.safe_dump(made.data)))


def _asked(seed: discover.Seed) -> tuple[discover.Topology, discover.Seed]:
    from dagcheck.remote.psrp import PsrpTransport

    server = seed.server("mbx1")
    transport = PsrpTransport({server.name: server})
    try:
        return discover.ask(transport, server), seed
    finally:
        transport.close()
