"""Where secrets come from: Kerberos (none needed), the environment, or a prompt. Never a file."""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass

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


def resolve(server: str, settings: ConnectionSettings, prompt: bool = True) -> Credentials:
    if settings.auth == "kerberos" and not settings.username_env:
        return Credentials()
    if settings.auth == "certificate":
        # The variables hold the paths of the client certificate and its key (PEM), as pypsrp reads files.
        cert = os.environ.get(settings.certificate_pem_env or "")
        key = os.environ.get(settings.certificate_key_pem_env or "")
        if not cert or not key or not os.path.isfile(cert) or not os.path.isfile(key):
            raise ConnectionFailed(server, "connect", "certificate auth needs the environment variables named by "
                                   "connection.certificate_pem_env and certificate_key_pem_env, each holding the "
                                   "path of a PEM file")
        return Credentials(certificate_pem=cert, certificate_key_pem=key)
    username = os.environ.get(settings.username_env or "") if settings.username_env else None
    password = os.environ.get(settings.password_env or "") if settings.password_env else None
    if username and password is None and prompt and sys.stdin.isatty():
        password = getpass.getpass(f"Password for {username} ({server}): ")
    if settings.auth in ("basic", "ntlm") and (not username or password is None):
        raise ConnectionFailed(
            server, "connect",
            f"{settings.auth} auth needs a user name and password: set the environment variables "
            f"{settings.username_env or '<username_env>'} and {settings.password_env or '<password_env>'}",
        )
    return Credentials(username=username, password=password)
