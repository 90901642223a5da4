"""Basic, or unencrypted messages, over http to another host (issue 24, item 8): the password (Base64) and
every message would cross the network in clear. The inventory refuses it, naming the server and the field,
unless that server's connection says `allow_cleartext: true`; then every run says so on the console, in the
summary and in the mail."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from dagcheck import cleartext
from dagcheck.errors import InventoryError
from dagcheck.inventory import parse_inventory
from tests.conftest import lab_data

pytest.importorskip("aiosmtpd.controller")
from tests.unit.report.test_mail import _email, smtp_server  # noqa: E402,F401 - the fixture, reused


def _production(**connection: Any) -> dict[str, Any]:
    data = copy.deepcopy(lab_data())
    data.pop("lab")
    for server in data["servers"]:
        server["connection"] = {
            "exchange_uri": f"http://{server['fqdn']}/PowerShell",
            "windows_uri": f"http://{server['fqdn']}:5985/wsman",
            **connection,
        }
    return data


def test_basic_over_http_to_another_host_is_refused_naming_server_and_field() -> None:
    data = _production(auth="basic", username_env="U", password_env="P", encryption="never")
    with pytest.raises(InventoryError) as exc:
        parse_inventory(data, "prod.yml")
    message = str(exc.value)
    assert "prod.yml: servers[0].connection.allow_cleartext" in message
    assert "server mbx1" in message and "Basic authentication over http://mbx1.lab.contoso.test/PowerShell" in message


def test_basic_over_http_is_refused_whatever_the_encryption_setting() -> None:
    """pypsrp cannot seal Basic: with encryption auto it is sent in clear all the same."""
    with pytest.raises(InventoryError, match="Basic authentication over http"):
        parse_inventory(_production(auth="basic", username_env="U", password_env="P"), "prod.yml")


def test_unencrypted_ntlm_over_http_is_refused_but_sealed_ntlm_is_not() -> None:
    with pytest.raises(InventoryError, match="encryption: never over http://mbx1"):
        parse_inventory(_production(auth="ntlm", username_env="U", password_env="P", encryption="never"), "prod.yml")
    parse_inventory(_production(auth="ntlm", username_env="U", password_env="P", encryption="auto"), "prod.yml")


def test_loopback_https_and_allowed_servers_are_accepted() -> None:
    parse_inventory(_production(auth="basic", username_env="U", password_env="P", connect_address="127.0.0.1"), "x")
    data = _production(auth="basic", username_env="U", password_env="P")
    for server in data["servers"]:
        server["connection"] = {
            **server["connection"],
            "exchange_uri": f"https://{server['fqdn']}/PowerShell",
            "windows_uri": f"https://{server['fqdn']}:5986/wsman",
        }
    parse_inventory(data, "x")
    allowed = _production(auth="basic", username_env="U", password_env="P", allow_cleartext=True)
    assert all(s.connection.allow_cleartext for s in parse_inventory(allowed, "x").servers)
    only_one = _production(auth="basic", username_env="U", password_env="P")
    only_one["servers"][0]["connection"]["allow_cleartext"] = True
    with pytest.raises(InventoryError, match=r"servers\[1\]\.connection\.allow_cleartext.*server mbx2"):
        parse_inventory(only_one, "x")


def test_is_loopback() -> None:
    assert all(map(cleartext.is_loopback, ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"]))
    assert not any(map(cleartext.is_loopback, ["mbx1.contoso.test", "10.0.0.5", "192.0.2.1", "localhost.evil.test"]))


def test_a_refused_inventory_in_a_run_exits_4_before_anything_is_sent(run_checks, capfd) -> None:
    result = run_checks(_production(auth="basic", username_env="U", password_env="P"))
    err = capfd.readouterr().err
    assert result.exit_code == 4 and not result.calls
    assert "servers[0].connection.allow_cleartext" in err and "server mbx1" in err


@pytest.fixture
def running_lab():
    from dagcheck.inventory import load_inventory
    from dagcheck.lab.build import build_organization
    from dagcheck.lab.server import LabServer
    from tests.conftest import LAB_YML

    with LabServer(build_organization(load_inventory(LAB_YML))) as server:
        yield server


def test_an_allowed_cleartext_run_says_so_on_the_console_in_the_summary_and_the_mail(
    running_lab,
    run_checks,
    smtp_server,  # noqa: F811 - the imported fixture
    monkeypatch,
    capfd,
    tmp_path,
) -> None:
    """The lab listens on loopback only, so the test declares loopback to be "another host" (is_loopback
    False): what is under test here is that an accepted cleartext connection is reported everywhere."""
    from dagcheck.lab.persist import PASSWORD_ENV, USERNAME_ENV, inventory_for

    server = running_lab
    port, ca, inbox = smtp_server
    monkeypatch.setenv("DAGCHECK_SMTP_TEST_PW", "s3cret!")
    monkeypatch.setenv(USERNAME_ENV, server.credentials.username)
    monkeypatch.setenv(PASSWORD_ENV, server.credentials.password)
    monkeypatch.setattr(cleartext, "is_loopback", lambda host: False)
    data = inventory_for(lab_data(), server.exchange_uri, server.windows_uri, None, "basic")
    refused = run_checks(copy.deepcopy(data))
    assert refused.exit_code == 4 and not refused.calls  # without allow_cleartext: refused, nothing sent
    capfd.readouterr()
    for s in data["servers"]:
        s["connection"]["allow_cleartext"] = True
    data["report"] = {"email": {**_email(port, ca), "when": "always"}}
    result = run_checks(data)
    out = capfd.readouterr().out
    assert result.exit_code == 0, sorted(result.short_failed())[:5]
    warning = "credentials and messages went in CLEAR (Basic or unencrypted over http) to mbx1, mbx2, mbx3, mbx4"
    assert warning in out
    summaries = list(Path(tmp_path / "reports").rglob("*summary*.html"))
    assert summaries and all(warning in p.read_text(encoding="utf-8") for p in summaries), summaries
    [msg] = inbox.messages
    assert warning in msg.get_body(("html",)).get_content()
