"""Mail the summary: the verdict-first HTML as the body, the full pytest-html report attached.

The password comes only from the environment variable the inventory names (never from a file);
a failure to send is returned as a message for the terminal, and the report on disk is never touched.
A run whose mail was due and not sent exits EXIT_MAIL_FAILED unless the checks already gave it a
non-zero status (a nightly job whose mail breaks must not go silent, nor hide a failed check).

The message is built for real clients: a text part that leads with the verdict and the failures,
an HTML part whose images are `cid:` parts of a multipart/related (Gmail and classic Outlook do not
show `data:` URIs), and the Date and Message-ID headers that RFC 5322 requires of an originator.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

WHEN = ("always", "on_failure", "on_change")
# Above pytest's codes and dagcheck's 8 and 9 (dagcheck.safety): the checks passed, the mail did not go.
EXIT_MAIL_FAILED = 10


@dataclass(frozen=True)
class EmailSettings:
    host: str
    port: int
    security: str  # starttls, tls (implicit), none
    sender: str
    recipients: tuple[str, ...]
    when: str = "always"
    username: str | None = None
    password_env: str | None = None
    ca_file: str | None = None  # a private CA's bundle; the system's trust store otherwise
    timeout: float = 30.0
    allow_cleartext_credentials: bool = False  # a username over security none: only if the inventory says so

    @classmethod
    def from_inventory(cls, raw: dict[str, Any]) -> EmailSettings:
        security = raw.get("security", "starttls")
        return cls(
            raw["host"],
            int(raw.get("port", {"tls": 465, "starttls": 587}.get(security, 25))),
            security,
            raw["sender"],
            tuple(raw["recipients"]),
            raw.get("when", "always"),
            raw.get("username"),
            raw.get("password_env"),
            raw.get("ca_file"),
            float(raw.get("timeout", 30)),
            bool(raw.get("allow_cleartext_credentials", False)),
        )


def from_run(
    raw: dict[str, Any] | None, to: list[str], when: str | None, smtp: str | None, sender: str | None, security: str | None = None
) -> EmailSettings | None:
    """The inventory's report.email with the command line's --mail-to/--mail-when/--smtp/--mail-from/
    --smtp-security over it; None when nothing asks for mail. Raises ValueError naming what is missing
    or wrong."""
    merged = dict(raw or {})
    if security:
        merged["security"] = security
    if not merged and not (to or smtp or sender):
        if when not in (None, "never"):
            raise ValueError(
                f"--mail-when {when}: no mail is set up; give --smtp, --mail-from and --mail-to, or report.email in the inventory"
            )
        return None
    if smtp:
        host, _, port = smtp.rpartition(":") if smtp.rpartition(":")[2].isdigit() else (smtp, "", "")
        merged["host"] = host
        if port:
            merged["port"] = int(port)
    if to:
        merged["recipients"] = list(to)
    if sender:
        merged["sender"] = sender
    if when:
        merged["when"] = when
    missing = [
        f"{name} ({flag})"
        for name, flag in (("host", "--smtp"), ("sender", "--mail-from"), ("recipients", "--mail-to"))
        if not merged.get(name)
    ]
    if missing:
        raise ValueError(f"email: {', '.join(missing)} not set, on the command line or in report.email")
    if merged.get("when") == "never":
        return None
    settings = EmailSettings.from_inventory(merged)
    _refuse_cleartext(settings, from_flag=bool(security))
    return settings


def _refuse_cleartext(settings: EmailSettings, from_flag: bool) -> None:
    """smtplib would send the password as AUTH PLAIN (then AUTH LOGIN) over a connection anyone on the path
    can read: refused unless the inventory says this relay's network is trusted for it."""
    if settings.security != "none" or not settings.username or settings.allow_cleartext_credentials:
        return
    where = "--smtp-security none" if from_flag else "report.email.security: none"
    raise ValueError(
        f"email: {where} with report.email.username {settings.username!r} would send the password in "
        "clear; use --smtp-security starttls or tls, drop the username for an open relay, or set "
        "report.email.allow_cleartext_credentials: true in the inventory for a trusted network"
    )


def due(settings: EmailSettings, failing: bool, changed: bool) -> bool:
    return settings.when == "always" or (settings.when == "on_failure" and failing) or (settings.when == "on_change" and changed)


def build(
    settings: EmailSettings,
    subject: str,
    html_body: str,
    attachment: Path | None,
    text_body: str = "",
    images: dict[str, bytes] | None = None,
) -> EmailMessage:
    """The message: text and HTML alternatives; each of `images` (content id -> PNG) a related part of the
    HTML, which refers to it as `cid:<content id>`; the report file attached."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid("dagcheck", domain=settings.sender.rpartition("@")[2] or None)
    msg.set_content(text_body or "This report is HTML; open it in a mail client that shows HTML, or open the attachment.")
    msg.add_alternative(html_body, subtype="html")
    html_part = next(p for p in msg.iter_parts() if p.get_content_type() == "text/html")
    for cid, png in (images or {}).items():
        html_part.add_related(png, "image", "png", cid=f"<{cid}>", disposition="inline", filename=f"{cid.partition('@')[0]}.png")
    if attachment is not None and attachment.is_file():
        msg.add_attachment(attachment.read_text(encoding="utf-8"), subtype="html", charset="utf-8", filename=attachment.name)
    return msg


def send(settings: EmailSettings, msg: EmailMessage) -> None:
    """Send or raise (smtplib.SMTPException, OSError, KeyError for a missing password variable)."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    password = None
    if settings.username:
        if not settings.password_env or settings.password_env not in os.environ:
            raise KeyError(f"report.email.password_env: environment variable {settings.password_env!r} is not set")
        password = os.environ[settings.password_env]
    if settings.security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with client:
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.username:
            client.login(settings.username, password or "")
        client.send_message(msg)
