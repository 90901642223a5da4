"""The nightly summary is mailed over STARTTLS with AUTH to a real SMTP server (aiosmtpd) started here;
a closed port is reported and leaves the reports on disk."""

from __future__ import annotations

import email
import socket
from email import policy
from pathlib import Path

import pytest

aiosmtpd = pytest.importorskip("aiosmtpd.controller")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

from dagcheck.lab.tls import LabCertificate  # noqa: E402
from tests.conftest import lab_data  # noqa: E402


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.auth: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"reports" and auth_data.password == b"s3cret!"
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server(tmp_path: Path):
    cert = LabCertificate()
    inbox = _Inbox()
    ctl = aiosmtpd.Controller(
        inbox,
        hostname="127.0.0.1",
        port=0,
        tls_context=cert.server_context(),
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ctl.port = s.getsockname()[1]
    ctl.start()
    try:
        yield ctl.port, cert.write_ca_bundle(str(tmp_path / "smtp-ca.pem")), inbox
    finally:
        ctl.stop()


def _email(port: int, ca: str | None) -> dict:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "sender": "dagcheck@contoso.test",
        "recipients": ["exchange-team@contoso.test"],
        "username": "reports",
        "password_env": "DAGCHECK_SMTP_TEST_PW",
        **({"ca_file": ca} if ca else {}),
        "when": "on_failure",
        "timeout": 5,
    }


def test_summary_arrives_over_starttls_with_auth(run_checks, smtp_server, monkeypatch, tmp_path) -> None:
    port, ca, inbox = smtp_server
    monkeypatch.setenv("DAGCHECK_SMTP_TEST_PW", "s3cret!")
    data = lab_data([{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}])
    data["report"] = {"email": _email(port, ca)}
    run_checks(data)
    [msg] = inbox.messages
    assert "NOT HEALTHY" in msg["Subject"]
    body = msg.get_body(("html",)).get_content()
    assert "NOT HEALTHY" in body and "DAG-COPY-001" in body and "DB01\\mbx2" in body
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "dagcheck.html"
    assert "dagcheck — Exchange DAG compliance report" in attachment.get_content()


def test_on_failure_sends_nothing_for_a_healthy_run(run_checks, smtp_server, monkeypatch) -> None:
    port, ca, inbox = smtp_server
    monkeypatch.setenv("DAGCHECK_SMTP_TEST_PW", "s3cret!")
    data = lab_data([])
    data["report"] = {"email": _email(port, ca)}
    run_checks(data)
    assert inbox.messages == []


def test_a_closed_port_is_reported_and_the_reports_stay(run_checks, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("DAGCHECK_SMTP_TEST_PW", "s3cret!")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    data = lab_data([{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}])
    data["report"] = {"email": _email(closed, None)}
    result = run_checks(data)
    assert result.exit_code == 1
    out = capsys.readouterr().out
    assert f"dagcheck email: FAILED to send via 127.0.0.1:{closed}" in out
    assert "NOT HEALTHY" in (tmp_path / "reports" / "summary.html").read_text(encoding="utf-8")
    assert (tmp_path / "reports" / "dagcheck.html").is_file()


def test_mail_set_up_from_the_command_line(run_checks, smtp_server, monkeypatch) -> None:
    """The inventory holds only the account and CA; host, sender, recipients and when come from flags."""
    port, ca, inbox = smtp_server
    monkeypatch.setenv("DAGCHECK_SMTP_TEST_PW", "s3cret!")
    data = lab_data([{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}])
    data["report"] = {"email": {"username": "reports", "password_env": "DAGCHECK_SMTP_TEST_PW", "ca_file": ca, "timeout": 5}}
    run_checks(
        data,
        "--smtp",
        f"127.0.0.1:{port}",
        "--mail-from",
        "dagcheck@contoso.test",
        "--mail-to",
        "oncall@contoso.test",
        "--mail-to",
        "exchange@contoso.test",
        "--mail-when",
        "on_failure",
    )
    [msg] = inbox.messages
    assert msg["To"] == "oncall@contoso.test, exchange@contoso.test"
    assert "NOT HEALTHY" in msg["Subject"]


def test_mail_when_never_overrides_the_inventory(run_checks, smtp_server, monkeypatch) -> None:
    port, ca, inbox = smtp_server
    monkeypatch.setenv("DAGCHECK_SMTP_TEST_PW", "s3cret!")
    data = lab_data([{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}])
    data["report"] = {"email": _email(port, ca)}
    result = run_checks(data, "--mail-when", "never")
    assert result.exit_code == 1 and inbox.messages == []


def test_incomplete_mail_set_up_is_a_usage_error_before_any_check(run_checks, capsys) -> None:
    result = run_checks(lab_data([]), "--mail-to", "oncall@contoso.test")
    assert result.exit_code == 4 and result.outcomes == {}
    err = capsys.readouterr().err
    assert "email: host (--smtp), sender (--mail-from) not set" in err
