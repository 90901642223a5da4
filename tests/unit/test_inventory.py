"""An invalid inventory stops the run before any connection, naming the file and the path inside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dagcheck.errors import InventoryError
from dagcheck.inventory import load_inventory, parse_inventory
from tests.conftest import ROOT, lab_data


def _mutate(fn):
    data = lab_data()
    fn(data)
    return data


INVALID = [
    ("unknown top-level key", lambda d: d.update(servres=[]), "(top level)", "unknown key 'servres'"),
    ("unknown server key", lambda d: d["servers"][1].update(fdqn="x.y"), "servers[1]", "unknown key 'fdqn'"),
    ("missing fqdn", lambda d: d["servers"][2].pop("fqdn"), "servers[2]", "'fqdn' is required"),
    ("bad fqdn", lambda d: d["servers"][2].update(fqdn="not a host"), "servers[2].fqdn", "expected form"),
    ("duplicate server", lambda d: d["servers"].append(dict(d["servers"][0])), "servers[4].name", "duplicate server name"),
    ("DAG member not a server", lambda d: d["dags"][0]["members"].append("mbx9"), "dags[0].members[4]", "'mbx9' is not listed"),
    ("server in unknown DAG", lambda d: d["servers"][0].update(dag="DAG9"), "servers[0].dag", "DAG 'DAG9' is not listed"),
    ("server in unknown site", lambda d: d["servers"][3].update(site="Site-Z"), "servers[3].site", "site 'Site-Z'"),
    (
        "negative threshold",
        lambda d: d["expectations"].update(copy_queue_max=-1),
        "expectations.copy_queue_max",
        "below the minimum 0",
    ),
    (
        "bad URI",
        lambda d: d["expectations"]["autodiscover"]["Site-A"].update(uri="autodiscover.contoso"),
        "expectations.autodiscover.Site-A.uri",
        "expected form",
    ),
    (
        "bad activation policy",
        lambda d: d["expectations"].update(activation_policy="Sometimes"),
        "expectations.activation_policy",
        "not one of",
    ),
    ("unknown fault kind", lambda d: d["lab"]["faults"].append({"kind": "meteor"}), "lab.faults[0].kind", "not one of"),
    (
        "fault on unknown server",
        lambda d: d["lab"]["faults"].append({"kind": "stuck_queue", "server": "mbx7"}),
        "lab.faults[0].server",
        "'mbx7' is not listed",
    ),
    (
        "copy on unknown server",
        lambda d: d["lab"]["databases"][0]["copies"].append("mbx8"),
        "lab.databases[0].copies[3]",
        "'mbx8' is not listed",
    ),
    (
        "credentials are never in the file",
        lambda d: d.update(connection={"auth": "basic", "password": "x"}),
        "connection",
        "unknown key 'password'",
    ),
    ("member not naming its DAG", lambda d: d["servers"][3].pop("dag"), "dags[0].members[3]", "does not name DAG"),
]


@pytest.mark.parametrize("mutate,path,problem", [i[1:] for i in INVALID], ids=[i[0] for i in INVALID])
def test_invalid_inventory_names_path_and_problem(mutate, path, problem) -> None:
    with pytest.raises(InventoryError) as exc:
        parse_inventory(_mutate(mutate), "inv.yml")
    assert exc.value.path == path
    assert problem in exc.value.problem
    assert str(exc.value).startswith(f"invalid inventory inv.yml: {path}")


def test_bad_yaml_names_line(tmp_path: Path) -> None:
    p = tmp_path / "broken.yml"
    p.write_text("sites:\n  - name: A\n servers: [\n", encoding="utf-8")
    with pytest.raises(InventoryError) as exc:
        load_inventory(p)
    assert "line" in exc.value.path and "not valid YAML" in exc.value.problem and str(p) in str(exc.value)


def test_missing_file() -> None:
    with pytest.raises(InventoryError, match="cannot read the file"):
        load_inventory("/nonexistent/inventory.yml")


def test_shipped_inventories_are_valid() -> None:
    lab = load_inventory(ROOT / "inventory" / "lab.yml")
    assert lab.lab is not None and len(lab.servers) == 4
    example = load_inventory(ROOT / "inventory" / "example.yml")
    assert example.lab is None and example.servers[0].connection.auth == "kerberos"


def test_pytest_run_with_invalid_inventory_exits_cleanly(tmp_path: Path) -> None:
    """The main job prints one clear line and a non-zero exit, never a traceback; the inventory lives
    outside the repository and is given as `--inventory PATH` (needs dagcheck installed, as README says)."""
    data = lab_data()
    data["servers"][2]["fqdn"] = "bad host"
    p = tmp_path / "bad.yml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--inventory", str(p), "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"invalid inventory {p}: servers[2].fqdn" in output
    assert "Traceback" not in output


def test_read_timeout_not_longer_than_operation_timeout_is_refused() -> None:
    """The server holds a Receive for the whole OperationTimeout; a shorter read timeout would cut it."""
    data = lab_data()
    data["servers"][1]["connection"] = {"operation_timeout": 60, "read_timeout": 60}
    with pytest.raises(
        InventoryError,
        match=r"servers\[1\]\.connection\.read_timeout: 60 must be longer than "
        r"operation_timeout \(60\)",
    ):
        parse_inventory(data, "lab.yml")


def test_an_unquoted_impossible_date_names_its_line(tmp_path) -> None:
    """Issue 24 item 6: YAML builds `2026-02-30` into a date and fails with a bare ValueError; the loader says where."""
    inv = tmp_path / "inv.yml"
    inv.write_text("servers: []\nwaivers:\n  - check: DAG-COPY-001\n    expires: 2026-02-30\n", encoding="utf-8")
    with pytest.raises(InventoryError) as err:
        load_inventory(inv)
    assert "line 4" in str(err.value) and "'2026-02-30'" in str(err.value) and str(inv) in str(err.value)


def _server_nodes(count: int) -> yaml.Node:
    """A composed `servers:` document of `count` servers, built as nodes (parsing 10,000 servers of YAML in pure
    Python takes a minute on a loaded machine; the limit is applied to the composed nodes either way)."""

    def scalar(value: str) -> yaml.ScalarNode:
        return yaml.ScalarNode("tag:yaml.org,2002:str", value)

    def server(i: int) -> yaml.MappingNode:
        name = f"ex{i:05d}"
        conn = yaml.MappingNode(
            "tag:yaml.org,2002:map",
            [
                (scalar("exchange_uri"), scalar(f"https://{name}.corp.example.com/PowerShell")),
                (scalar("windows_uri"), scalar(f"https://{name}.corp.example.com:5986/wsman")),
                (scalar("verify_tls"), scalar("true")),
                (scalar("auth"), scalar("kerberos")),
                (scalar("operation_timeout"), yaml.ScalarNode("tag:yaml.org,2002:int", "60")),
            ],
        )
        return yaml.MappingNode(
            "tag:yaml.org,2002:map",
            [
                (scalar("name"), scalar(name)),
                (scalar("fqdn"), scalar(f"{name}.corp.example.com")),
                (scalar("site"), scalar("HQ")),
                (scalar("dag"), scalar(f"DAG{i // 16:03d}")),
                (scalar("connection"), conn),
            ],
        )

    servers = yaml.SequenceNode("tag:yaml.org,2002:seq", [server(i) for i in range(count)])
    return yaml.MappingNode("tag:yaml.org,2002:map", [(scalar("servers"), servers)])


def test_ten_thousand_servers_without_an_alias_are_no_alias_bomb() -> None:
    """Issue 24 item 7: the limit counts what aliases add, not the values written out (here 210,002 of them)."""
    from dagcheck.yamlfile import _expanded_size

    assert _expanded_size(_server_nodes(10_000)) == 0


def test_an_alias_bomb_says_which_limit_it_hit(tmp_path) -> None:
    laughs = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "lol"] * 9) + "]\n" for i in range(9))
    inv = tmp_path / "inv.yml"
    inv.write_text(laughs, encoding="utf-8")
    with pytest.raises(InventoryError) as err:
        load_inventory(inv)
    assert "alias(es) expand it by more than 200,000 values (the limit on values added by YAML aliases" in str(err.value)
