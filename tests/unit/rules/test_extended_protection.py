from dagcheck.rules.extended_protection import expected_token_checking, split_vdir_name, supports_extended_protection


def test_ep_matrix_front_and_back_end() -> None:
    assert expected_token_checking("Autodiscover", "Default Web Site") == "None"
    assert expected_token_checking("EWS", "Default Web Site") == "Allow"
    assert expected_token_checking("EWS", "Exchange Back End") == "Require"
    assert expected_token_checking("PowerShell", "Default Web Site") == "None"
    assert expected_token_checking("mapi", "Exchange Back End") is None
    assert split_vdir_name("owa (Default Web Site)") == ("owa", "Default Web Site")


def test_ep_supported_builds() -> None:
    assert supports_extended_protection((15, 2, 1544, 4))
    assert supports_extended_protection((15, 2, 1118, 11)) and not supports_extended_protection((15, 2, 1118, 7))
    assert supports_extended_protection((15, 2, 986, 28)) and not supports_extended_protection((15, 2, 986, 5))
    assert supports_extended_protection((15, 1, 2507, 11)) and not supports_extended_protection((15, 1, 2375, 7))


def test_build_table_and_currency() -> None:
    from dagcheck.rules.builds import cu_of, currency, same_cu, supported_cus

    assert {c.product for c in supported_cus()} >= {"Exchange 2019", "Exchange 2016", "Exchange Server SE"}
    assert cu_of((15, 2, 1544, 44)).cu == "CU14"
    assert currency((15, 2, 1544, 44)) is None
    assert "lacks Aug26SU" in currency((15, 2, 1544, 36))
    assert "not a CU that still receives" in currency((15, 2, 986, 5))
    assert same_cu((15, 2, 1544, 4), (15, 2, 1544, 44)) and not same_cu((15, 2, 1544, 4), (15, 2, 1748, 10))


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
