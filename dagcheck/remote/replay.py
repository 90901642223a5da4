"""Offline analysis: save what the servers returned (`--save DIR`), and run the checks from it later
(`--replay DIR`) without any connection, as HealthChecker's -AnalyzeDataOnly does.

A saved folder holds one subfolder per server, one CLIXML file per command (named after the
cmdlet, see `saved_name`), and `winrs.json` with the Windows command lines' results. The same
layout is what `contrib/export/Export-DagcheckData.ps1` writes with Export-Clixml on an Exchange
server, for jump hosts that cannot reach WinRM; HealthChecker-style names (`GetExchangeServer.xml`,
`ExSetup.xml`) are read too, so the CSS-Exchange captures in ../shared/fixtures replay as they are.

Replay is read-only by construction: a cmdlet that is not a Get-/Test- (a transition's Set-,
Suspend-, Move-) is refused, so no transition can pretend to have happened offline.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from psrpcore.types import serialize_clixml

from dagcheck.clixml import CIPHER, from_clixml_text
from dagcheck.errors import BadResponse, CmdletFailed, DagcheckError
from dagcheck.files import FileTooLarge, private_dir, read_bounded, write_private
from dagcheck.remote.base import CmdResult, Command, Endpoint, Getter, Transcript, Transport
from dagcheck.remote.guard import DEFAULT_MAX_RESPONSE_MB, ResponseRefused
from dagcheck.remote.https import ReplayGetter, SavingGetter
from dagcheck.sources import iis_config as iis

FORMAT = "dagcheck-saved-data"
VERSION = 1
WINRS_FILE = "winrs.json"
MANIFEST = "manifest.json"
READ_VERBS = ("Get-", "Test-")
# A saved file is read under the same cap as a server's answer on the live path (dagcheck.remote.guard):
# a file over it is refused from its size, unread, and fails that server's source only.
MAX_FILE_BYTES = DEFAULT_MAX_RESPONSE_MB * 1024 * 1024
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# What a malformed saved file raises from xml.etree, psrpcore's deserializer or json (as on the live path).
PARSE_ERRORS = (ResponseRefused, ET.ParseError, ValueError, KeyError, IndexError, AttributeError, TypeError, RecursionError)
# Other names a file may have for a command: HealthChecker's captures (CSS-Exchange) drop the dash
# and call the ExSetup.exe version file ExSetup.xml.
ALIASES = {"Get-Command.FileVersionInfo": ("ExSetup",)}


class ReplayError(DagcheckError):
    """A saved-data folder that cannot be replayed (missing, or not dagcheck's layout)."""


def saved_name(command: Command) -> str:
    """The file stem for a command's output: the cmdlet, plus the member it was piped into."""
    return f"{command.cmdlet}.{command.member}" if command.member else command.cmdlet


def _candidates(command: Command) -> list[str]:
    stem = saved_name(command)
    names = [stem, stem.replace("-", ""), *ALIASES.get(stem, ())]
    return [f"{n}.xml" for n in dict.fromkeys(names)]


def _server_dir(root: Path, server: str) -> Path:
    """The folder of one server; a flat folder of files stands for the only server replayed."""
    for child in root.iterdir() if root.is_dir() else ():
        if child.is_dir() and child.name.lower() == server.lower():
            return child
    return root


class SavingTransport(Transport):
    """Passes every call to the real transport and writes what came back under `folder`.

    Objects are written as the CLIXML the server sent when the transport kept it (its raw_sink, which
    PsrpTransport calls); otherwise psrpcore serializes the received objects again, which keeps their type
    names and properties. What the report reads (states, notices, lanes, bounds) is the real transport's."""

    def __init__(self, inner: Transport, folder: str | Path, inventory_file: str = "") -> None:
        super().__init__(inner.transcript)
        self.inner = inner
        self.live = inner.live
        self.states = inner.states
        self.unverified_tls = inner.unverified_tls
        self.cleartext = inner.cleartext
        self.folder = private_dir(folder)  # owner-only: it holds what the servers answered
        self._lock = threading.RLock()  # run_cmd writes its file under it, and _write takes it again
        self._winrs: dict[str, dict[str, dict[str, Any]]] = {}
        self._raw: dict[tuple[str, str], list[str]] = {}
        self._manifest: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "inventory": inventory_file,
            "saved": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": {},
        }
        inner.raw_sink = self._keep_raw

    def lanes(self, server: str) -> int:
        return self.inner.lanes(server)

    def call_bound(self, server: str, is_read: bool) -> float | None:
        return self.inner.call_bound(server, is_read)

    def https(self, server: str) -> Getter:
        return SavingGetter(self.inner.https(server), self._write, server)

    def limit_to(self, servers: set[str]) -> None:
        super().limit_to(servers)
        self.inner.limit_to(servers)

    def _keep_raw(self, server: str, command: Command, xml: list[str]) -> None:
        with self._lock:
            self._raw[(server.lower(), command.render())] = xml

    def run(self, server: str, endpoint: Endpoint, command: Command) -> list[Any]:
        objects = self.inner.run(server, endpoint, command)
        if command.cmdlet.startswith(READ_VERBS):
            with self._lock:
                raw = self._raw.pop((server.lower(), command.render()), None)
            text = _objs(raw) if raw is not None and len(raw) == len(objects) else serialize_clixml(objects, CIPHER)
            self._write(Path(server.lower()) / f"{saved_name(command)}.xml", text, command.render())
        return objects

    def run_cmd(self, server: str, command_line: str) -> CmdResult:
        result = self.inner.run_cmd(server, command_line)
        stdout, stderr = result.stdout, result.stderr
        if _normalise(command_line) == _normalise(iis.COMMAND_LINE) and result.rc == 0:
            stdout, stderr = _reduced_application_host(stdout, stderr)
        with self._lock:  # one server's command lines share a file: computed and written in one go, in order
            entries = self._winrs.setdefault(server.lower(), {})
            entries[command_line] = {"rc": result.rc, "stdout": stdout, "stderr": stderr}
            text = json.dumps(entries, indent=1, sort_keys=True)
            self._write(Path(server.lower()) / WINRS_FILE, text, "Windows command lines")
        return result

    def _write(self, relative: Path, text: str, what: str) -> None:
        # Atomic and owner-only (dagcheck.files): a temporary file of its own per write (mkstemp), so two
        # threads saving for one server never share one.
        write_private(self.folder / relative, text)
        with self._lock:
            self._manifest["files"][relative.as_posix()] = what
            manifest = json.dumps(self._manifest, indent=1, sort_keys=True)
            write_private(self.folder / MANIFEST, manifest)

    def close(self) -> None:
        self.inner.close()
        self.left_open = self.inner.left_open


