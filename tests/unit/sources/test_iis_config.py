"""Extended Protection as IIS has it: applicationHost.config parsed safely (real files, generated ones,
garbage), judged against the matrix with the EWS back-end IP-filter mitigation, served by the lab
from its own IIS state, and cross-checked against the cmdlets."""

from __future__ import annotations

import pytest

from dagcheck.inventory import load_inventory
from dagcheck.lab import iis as lab_iis
from dagcheck.lab import winrs
from dagcheck.lab.build import build_organization
from dagcheck.lab.faults import apply_fault
from dagcheck.lab.settings import Fault
from dagcheck.lab.state import Organization
from dagcheck.remote.base import CmdResult
from dagcheck.rules.extended_protection import IIS_MATRIX, judge_location
from dagcheck.sources.iis_config import BACK_END, COMMAND_LINE, FRONT_END, IisConfigError, parse_application_host, read_iis
from dagcheck.sources.virtual_directories import parse_virtual_directory
from tests import shared_fixtures
from tests.conftest import LAB_YML, lab_data

REAL = shared_fixtures.css_exchange("ExtendedProtection")
real = shared_fixtures.needs(REAL)
SUPPORTED = (15, 2, 1544, 44)  # 2019 CU14 Aug26SU: EP supported
UNSUPPORTED = (15, 2, 986, 5)  # 2019 CU11 as released: before the August 2022 SU
MATRIX_PATHS = {f"{site}/{vdir}" for site, vdir in IIS_MATRIX}


def locations(text: str, server: str = "ex1") -> dict[str, object]:
    return {loc.path: loc for loc in read_iis(CmdResult(0, text, ""), server)}


def real_file(name: str) -> str:
    return (REAL / f"{name}_ApplicationHost.config").read_text(encoding="utf-8")


def config(*locations_xml: str, root: str = "") -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<configuration>{root}{"".join(locations_xml)}</configuration>'


def location(path: str, inner: str) -> str:
    return f'<location path="{path}"><system.webServer><security>{inner}</security></system.webServer></location>'


def ep(value: str) -> str:
    return (
        f'<authentication><windowsAuthentication enabled="true"><extendedProtection tokenChecking="{value}" />'
        "</windowsAuthentication></authentication>"
    )


# ---- the parser on real files ---------------------------------------------------------------------


@real
@pytest.mark.parametrize("name", ["E19_Configured", "E16_Configured"])
def test_real_configured_files_pass_every_location_of_both_sites(name: str) -> None:
    locs = locations(real_file(name))
    assert set(locs) == MATRIX_PATHS and {loc.site for loc in locs.values()} == {FRONT_END, BACK_END}
    assert all(loc.present for loc in locs.values())
    verdicts = {path: judge_location(loc, SUPPORTED, {}) for path, loc in locs.items()}
    assert [v.message for v in verdicts.values() if not v.ok] == []
    assert locs["Exchange Back End/mapi/emsmdb"].token_checking == "Require"
    assert locs["Default Web Site/EWS"].token_checking == "Allow"
    assert locs["Default Web Site/PowerShell"].token_checking == "None"
    assert locs["Exchange Back End/PowerShell"].ssl_flags == "Ssl, SslNegotiateCert, Ssl128"
    # Exchange Back End/owa sets no <access>: its sslFlags come from the site root, as IIS inherits them.
    assert locs["Exchange Back End/owa"].ssl_flags == "Ssl, Ssl128"
    assert all(loc.allow_unlisted and loc.ip_allow_list == () for loc in locs.values())


@real
def test_real_not_configured_file_fails_where_ep_is_expected_and_names_expected_and_actual() -> None:
    locs = locations(real_file("E19_NotConfigured"))
    assert set(locs) == MATRIX_PATHS
    failed = {p: v for p, loc in locs.items() if not (v := judge_location(loc, SUPPORTED, {})).ok}
    assert set(failed) == {p for p in MATRIX_PATHS if IIS_MATRIX[tuple(p.split("/", 1))] != "None"}  # type: ignore[index]
    ecp = failed["Exchange Back End/ecp"]
    assert (ecp.expected, ecp.actual) == ("Require", "None")
    assert "lower than expected" in ecp.message
    assert failed["Exchange Back End/EWS"].expected == "Require or an IP allow-list"
    # Before the August 2022 SU the expected value is None everywhere: the unconfigured file is right,
    # the configured one is too high.
    assert all(judge_location(loc, UNSUPPORTED, {}).ok for loc in locs.values())
    high = judge_location(locations(real_file("E19_Configured"))["Default Web Site/owa"], UNSUPPORTED, {})
    assert not high.ok and "higher than expected" in high.message


