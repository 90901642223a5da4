"""DAG-wide arithmetic (dagcheck/rules/dag.py): the majority, quorum after pausing a member, redundant copies."""

from __future__ import annotations

from dagcheck.inventory import parse_inventory
from dagcheck.rules.dag import redundant_copies
from dagcheck.sources.database_copies import DatabaseCopyStatus
from tests.conftest import lab_data


def test_odd_ones_out_follows_the_majority() -> None:
    from dagcheck.rules.dag import odd_ones_out

    assert odd_ones_out({"a": 1, "b": 1, "c": 2, "d": 1}) == {"c": 2}
    assert odd_ones_out({"a": 1, "b": 1}) == {}
    assert odd_ones_out({"a": 1, "b": 2}) == {"a": 1, "b": 2}
    assert odd_ones_out({"a": 1, "b": 1, "c": 2, "d": 2}) == {"a": 1, "b": 1, "c": 2, "d": 2}


def test_quorum_arithmetic() -> None:
    from dagcheck.rules.dag import quorum_after_pausing
    from dagcheck.sources.cluster_nodes import ClusterNode
    from dagcheck.sources.dags import DagStatus

    status = DagStatus("DAG1", ("a", "b", "c", "d"), (), "a", (), "fsw", "Primary")
    up = [ClusterNode(n, "Up") for n in "abcd"]
    assert quorum_after_pausing(up, "a", status).has_quorum  # 3 nodes + witness = 4 of 5
    down = [ClusterNode("a", "Up"), ClusterNode("b", "Down"), ClusterNode("c", "Up"), ClusterNode("d", "Up")]
    assert quorum_after_pausing(down, "a", status).has_quorum  # c, d + witness = 3 of 5
    no_witness = DagStatus("DAG1", ("a", "b", "c", "d"), (), "a", (), "fsw", "InvalidConfiguration")
    q = quorum_after_pausing(down, "a", no_witness)
    assert not q.has_quorum and (q.votes_present, q.votes_total) == (2, 5)
    odd = DagStatus("DAG1", ("a", "b", "c"), (), "a", (), None, None)
    assert quorum_after_pausing([ClusterNode(n, "Up") for n in "abc"], "a", odd).has_quorum  # 2 of 3


def _copy(server: str, copy_queue: int = 0, replay_queue: int = 0) -> DatabaseCopyStatus:
    return DatabaseCopyStatus(
        database="DB01",
        server=server,
        status="Healthy",
        active=False,
        activation_preference=2,
        copy_queue=copy_queue,
        replay_queue=replay_queue,
        content_index="Healthy",
        activation_suspended=False,
        lagged=False,
        error_message=None,
    )


def test_queue_defaults_follow_best_copy_selection_and_the_good_availability_dial() -> None:
    """Learn, "Exchange Server Active Manager": best copy selection needs copy queue < 10 and replay queue
    < 50; GoodAvailability (the default AutoDatabaseMountDial) mounts with at most 6 logs missing."""
    data = lab_data()
    for key in ("copy_queue_max", "replay_queue_max"):
        data["expectations"].pop(key)
    e = parse_inventory(data, "lab.yml").expectations
    assert (e.copy_queue_max, e.replay_queue_max) == (6, 49)
    shipped = parse_inventory(lab_data(), "lab.yml").expectations
    assert (shipped.copy_queue_max, shipped.replay_queue_max) == (6, 49)


def test_a_copy_that_would_not_mount_or_be_selected_is_not_redundant_by_default() -> None:
    e = parse_inventory(lab_data(), "lab.yml").expectations
    copies = {
        "mbx2": [_copy("mbx2", copy_queue=7)],
        "mbx3": [_copy("mbx3", replay_queue=50)],
        "mbx4": [_copy("mbx4", copy_queue=6, replay_queue=49)],
    }
    good, refused = redundant_copies("DB01", "mbx1", copies, {}, {}, e.copy_queue_max, e.replay_queue_max)
    assert good == ["DB01\\mbx4"]
    assert sorted(refused) == ["DB01\\mbx2: copy queue 7", "DB01\\mbx3: replay queue 50"]