def _reduced_application_host(stdout: str, stderr: str) -> tuple[str, str]:
    """applicationHost.config as saved: only the sections dagcheck reads
    (dagcheck.sources.iis_config.reduce_application_host), never the whole file (app-pool identities,
    encrypted password blobs). A file that cannot be read is not saved at all; the saved answer says why,
    and its replay fails that server's IIS source as the live run did."""
    try:
        return iis.reduce_application_host(stdout), stderr
    except iis.IisConfigError as exc:
        return "", f"dagcheck --save did not keep this applicationHost.config: {exc.reason}"


def _objs(fragments: list[str]) -> str:
    body = "".join(fragments)
    return f'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">{body}</Objs>'


def check_folder(folder: str | Path) -> Path:
    """The folder to replay, or a ReplayError that says what is wrong with it. A manifest (written by --save)
    must be dagcheck's, of this version: a folder of another format or version is refused, not replayed
    without a word. A folder without one (Export-DagcheckData.ps1, HealthChecker's captures) is read as is."""
    path = Path(folder)
    if not path.is_dir():
        raise ReplayError(f"--replay {folder}: not a folder")
    if not any(path.rglob("*.xml")):
        raise ReplayError(
            f"--replay {folder}: no saved CLIXML (*.xml) in it; save one with --save DIR, or on an "
            "Exchange server with contrib/export/Export-DagcheckData.ps1"
        )
    check_manifest(path / MANIFEST)
    return path


def check_manifest(path: Path) -> None:
    """ReplayError unless the manifest (when there is one) names dagcheck's format and this VERSION."""
    if not path.exists() and not path.is_symlink():
        return
    try:
        data = json.loads(_decode(read_bounded(path, MAX_MANIFEST_BYTES, "manifest")))
    except (OSError, *PARSE_ERRORS) as exc:
        raise ReplayError(f"--replay {path}: the manifest cannot be read ({exc})") from None
    found = (data.get("format"), data.get("version")) if isinstance(data, dict) else (None, None)
    if found[0] != FORMAT:
        raise ReplayError(
            f"--replay {path}: the manifest's format is {found[0]!r}, not {FORMAT!r}: not a folder dagcheck --save wrote"
        )
    if found[1] != VERSION:
        raise ReplayError(
            f"--replay {path}: saved data of version {found[1]!r}; this dagcheck replays version "
            f"{VERSION} (save it again with this dagcheck)"
        )