# ---- the parser on generated files -----------------------------------------------------------------


def test_ip_allow_list_mitigates_ews_back_end_only() -> None:
    allow = (
        '<ipSecurity allowUnlisted="false"><add ipAddress="192.0.2.0" subnetMask="255.255.255.0" allowed="true" />'
        '<add ipAddress="198.51.100.7" /></ipSecurity>'
    )
    locs = locations(
        config(location("Exchange Back End/EWS", ep("None") + allow), location("Exchange Back End/ecp", ep("None") + allow))
    )
    ews = locs["Exchange Back End/EWS"]
    assert not ews.allow_unlisted and [str(r) for r in ews.ip_rules] == ["allow 192.0.2.0/255.255.255.0", "deny 198.51.100.7"]
    verdict = judge_location(ews, SUPPORTED, {})
    assert verdict.ok and "mitigated by an IP allow-list" in verdict.message and "192.0.2.0" in verdict.actual
    # The mitigation is supported on EWS of the back end only.
    assert not judge_location(locs["Exchange Back End/ecp"], SUPPORTED, {}).ok


def test_a_closed_list_without_any_allowed_address_is_no_mitigation() -> None:
    locs = locations(config(location("Exchange Back End/EWS", ep("None") + '<ipSecurity allowUnlisted="false" />')))
    verdict = judge_location(locs["Exchange Back End/EWS"], SUPPORTED, {})
    assert not verdict.ok and "no address is allowed" in verdict.message


def test_inheritance_follows_iis_root_site_and_parent_paths() -> None:
    root = (
        '<system.webServer><security><access sslFlags="None" /><ipSecurity allowUnlisted="false">'
        '<add ipAddress="10.0.0.1" allowed="true" /></ipSecurity></security></system.webServer>'
    )
    text = config(
        location("Exchange Back End", '<access sslFlags="Ssl, Ssl128" />' + ep("Require")),
        location("Exchange Back End/mapi", '<ipSecurity><clear /><add ipAddress="10.0.0.2" allowed="true" /></ipSecurity>'),
        location("Exchange Back End/mapi/nspi", '<ipSecurity><remove ipAddress="10.0.0.2" /></ipSecurity>'),
        root=root,
    )
    locs = locations(text)
    emsmdb, nspi, rpc = (locs[f"Exchange Back End/{v}"] for v in ("mapi/emsmdb", "mapi/nspi", "Rpc"))
    assert not emsmdb.present and emsmdb.token_checking == "Require" and emsmdb.ssl_flags == "Ssl, Ssl128"
    assert [r.ip_address for r in emsmdb.ip_rules] == ["10.0.0.2"]
    assert nspi.ip_rules == () and not nspi.allow_unlisted
    assert [r.ip_address for r in rpc.ip_rules] == ["10.0.0.1"]
    assert locs["Default Web Site/owa"].ssl_flags == "None" and locs["Default Web Site/owa"].token_checking == "None"
    assert "no <location> of its own" in judge_location(emsmdb, SUPPORTED, {}).message


def test_paths_and_values_are_case_insensitive_and_an_unknown_value_is_named() -> None:
    locs = locations(config(location("default web site/OWA", ep("require")), location("Default Web Site/ecp", ep("Always"))))
    assert locs["Default Web Site/owa"].token_checking == "Require"
    bad = judge_location(locs["Default Web Site/ecp"], SUPPORTED, {})
    assert not bad.ok and bad.actual == "invalid: Always" and "IIS refuses this value" in bad.message


def test_inventory_override_names_a_directory_either_way() -> None:
    loc = locations(config(location("Exchange Back End/EWS", ep("None"))))["Exchange Back End/EWS"]
    assert judge_location(loc, SUPPORTED, {"EWS (Exchange Back End)": "None"}).ok
    assert judge_location(loc, SUPPORTED, {"exchange back end/ews": "None"}).ok
    assert not judge_location(loc, SUPPORTED, {"EWS (Default Web Site)": "None"}).ok


# ---- garbage -------------------------------------------------------------------------------------


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    "<configuration>&b;</configuration>"
)
EXTERNAL = '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><configuration>&x;</configuration>'


