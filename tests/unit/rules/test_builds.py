"""The build and lifecycle tables (dagcheck/rules/builds.py): which CU a build is, and how current it is."""

from __future__ import annotations


def test_build_table_and_currency() -> None:
    from dagcheck.rules.builds import cu_of, currency, same_cu, supported_cus

    assert {c.product for c in supported_cus()} >= {"Exchange 2019", "Exchange 2016", "Exchange Server SE"}
    assert cu_of((15, 2, 1544, 44)).cu == "CU14"
    assert currency((15, 2, 1544, 44)) is None
    assert "lacks Aug26SU" in currency((15, 2, 1544, 36))
    assert "not a CU that still receives" in currency((15, 2, 986, 5))
    assert same_cu((15, 2, 1544, 4), (15, 2, 1544, 44)) and not same_cu((15, 2, 1544, 4), (15, 2, 1748, 10))
