"""Maintenance transitions against the lab: the full cycle, dry-run equals apply, every interlock refuses
before anything changes, and an interruption after any step ends in a correct state."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dagcheck.inventory import parse_inventory
from dagcheck.lab import persist
from dagcheck.lab.build import build_organization
from dagcheck.lab.cmdlets import REGISTRY
from dagcheck.lab.faults import apply_fault
from dagcheck.lab.inprocess import InProcessTransport
from dagcheck.lab.settings import Fault
from dagcheck.maintenance.journal import Journal
from dagcheck.maintenance.live import Live
from dagcheck.maintenance.runner import Transition
from dagcheck.maintenance.steps import Action, enter_steps, exit_steps
from tests.conftest import lab_data

CHANGING = {spec.name for spec in REGISTRY.values() if spec.changes_state}


class Lab:
    def __init__(self, tmp: Path, faults: list[dict] | None = None, **inventory_changes) -> None:
        data = lab_data(faults)
        for key, value in inventory_changes.items():
            section, _, name = key.partition("__")
            data.setdefault(section, {})[name] = value
        self.inventory = parse_inventory(data, "lab.yml")
        self.org = build_organization(self.inventory)
        self.transport = InProcessTransport(self.org)
        self.live = Live(self.transport, self.inventory.expectations)
        self.journal = Journal.for_server(tmp, "mbx1")

    def copy(self, tmp: Path) -> Lab:
        """Another lab in exactly this state (saved and loaded as the persistent lab does across a restart),
        with a copy of the journal in tmp."""
        other = object.__new__(Lab)
        other.inventory = self.inventory
        other.org = persist.restore(json.loads(json.dumps(persist.dump(self.org))))
        other.transport = InProcessTransport(other.org)
        other.live = Live(other.transport, self.inventory.expectations)
        other.journal = Journal.for_server(tmp, "mbx1")
        other.journal.path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.journal.path, other.journal.path)
        return other

    def transition(self, direction: str, apply: bool = True, **kw) -> Transition:
        target = kw.pop("target", "mbx2" if direction == "enter" else None)
        return Transition(direction, "mbx1", target, self.live, self.inventory, self.journal, apply, **kw)

    def changes(self) -> list[str]:
        return [
            Action(i.server, i.endpoint, i.command).render()
            for i in self.transport.transcript.invocations
            if i.command.cmdlet in CHANGING
        ]

    def assert_in_maintenance(self) -> None:
        s = self.org.server("mbx1")
        assert s.own_state("ServerWideOffline") == "Inactive" and s.component_state("HubTransport") == "Inactive"
        assert s.own_state("HubTransport") == "Draining"
        assert s.cluster_state == "Paused" and self.org.dags["dag1"].primary_active_manager != "mbx1"
        assert s.activation_policy == "Blocked" and s.move_now
        assert not [db.name for db in self.org.databases.values() if db.active_server == "mbx1"]

    def assert_in_service(self, policy: str = "Unrestricted") -> None:
        s = self.org.server("mbx1")
        assert s.component_state("ServerWideOffline") == "Active" and s.component_state("HubTransport") == "Active"
        assert s.cluster_state == "Up" and not s.move_now and s.activation_policy == policy
        assert self.org.databases["db01"].active_server == "mbx1"  # back on its activation preference 1
        assert all(db.copy_on(db.active_server).status == "Mounted" for db in self.org.databases.values())


def test_full_cycle_restores_the_recorded_policy(tmp_path) -> None:
    lab = Lab(tmp_path, expectations__activation_policy="IntrasiteOnly")
    for server in lab.org.servers.values():
        server.activation_policy = "IntrasiteOnly"
    entered = lab.transition("enter").run()
    assert entered.ok, entered.error or entered.refusals
    lab.assert_in_maintenance()
    assert lab.journal.recorded_policy() == "IntrasiteOnly"
    left = lab.transition("exit").run()
    assert left.ok, left.error
    lab.assert_in_service("IntrasiteOnly")
    assert lab.journal.where_it_stands() is None
    assert "Move-ActiveMailboxDatabase -Identity DB01 -ActivateOnServer mbx1 -Confirm:$false" in left.commands


def test_dry_run_shows_exactly_the_commands_apply_runs(tmp_path) -> None:
    lab = Lab(tmp_path)
    plan = lab.transition("enter", apply=False).run()
    assert not lab.changes(), "a dry-run changed something"
    applied = lab.transition("enter").run()
    assert applied.ok and plan.commands == lab.changes() == applied.commands
    before = len(lab.changes())
    plan = lab.transition("exit", apply=False).run()
    assert len(lab.changes()) == before
    lab.transition("exit").run()
    assert plan.commands == lab.changes()[before:]


INTERLOCKS = [
    ("gate", [], {"gate_failures": ["DAG-RED-001 [DB01\\mbx1]: no other copy"]}),
    ("one_at_a_time", [{"kind": "in_maintenance", "server": "mbx3"}], {}),
    (
        "redundancy",
        [
            {"kind": "copy_suspended", "database": "DB01", "server": "mbx2"},
            {"kind": "copy_failed", "database": "DB01", "server": "mbx3"},
        ],
        {},
    ),
    ("quorum", [{"kind": "cluster_node_down", "server": "mbx3"}, {"kind": "witness_unavailable"}], {}),
    ("target", [{"kind": "component_inactive", "server": "mbx2", "component": "HubTransport"}], {"target": "mbx2"}),
]


@pytest.mark.parametrize("interlock,faults,kwargs", INTERLOCKS, ids=[i[0] for i in INTERLOCKS])
def test_interlock_refuses_without_sending_a_single_change(tmp_path, interlock, faults, kwargs) -> None:
    lab = Lab(tmp_path, faults)
    result = lab.transition("enter", **kwargs).run()
    assert interlock in {r.interlock for r in result.refusals}, result.refusals
    assert not result.steps and not lab.changes()
    assert not [c for c in lab.org.call_log if c[1] in CHANGING]  # the lab's own call log agrees
    assert any(e["event"] == "transition_refused" for e in lab.journal.entries())


def test_force_overrides_only_what_the_inventory_allows(tmp_path) -> None:
    gate = {"gate_failures": ["DAG-COPY-004 [DB02\\mbx4]: content index Failed"]}
    lab = Lab(tmp_path)
    assert lab.transition("enter", force=True, **gate).run().refusals  # not allowed: still refused
    lab = Lab(tmp_path, maintenance__force_allowed=["gate"])
    result = lab.transition("enter", force=True, **gate).run()
    assert result.ok and [r.interlock for r in result.forced] == ["gate"]
    lab.assert_in_maintenance()


class Interrupted(Exception):
    pass


def _interrupt_after(name: str):
    def hook(step: str) -> None:
        if step == name:
            raise Interrupted(step)

    return hook


ENTER = [s.name for s in enter_steps(False)]
EXIT = [s.name for s in exit_steps(False)]


@pytest.mark.parametrize("step", ENTER)
def test_interrupted_enter_resumes_or_rolls_back(tmp_path, step) -> None:
    # The UMCallRouter steps only act on Exchange 2016 (elsewhere they are done from the start).
    build = {"lab__build": "15.1.2507.72"} if "um_call_router" in step else {}
    interrupted = Lab(tmp_path / "resume", [{"kind": "shadow_queue", "server": "mbx1", "value": "mbx3", "count": 6}], **build)
    interrupted.org.server("mbx1").activation_policy = "IntrasiteOnly"
    with pytest.raises(Interrupted):
        interrupted.transition("enter", after_step=_interrupt_after(step)).run()
    # Both ways out start from the same interrupted state: the second from a copy of the lab and its journal.
    labs = {"resume": interrupted, "roll back": interrupted.copy(tmp_path / "roll back")}
    for then, lab in labs.items():
        assert lab.journal.where_it_stands() is not None
        if then == "resume":
            result = lab.transition("enter").run()
            assert result.ok, (step, result.error, result.refusals)
            assert result.resumed_from and f"last step done: {step}" in result.resumed_from
            lab.assert_in_maintenance()
            assert lab.journal.recorded_policy() == "IntrasiteOnly"
        else:
            result = lab.transition("exit").run()
            assert result.ok, (step, result.error)
            lab.assert_in_service("IntrasiteOnly")


@pytest.fixture(scope="module")
def entered(tmp_path_factory) -> Lab:
    """mbx1 entered into maintenance by a completed transition; tests take a copy (lab state and journal)."""
    lab = Lab(tmp_path_factory.mktemp("entered"))
    assert lab.transition("enter").run().ok
    return lab


@pytest.fixture(scope="module")
def entered_2016(tmp_path_factory) -> Lab:
    """The same on Exchange 2016 (UMCallRouter drained by the enter)."""
    lab = Lab(tmp_path_factory.mktemp("entered2016"), lab__build="15.1.2507.72")
    assert lab.transition("enter").run().ok
    return lab


@pytest.mark.parametrize("step", EXIT)
def test_interrupted_exit_finishes_on_the_next_run(tmp_path, request, step) -> None:
    # The UMCallRouter step only acts on Exchange 2016 (elsewhere it is done from the start).
    lab = request.getfixturevalue("entered_2016" if "um_call_router" in step else "entered").copy(tmp_path)
    if step == "resume_database_copies":  # acts only when a copy of the member is suspended
        apply_fault(lab.org, Fault("copy_suspended", {"database": "DB02", "server": "mbx1"}))
    lab.assert_in_maintenance()
    with pytest.raises(Interrupted):
        lab.transition("exit", after_step=_interrupt_after(step)).run()
    result = lab.transition("exit").run()
    assert result.ok, (step, result.error)
    lab.assert_in_service()


def test_dropped_connection_mid_transition_then_resume(tmp_path) -> None:
    lab = Lab(tmp_path)
    drop = Fault("dropped_connection", {"server": "mbx1"})

    def cut(step: str) -> None:
        if step == "suspend_cluster_node":
            apply_fault(lab.org, drop)

    result = lab.transition("enter", after_step=cut).run()
    assert result.error and "connection" in result.error
    lab.org.runtime_faults.remove(drop)
    assert lab.transition("enter").run().ok
    lab.assert_in_maintenance()


def test_stuck_queue_is_detected_early_and_nothing_further_changes(tmp_path) -> None:
    lab = Lab(tmp_path, [{"kind": "stuck_queue", "server": "mbx1", "count": 12}])
    result = lab.transition("enter").run()
    assert result.error and "no progress waiting for queues to empty" in result.error
    s = lab.org.server("mbx1")
    assert s.cluster_state == "Up" and s.activation_policy == "Unrestricted"  # stopped before these steps
    assert any(e.get("outcome") == "failed" for e in lab.journal.entries())


def test_journal_records_state_before_and_after_and_poison_is_reported(tmp_path) -> None:
    lab = Lab(
        tmp_path,
        [
            {"kind": "poison_messages", "server": "mbx1", "count": 3},
            {"kind": "shadow_queue", "server": "mbx1", "value": "mbx3", "count": 2},
        ],
    )
    result = lab.transition("enter").run()
    assert result.ok, result.error
    assert any("3 poison message(s) stay on mbx1" in n for n in result.notes)
    steps = {e["step"]: e for e in lab.journal.entries() if e.get("event") == "step" and e.get("outcome") == "done"}
    offline = steps["server_wide_offline"]
    assert offline["before"]["components"]["ServerWideOffline"] == "Active"
    assert offline["after"]["components"]["ServerWideOffline"] == "Inactive"
    assert offline["commands"] == [
        "Set-ServerComponentState -Identity mbx1 -Component ServerWideOffline -State Inactive -Requester Maintenance"
    ]
    assert steps["block_activation"]["after"]["activation"] == "Blocked, MoveNow True"
