"""Where secrets come from: Kerberos (none needed), the environment, or a prompt. Never a file."""

from __future__ import annotations

import getpass
import os
import sys
import threading
from dataclasses import dataclass, field

from dagcheck.errors import ConnectionFailed
from dagcheck.inventory import ConnectionSettings


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    certificate_pem: str | None = None
    certificate_key_pem: str | None = None

    def __repr__(self) -> str:  # never print a secret, not even in a traceback
        return f"Credentials(username={self.username!r}, password={'***' if self.password else None})"


def account_key(settings: ConnectionSettings, creds: Credentials) -> tuple[object, ...]:
    """Which account a logon uses: servers that share it share its fate (one rejection is enough to stop
    using it anywhere). Kept in memory only; the password is part of it so that two passwords for one
    name (different environment variables) stay apart."""
    return (settings.auth, (creds.username or "").lower(), creds.password, creds.certificate_pem)


@dataclass
class CredentialCache:
    """One resolution, and so at most one password prompt, per distinct account per run, however many
    servers, endpoints and threads ask. Lives in memory for the run; never written anywhere."""

    prompt: bool = True
    _resolved: dict[tuple[object, ...], Credentials] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @staticmethod
    def _key(settings: ConnectionSettings) -> tuple[object, ...]:
        user = os.environ.get(settings.username_env) if settings.username_env else None
        return (
            settings.auth,
            settings.username_env,
            user,
            settings.password_env,
            settings.certificate_pem_env,
            settings.certificate_key_pem_env,
        )

    def resolve(self, server: str, settings: ConnectionSettings) -> Credentials:
        key = self._key(settings)
        with self._lock:  # held across the prompt: a second thread for the same account waits for the first
            if key not in self._resolved:
                self._resolved[key] = resolve(server, settings, self.prompt)
            return self._resolved[key]

    def peek(self, settings: ConnectionSettings) -> Credentials | None:
        """The credentials already resolved for these settings, without resolving (never prompts)."""
        with self._lock:
            return self._resolved.get(self._key(settings))


def resolve(server: str, settings: ConnectionSettings, prompt: bool = True) -> Credentials:
    if settings.auth == "kerberos" and not settings.username_env:
        return Credentials()
    if settings.auth == "certificate":
        # The variables hold the paths of the client certificate and its key (PEM), as pypsrp reads files.
        cert = os.environ.get(settings.certificate_pem_env or "")
        key = os.environ.get(settings.certificate_key_pem_env or "")
        if not cert or not key or not os.path.isfile(cert) or not os.path.isfile(key):
            raise ConnectionFailed(
                server,
                "connect",
                "certificate auth needs the environment variables named by "
                "connection.certificate_pem_env and certificate_key_pem_env, each holding the "
                "path of a PEM file",
            )
        return Credentials(certificate_pem=cert, certificate_key_pem=key)
    username = os.environ.get(settings.username_env or "") if settings.username_env else None
    password = os.environ.get(settings.password_env or "") if settings.password_env else None
    if username and password is None and prompt and sys.stdin.isatty():
        password = getpass.getpass(
            f"Password for {username} (asked once per run, for {server} and every server with this account): "
        )
    if settings.auth in ("basic", "ntlm") and (not username or password is None):
        raise ConnectionFailed(
            server,
            "connect",
            f"{settings.auth} auth needs a user name and password: set the environment variables "
            f"{settings.username_env or '<username_env>'} and {settings.password_env or '<password_env>'}",
        )
    return Credentials(username=username, password=password)
