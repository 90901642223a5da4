"""Plain HTTPS GETs the jump host makes itself (the protocols' health pages), with the server's own settings.

The request goes to the server named in the inventory, never to a load-balanced name, with the same
trust decisions as its PowerShell connection: `connection.verify_tls` and `connection.ca_bundle` (a
disabled verification is reported at the end of the run, as for WSMan). No credentials are ever sent:
the health pages answer anonymously, and a page that asks for a logon is reported as such.

Each request is recorded in the run's transcript as the PowerShell line an administrator would type to
repeat it (`Invoke-WebRequest -Uri ...`), so the report shows it beside the cmdlets.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from dagcheck.errors import CmdletFailed
from dagcheck.inventory import Server
from dagcheck.remote.base import Command, Endpoint, Getter, HttpAnswer, Transcript
from dagcheck.remote.failures import https_reason

MAX_BODY = 4096  # a health page is a few dozen bytes; more is read no further


def web_request(url: str) -> Command:
    """The GET as an administrator would repeat it from a PowerShell prompt (transcript, dry runs, README)."""
    return Command.of("Invoke-WebRequest", Uri=url)


def base_uri(server: Server) -> str:
    """Where the server's own IIS front end answers: `connection.health_uri`, else https://<fqdn>.

    With `connection.connect_address`, the request goes to that address (the URI's scheme, port and path
    kept), as the PowerShell connection does: an inventory that names an address because the servers'
    names do not resolve from the jump host would otherwise fail every health page on the name. As for
    WSMan, TLS then verifies the certificate against that address (doctor's advice says so)."""
    configured = getattr(server.connection, "health_uri", None)
    uri = (configured or f"https://{server.fqdn}").rstrip("/")
    address = getattr(server.connection, "connect_address", None)
    if not address:
        return uri
    parts = urlsplit(uri)
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address  # an IPv6 literal
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)).rstrip("/")


class HttpsGetter:
    """GETs against one server's front end; one requests.Session (its TLS settings) per server."""

    def __init__(
        self, server: Server, transcript: Transcript, timeout: float | None = None, unverified: set[str] | None = None
    ) -> None:
        self.server = server
        self.transcript = transcript
        settings = server.connection
        self.verify: bool | str = (settings.ca_bundle or True) if settings.verify_tls else False
        if not settings.verify_tls and unverified is not None:
            unverified.add(server.name)  # reported at the end of the run, like the WSMan connection's
        self.timeout = timeout if timeout is not None else float(min(30, settings.read_timeout))
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy from the environment: the server itself is asked

    # A GET is idempotent: a connection refused or reset (a keep-alive connection the server closed, an IIS
    # reset, a server restarting under the run) is tried once more this long after; TLS failures and timeouts
    # are not. A server that stays down fails its checks with the reason.
    RETRY_AFTER = 1.0

    def get(self, path: str) -> HttpAnswer:
        url = f"{base_uri(self.server)}/{path.lstrip('/')}"
        with self.transcript.record(self.server.name, Endpoint.EXCHANGE, web_request(url)) as inv:
            start = time.perf_counter()
            for attempt in (1, 2):
                try:
                    with self._session.get(
                        url, verify=self.verify, timeout=self.timeout, allow_redirects=False, stream=True
                    ) as response:
                        body = _read(response)
                        inv.objects = 1
                        return HttpAnswer(url, response.status_code, time.perf_counter() - start, body)
                except requests.RequestException as exc:
                    retry = (
                        attempt == 1
                        and isinstance(exc, requests.ConnectionError)
                        and not isinstance(exc, (requests.exceptions.SSLError, requests.Timeout))
                    )
                    if retry:
                        time.sleep(self.RETRY_AFTER)
                        continue
                    inv.message = https_reason(exc)
                    return HttpAnswer(url, None, time.perf_counter() - start, "", https_reason(exc))
            raise AssertionError("unreachable")  # the loop returns on its second attempt

    def close(self) -> None:
        self._session.close()


def _read(response: requests.Response) -> str:
    data = b""
    for chunk in response.iter_content(1024):
        data += chunk
        if len(data) >= MAX_BODY:
            break
    return data[:MAX_BODY].decode(response.encoding or "utf-8", errors="replace")


SAVED_FILE = "health-pages.json"  # per server, in a --save folder: path -> the answer, for --replay


class SavingGetter:
    """Asks live and keeps each answer in the --save folder (dagcheck.remote.replay.SavingTransport.https)."""

    def __init__(self, live: Getter, write: Callable[[Path, str, str], None], server: str) -> None:
        self.live, self.write, self.server = live, write, server.lower()
        self._answers: dict[str, dict[str, Any]] = {}

    def get(self, path: str) -> HttpAnswer:
        answer = self.live.get(path)
        self._answers[path] = dataclasses.asdict(answer)
        self.write(Path(self.server) / SAVED_FILE, json.dumps(self._answers, indent=1, sort_keys=True), "protocol health pages")
        return answer


class ReplayGetter:
    """Answers from a --save folder's health-pages.json (dagcheck.remote.replay.ReplayTransport.https); the
    transcript records it like a live request."""

    def __init__(self, folder: Path, server: str, transcript: Transcript) -> None:
        found = [c for c in folder.iterdir() if c.is_dir() and c.name.lower() == server.lower()] if folder.is_dir() else []
        self.path = (found[0] if found else folder) / SAVED_FILE
        self.server = server
        self.transcript = transcript
        self._answers = json.loads(self.path.read_text(encoding="utf-8-sig")) if self.path.is_file() else None

    def get(self, path: str) -> HttpAnswer:
        saved = (self._answers or {}).get(path)
        with self.transcript.record(self.server, Endpoint.EXCHANGE, web_request(saved["url"] if saved else path)) as inv:
            if self._answers is None or path not in self._answers:
                raise CmdletFailed(self.server, "Invoke-WebRequest", f"{path} is not in the saved data ({self.path})")
            inv.objects = 1
            return HttpAnswer(**self._answers[path])