@pytest.mark.parametrize(
    "text,phrase",
    [
        ("", "is empty"),
        ("\ufeff\r\n", "is empty"),
        ("The system cannot find the file specified.", "not well-formed XML"),
        (config(location("Default Web Site/owa", ep("Require")))[:60], "not well-formed XML"),
        ("<html><body>403</body></html>", "document element is <html>"),
        (BILLION_LAUGHS, "refused: DTDForbidden"),
        (EXTERNAL, "refused: DTDForbidden"),
        ("x" * (33 * 1024 * 1024), "not an IIS configuration file"),
    ],
    ids=["empty", "bom-only", "text", "truncated", "wrong-root", "entities", "external-entity", "huge"],
)
def test_garbage_is_a_clear_error_for_that_server(text: str, phrase: str) -> None:
    with pytest.raises(IisConfigError) as caught:
        read_iis(CmdResult(0, text, ""), "mbx9.contoso.com")
    assert phrase in str(caught.value) and caught.value.server == "mbx9.contoso.com"
    assert caught.value.cmdlet == COMMAND_LINE


def test_a_failed_type_command_is_a_clear_error() -> None:
    with pytest.raises(IisConfigError, match="could not read applicationHost.config: Access is denied."):
        read_iis(CmdResult(1, "", "Access is denied.\r\n"), "mbx9")