def _decode(raw: bytes) -> str:
    """UTF-8 (a BOM is fine) or UTF-16 with its BOM (Windows PowerShell's Export-Clixml writes UTF-16 LE);
    anything else is refused (ValueError)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-16 text after its byte-order mark ({exc.reason} at byte {exc.start})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"neither UTF-8 nor UTF-16 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


class ReplayTransport(Transport):
    """Answers reads from a saved folder; no connection is ever made.

    Each file is read as a server's answer is on the live path: under the same size cap, a DTD refused
    unparsed, and anything malformed (not XML, not UTF-8/UTF-16, a broken winrs.json) a BadResponse for that
    server's source only. A file (or server folder) that is a symlink leading out of the saved folder is
    never followed."""

    def __init__(self, folder: str | Path, transcript: Transcript | None = None) -> None:
        super().__init__(transcript)
        self.folder = check_folder(folder)
        self.root = self.folder.resolve()

    def https(self, server: str) -> Getter:
        """The health pages' answers saved by --save (health-pages.json), never a request."""
        return ReplayGetter(self.folder, server, self.transcript)

    def run(self, server: str, endpoint: Endpoint, command: Command) -> list[Any]:
        with self.transcript.record(server, endpoint, command) as inv:
            if not command.cmdlet.startswith(READ_VERBS):
                raise CmdletFailed(server, command.cmdlet, "replay is read-only: saved data cannot run a change")
            folder = _server_dir(self.folder, server)
            for name in _candidates(command):
                path = folder / name
                if path.is_file() or path.is_symlink():
                    text = self._read(server, command.cmdlet, path)
                    try:
                        objects = from_clixml_text(text, str(path))
                    except PARSE_ERRORS as exc:
                        raise _bad(server, command.cmdlet, path, exc) from None
                    inv.objects = len(objects)
                    return objects
            raise CmdletFailed(server, command.cmdlet, f"not in the saved data ({folder / _candidates(command)[0]})")

    def run_cmd(self, server: str, command_line: str) -> CmdResult:
        command = Command(command_line)
        with self.transcript.record(server, Endpoint.WINRS, command) as inv:
            path = _server_dir(self.folder, server) / WINRS_FILE
            entries: Any = {}
            if path.is_file() or path.is_symlink():
                try:
                    entries = json.loads(self._read(server, command_line, path))  # PowerShell 5.1 writes a BOM
                except PARSE_ERRORS as exc:
                    raise _bad(server, command_line, path, exc) from None
            if not isinstance(entries, dict):
                raise BadResponse(
                    server,
                    command_line,
                    f"{path}: not dagcheck's winrs.json (a JSON {type(entries).__name__}, not an object of command lines)",
                )
            wanted = _normalise(command_line)
            for line, entry in entries.items():
                if _normalise(line) == wanted:
                    try:
                        result = CmdResult(int(entry["rc"]), str(entry["stdout"]), str(entry["stderr"]))
                    except PARSE_ERRORS as exc:
                        raise _bad(server, command_line, path, exc) from None
                    inv.objects = 1
                    return result
            raise CmdletFailed(server, command_line, f"not in the saved data ({path})")

    def _read(self, server: str, what: str, path: Path) -> str:
        """The text of one saved file, or BadResponse: outside the folder, over the cap, not UTF-8/UTF-16."""
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise BadResponse(server, what, f"{path} leads out of the saved folder (to {resolved}); not followed")
        try:
            return _decode(read_bounded(resolved, MAX_FILE_BYTES, "saved answer"))
        except FileTooLarge as exc:
            raise BadResponse(server, what, f"{exc} (the cap on a server's answer, as on the live path)") from None
        except OSError as exc:
            raise BadResponse(server, what, f"{path} cannot be read ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise _bad(server, what, path, exc) from None

    def close(self) -> None:
        pass


def _bad(server: str, what: str, path: Path, exc: BaseException) -> BadResponse:
    reason = exc.reason if isinstance(exc, ResponseRefused) else f"{type(exc).__name__}: {exc}"
    if len(reason) > 300:
        reason = reason[:297] + "..."
    return BadResponse(server, what, f"the saved answer {path} could not be read ({reason})")


def _normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip()).lower()
