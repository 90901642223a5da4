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

import datetime as dt
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from psrpcore.types import serialize_clixml

from dagcheck.clixml import CIPHER, from_clixml_text
from dagcheck.errors import CmdletFailed, DagcheckError
from dagcheck.remote.base import CmdResult, Command, Endpoint, Transcript, Transport

FORMAT = "dagcheck-saved-data"
VERSION = 1
WINRS_FILE = "winrs.json"
MANIFEST = "manifest.json"
READ_VERBS = ("Get-", "Test-")
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


class SavingTransport:
    """Passes every call to the real transport and writes what came back under `folder`.

    Objects are written as the CLIXML the server sent when the transport kept it (the `raw` hook of
    PsrpTransport); otherwise psrpcore serializes the received objects again, which keeps their type
    names and properties."""

    def __init__(self, inner: Transport, folder: str | Path, inventory_file: str = "") -> None:
        self.inner = inner
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()  # run_cmd writes its file under it, and _write takes it again
        self._winrs: dict[str, dict[str, dict[str, Any]]] = {}
        self._raw: dict[tuple[str, str], list[str]] = {}
        self._manifest = {"format": FORMAT, "version": VERSION, "inventory": inventory_file,
                          "saved": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "files": {}}
        if hasattr(inner, "raw_sink"):
            inner.raw_sink = self._keep_raw  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # unverified_tls and the like belong to the real transport

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
        with self._lock:  # one server's command lines share a file: computed and written in one go, in order
            entries = self._winrs.setdefault(server.lower(), {})
            entries[command_line] = {"rc": result.rc, "stdout": result.stdout, "stderr": result.stderr}
            text = json.dumps(entries, indent=1, sort_keys=True)
            self._write(Path(server.lower()) / WINRS_FILE, text, "Windows command lines")
        return result

    def _write(self, relative: Path, text: str, what: str) -> None:
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name of its own per write: two threads saving for one server never share one.
        tmp = path.with_suffix(f"{path.suffix}.{threading.get_ident()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        with self._lock:
            self._manifest["files"][relative.as_posix()] = what
            manifest = json.dumps(self._manifest, indent=1, sort_keys=True)
            (self.folder / MANIFEST).write_text(manifest, encoding="utf-8")

    def close(self) -> None:
        self.inner.close()


def _objs(fragments: list[str]) -> str:
    body = "".join(fragments)
    return f'<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">{body}</Objs>'


def check_folder(folder: str | Path) -> Path:
    """The folder to replay, or a ReplayError that says what is wrong with it."""
    path = Path(folder)
    if not path.is_dir():
        raise ReplayError(f"--replay {folder}: not a folder")
    if not any(path.rglob("*.xml")):
        raise ReplayError(f"--replay {folder}: no saved CLIXML (*.xml) in it; save one with --save DIR, or on an "
                          "Exchange server with contrib/export/Export-DagcheckData.ps1")
    return path


class ReplayTransport:
    """Answers reads from a saved folder; no connection is ever made."""

    def __init__(self, folder: str | Path, transcript: Transcript | None = None) -> None:
        self.folder = check_folder(folder)
        self.transcript = transcript or Transcript()
        self.unverified_tls: set[str] = set()
        self.cleartext: set[str] = set()

    def run(self, server: str, endpoint: Endpoint, command: Command) -> list[Any]:
        with self.transcript.record(server, endpoint, command) as inv:
            if not command.cmdlet.startswith(READ_VERBS):
                raise CmdletFailed(server, command.cmdlet, "replay is read-only: saved data cannot run a change")
            folder = _server_dir(self.folder, server)
            for name in _candidates(command):
                path = folder / name
                if path.is_file():
                    objects = from_clixml_text(path.read_text(encoding="utf-8-sig"))
                    inv.objects = len(objects)
                    return objects
            raise CmdletFailed(server, command.cmdlet, f"not in the saved data ({folder / _candidates(command)[0]})")

    def run_cmd(self, server: str, command_line: str) -> CmdResult:
        command = Command(command_line)
        with self.transcript.record(server, Endpoint.WINRS, command) as inv:
            path = _server_dir(self.folder, server) / WINRS_FILE
            entries = json.loads(path.read_text(encoding="utf-8-sig")) if path.is_file() else {}  # PowerShell 5.1 writes a BOM
            wanted = _normalise(command_line)
            for line, entry in entries.items():
                if _normalise(line) == wanted:
                    inv.objects = 1
                    return CmdResult(int(entry["rc"]), str(entry["stdout"]), str(entry["stderr"]))
            raise CmdletFailed(server, command_line, f"not in the saved data ({path})")

    def close(self) -> None:
        pass


def _normalise(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip()).lower()