@real
def test_a_truncated_real_file_is_a_clear_error() -> None:
    text = real_file("E19_Configured")
    with pytest.raises(IisConfigError, match=r"not well-formed XML \(.*line \d+"):
        parse_application_host(text[: len(text) // 3], "ex1")


# ---- the lab serves the file from its own state -----------------------------------------------------


def lab_org() -> Organization:
    return build_organization(load_inventory(LAB_YML))


def test_lab_type_command_serves_an_applicationhost_config_of_its_state() -> None:
    org = lab_org()
    rc, out, err = winrs.run(org, "mbx1", COMMAND_LINE)
    assert rc == 0 and not err and out.startswith('<?xml version="1.0" encoding="UTF-8"?>\r\n')
    locs = locations(out, "mbx1")
    assert set(locs) == MATRIX_PATHS and all(loc.present for loc in locs.values())
    server = org.server("mbx1")
    for (site, vdir), app in server.iis.items():
        if (site, vdir) in IIS_MATRIX:
            loc = locs[f"{site}/{vdir}"]
            assert (loc.token_checking, loc.ssl_flags) == (app.token_checking, app.ssl_flags), loc.path
    server.iis[(BACK_END, "ecp")].token_checking = "None"
    assert locations(winrs.run(org, "mbx1", COMMAND_LINE)[1])["Exchange Back End/ecp"].token_checking == "None"
    assert winrs.run(org, "mbx1", r'type "C:\Windows\System32\inetsrv\config\nosuch.config"')[:2] == (1, "")


def test_lab_writes_the_ip_mitigation_as_the_script_does() -> None:
    org = lab_org()
    apply_fault(org, Fault("ep_ip_mitigation", {"server": "mbx2", "value": "192.0.2.0/24,127.0.0.1"}))
    ews = locations(winrs.run(org, "mbx2", COMMAND_LINE)[1])["Exchange Back End/EWS"]
    assert ews.token_checking == "None" and not ews.allow_unlisted
    assert [str(r) for r in ews.ip_allow_list] == ["allow 192.0.2.0/255.255.255.0", "allow 127.0.0.1"]


def test_lab_iis_config_is_generated_per_server() -> None:
    org = lab_org()
    org.server("mbx3").iis[(FRONT_END, "owa")].ssl_flags = "Ssl, SslRequireCert"
    assert "SslRequireCert" in lab_iis.application_host_config(org.server("mbx3"))
    assert "SslRequireCert" not in lab_iis.application_host_config(org.server("mbx1"))


# ---- the checks against the lab, over WinRS ------------------------------------------------------------


EP = ["-k", "extended_protection"]


def test_every_lab_server_has_both_sites_times_every_vdir_checked_once(run_checks) -> None:
    result = run_checks(lab_data(), *EP)
    assert result.exit_code == 0, result.messages
    iis = [n.split("[", 1)[1].rstrip("]") for n in result.outcomes if "test_iis_extended_protection_matches" in n]
    for server in ("mbx1", "mbx2", "mbx3", "mbx4"):
        assert {k.split(":", 1)[1] for k in iis if k.startswith(f"{server}:")} == MATRIX_PATHS
    assert all(result.outcomes[n] == "passed" for n in result.outcomes)
    reads = [c for c in result.calls if c[1] == "winrs" and "applicationHost.config" in c[2]]
    assert sorted(c[0] for c in reads) == ["mbx1", "mbx2", "mbx3", "mbx4"]  # once per server, for both checks


def test_a_mitigated_ews_back_end_passes_everywhere(run_checks) -> None:
    faults = [{"kind": "ep_ip_mitigation", "server": s} for s in ("mbx1", "mbx2", "mbx3", "mbx4")]
    result = run_checks(lab_data(faults), *EP)
    assert result.exit_code == 0 and not result.failed(), result.messages
    assert (
        result.outcomes["checks/test_extended_protection.py::test_iis_extended_protection_matches[mbx2:Exchange Back End/EWS]"]
        == "passed"
    )
    assert (
        result.outcomes["checks/test_extended_protection.py::test_extended_protection_matches[mbx2:EWS (Exchange Back End)]"]
        == "passed"
    )


def test_back_end_ecp_without_ep_fails_with_expected_and_actual(run_checks) -> None:
    fault = {"kind": "ep_mismatch", "server": "mbx3", "vdir": "Exchange Back End/ecp", "value": "None"}
    result = run_checks(lab_data([fault]), *EP)
    assert result.exit_code == 1
    wanted = "test_iis_extended_protection_matches[mbx3:Exchange Back End/ecp]"
    message = next(m for n, m in result.messages.items() if wanted in n)
    assert "Exchange Back End/ecp on mbx3 has tokenChecking None" in message
    assert "(expected: Require; actual: None)" in message


def test_cmdlet_and_iis_disagreement_is_reported(run_checks) -> None:
    result = run_checks(
        lab_data([{"kind": "ep_cmdlet_differs", "server": "mbx1", "vdir": "Exchange Back End/PowerShell", "value": "Allow"}]), *EP
    )
    failed = result.short_failed()
    assert "test_cmdlet_and_iis_agree_on_extended_protection[mbx1:Exchange Back End/PowerShell]" in failed
    assert "test_iis_extended_protection_matches[mbx1:Exchange Back End/PowerShell]" not in failed  # IIS is right
    message = " ".join(result.messages.values())
    assert "cmdlet shows ExtendedProtectionTokenChecking Allow but applicationHost.config has tokenChecking Require" in message


def test_an_unreadable_config_fails_only_that_servers_iis_checks(run_checks) -> None:
    result = run_checks(lab_data([{"kind": "iis_config", "server": "mbx2", "value": "denied"}]), *EP)
    assert result.short_failed() == {
        "test_iis_extended_protection_matches[mbx2]",
        "test_cmdlet_and_iis_agree_on_extended_protection[mbx2]",
        "test_iis_ssl_flags_match[mbx2]",
        "test_outlook_anywhere_not_offloading_ssl_with_extended_protection[mbx2:Rpc (Default Web Site)]",
    }
    assert "could not read applicationHost.config: Access is denied." in " ".join(result.messages.values())


def test_back_end_vdirs_come_only_with_show_mailbox_virtual_directories() -> None:
    """Issue 12 item 2 (on main before this branch): the lab honours the switch, dagcheck passes it."""
    from dagcheck.lab.inprocess import InProcessTransport
    from dagcheck.remote.base import Command, Endpoint
    from dagcheck.sources.registry import SOURCES

    t = InProcessTransport(lab_org())

    def names(**params: object) -> list[str]:
        objs = t.run("mbx1", Endpoint.EXCHANGE, Command.of("Get-EcpVirtualDirectory", Server="mbx1", **params))
        return [parse_virtual_directory(o, "mbx1").name for o in objs]

    assert names() == ["ecp (Default Web Site)"]
    assert names(ShowMailboxVirtualDirectories=True) == ["ecp (Default Web Site)", "ecp (Exchange Back End)"]
    assert all("-ShowMailboxVirtualDirectories" in c.render() for c in SOURCES["vdirs"].commands("mbx1"))


def test_a_location_that_does_not_inherit_to_child_applications_stops_there() -> None:
    text = config(
        '<location path="Exchange Back End" inheritInChildApplications="false"><system.webServer><security>'
        + ep("Require")
        + "</security></system.webServer></location>"
    )
    locs = locations(text)
    assert locs["Exchange Back End/owa"].token_checking == "None"
