"""DAG-wide arithmetic (dagcheck/rules/dag.py): the majority, quorum after pausing a member, redundant copies."""

from __future__ import annotations


def test_odd_ones_out_follows_the_majority() -> None:
    from dagcheck.rules.dag import odd_ones_out

    assert odd_ones_out({"a": 1, "b": 1, "c": 2, "d": 1}) == {"c": 2}
    assert odd_ones_out({"a": 1, "b": 1}) == {}
    assert odd_ones_out({"a": 1, "b": 2}) == {"a": 1, "b": 2}
    assert odd_ones_out({"a": 1, "b": 1, "c": 2, "d": 2}) == {"a": 1, "b": 1, "c": 2, "d": 2}


def test_quorum_arithmetic() -> None:
    from dagcheck.model import ClusterNode, DagStatus
    from dagcheck.rules.dag import quorum_after_pausing

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
