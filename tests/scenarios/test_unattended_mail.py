"""The mail as an unattended nightly job relies on it (issue 26): a mail that could not be sent gives the run
its own exit status without hiding a failed check; a plain relay is reachable from the command line; a
username is never sent in clear unless the inventory allows it; the message carries Date and Message-ID,
its trend image as a `cid:` related part (no `data:` URI), a text part that leads with the verdict, and
HTML whose tables fit a phone (measured in headless Chromium at 1000 and 400 px, when installed)."""

from __future__ import annotations

import email
import html
import shutil
import socket
import subprocess
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml

aiosmtpd = pytest.importorskip("aiosmtpd.controller")

from dagcheck import cli  # noqa: E402
from dagcheck.report import mail, trend  # noqa: E402
from tests.conftest import lab_data  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FAULT = [{"kind": "copy_failed", "database": "DB01", "server": "mbx2"}]


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler name
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def relay():
    """A plain relay: no TLS, no AUTH (an internal smarthost)."""
    inbox = _Inbox()
    ctl = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=_free_port())
    ctl.start()
    try:
        yield ctl.port, inbox
    finally:
        ctl.stop()


def _mail_flags(port: int, *extra: str) -> tuple[str, ...]:
    return ("--smtp", f"127.0.0.1:{port}", "--mail-to", "x@y.test", "--mail-from", "a@b.test", "--mail-when", "always", *extra)


def test_health_with_no_smtp_server_listening_exits_10_and_says_the_mail_failed(tmp_path, capsys) -> None:
    """The issue's own command, through the CLI, on a healthy lab: the checks pass, the mail does not go."""
    port = _free_port()  # bound and released: nothing listens there
    code = cli.main(["health", "--reports-dir", str(tmp_path / "reports"), *_mail_flags(port), "-p", "no:cacheprovider", "-q"])
    out = capsys.readouterr().out
    assert code == mail.EXIT_MAIL_FAILED == 10, out[-3000:]
    assert f"dagcheck email: FAILED to send via 127.0.0.1:{port}" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("dagcheck exit 10:") and "MAIL NOT SENT" in last, last
    assert (tmp_path / "reports" / "summary.html").is_file()


def test_a_failed_check_keeps_its_exit_status_when_the_mail_also_fails(run_checks, capsys) -> None:
    result = run_checks(lab_data(FAULT), *_mail_flags(_free_port()))
    out = capsys.readouterr().out
    assert result.exit_code == 1
    assert "dagcheck email: FAILED to send" in out
    assert "dagcheck exit 1: UNHEALTHY" in out and "MAIL NOT SENT" in out


def _body_parts(msg: EmailMessage) -> list[EmailMessage]:
    """Every part a client renders as the message itself: everything but the attached report."""
    attached = {id(p) for p in msg.iter_attachments()}
    return [p for p in msg.walk() if not p.is_multipart() and id(p) not in attached]


def test_a_plain_relay_gets_date_message_id_a_cid_image_and_a_verdict_first_text_part(run_checks, relay, tmp_path) -> None:
    port, inbox = relay
    run_checks(lab_data(FAULT))  # a first nightly run: the second has a trend to draw
    result = run_checks(lab_data(FAULT), *_mail_flags(port, "--smtp-security", "none"))
    assert result.exit_code == 1
    [msg] = inbox.messages
    assert msg["Date"] and email.utils.parsedate_to_datetime(msg["Date"]) is not None
    assert msg["Message-ID"].startswith("<") and msg["Message-ID"].endswith("@b.test>")
    for part in _body_parts(msg):
        if part.get_content_maintype() == "text":
            assert "data:" not in part.get_content(), part.get_content_type()
    html_part = msg.get_body(("html",))
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    image = next(p for p in related.iter_parts() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == f"<{trend.CID}>"
    assert f"src='cid:{trend.CID}'" in html_part.get_content()
    assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    text = msg.get_body(("plain",)).get_content()
    assert text.startswith("NOT HEALTHY: DAG1"), text[:200]
    failures = text.split("Failures (", 1)[1]
    assert "DAG-COPY-001" in failures and "DB01\\mbx2" in failures
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "dagcheck.html"
    _save_rendered(msg, tmp_path)


def _save_rendered(msg: EmailMessage, tmp_path: Path) -> None:
    """Keep the HTML part as a client would show it (its cid: image resolved to the related part) for the
    Chromium test below, which reads it from the same folder."""
    image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    (tmp_path / "trend.png").write_bytes(image.get_content())
    body = msg.get_body(("html",)).get_content().replace(f"cid:{trend.CID}", "trend.png")
    (tmp_path / "mail.html").write_text(body, encoding="utf-8")


def test_a_username_over_security_none_is_a_usage_error_before_any_check(run_checks, capsys) -> None:
    data = lab_data([])
    data["report"] = {"email": {"username": "reports", "password_env": "DAGCHECK_SMTP_TEST_PW"}}
    result = run_checks(data, *_mail_flags(_free_port(), "--smtp-security", "none"))
    assert result.exit_code == 4 and result.outcomes == {}
    err = capsys.readouterr().err
    assert "--smtp-security none with report.email.username 'reports' would send the password in clear" in err
    assert "allow_cleartext_credentials" in err


def test_cleartext_credentials_only_where_the_inventory_allows_them() -> None:
    raw = {"username": "reports", "password_env": "PW", "security": "none"}
    with pytest.raises(ValueError, match="report.email.security: none with report.email.username"):
        mail.from_run(raw, ["x@y"], "always", "relay:25", "a@b")
    allowed = mail.from_run(raw | {"allow_cleartext_credentials": True}, ["x@y"], "always", "relay:25", "a@b")
    assert allowed is not None and allowed.security == "none" and allowed.allow_cleartext_credentials
    over_tls = mail.from_run(raw, ["x@y"], "always", "relay", "a@b", "tls")
    assert over_tls is not None and over_tls.security == "tls" and over_tls.port == 465


def test_the_inventory_schema_accepts_allow_cleartext_credentials(tmp_path) -> None:
    from dagcheck.inventory import load_inventory as load

    data = lab_data([])
    data["report"] = {
        "email": {
            "host": "relay",
            "sender": "a@b",
            "recipients": ["x@y"],
            "security": "none",
            "username": "u",
            "password_env": "PW",
            "allow_cleartext_credentials": True,
        }
    }
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load(path).report["email"]["allow_cleartext_credentials"] is True


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium)")
def test_the_mailed_html_fits_1000_and_400_pixels_in_chromium(run_checks, relay, tmp_path) -> None:
    """The page never scrolls sideways: a wide table scrolls within its own box, so the remediation column
    stays reachable on a phone. Measured in frames of each width (headless Chromium's window has a minimum)."""
    test_a_plain_relay_gets_date_message_id_a_cid_image_and_a_verdict_first_text_part(run_checks, relay, tmp_path)
    body = (tmp_path / "mail.html").read_text(encoding="utf-8")
    frames = "".join(
        f"<iframe id='w{w}' style='width:{w}px;height:900px;border:0' srcdoc=\"{html.escape(body, quote=True)}\"></iframe>"
        for w in (1000, 400)
    )
    probe = tmp_path / "probe.html"
    probe.write_text(
        f"""<!DOCTYPE html><html><body style='margin:0'>{frames}<script>
window.addEventListener('load', () => {{
  const out = [];
  for (const w of [1000, 400]) {{
    const d = document.getElementById('w' + w).contentDocument;
    const tables = [...d.querySelectorAll('table')];
    const boxes = tables.map(t => t.parentElement.getBoundingClientRect().right);
    const scroll = tables.every(t => getComputedStyle(t.parentElement).overflowX === 'auto');
    const img = d.querySelector('img');
    out.push([w, d.documentElement.scrollWidth, tables.length, Math.max(0, ...boxes), scroll,
              img ? img.getBoundingClientRect().width : -1, img ? img.naturalWidth : -1].join(','));
  }}
  const pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = out.join(';');
  document.body.appendChild(pre);
}});
</script></body></html>""",
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1500,1000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    measured = done.stdout.split('<pre id="measured">', 1)[1].split("</pre>", 1)[0]
    rows = [row.split(",") for row in measured.split(";")]
    # The page is never wider than its frame (a vertical scrollbar may take some of the width: narrower is fine).
    assert sorted(int(w) for w, *_ in rows) == [400, 1000], rows
    assert all(int(page) <= int(w) for w, page, *_ in rows), f"page widths (scrollWidth): {rows}"
    for row in rows:
        width, _, tables, right, scrolls, img_width, natural = row
        w = int(width)
        assert int(tables) >= 2 and float(right) <= w and scrolls == "true", row
        assert 0 < float(img_width) <= w and int(natural) > 0, f"the trend image at {w} px: {row}"
