"""The files dagcheck keeps (results and digests, journals, locks, baselines, reports, saved folders): written
owner-only and atomically, and read back with a size cap.

Why owner-only: what dagcheck keeps describes a production Exchange organisation (server names, builds,
certificates, maintenance state), and a saved folder holds IIS configuration. Under the usual umask 022 a
plain open() leaves all of it readable by every local account, so every file dagcheck writes goes through
this module: files 0600, directories it creates 0700, whatever the umask (the configuration baseline was
already written this way, through mkstemp; this is that one way, for everything).

Why atomic: a file a later run reads (the previous results, a baseline, a saved answer) must be the old one
or the new one, never half of one; and a failed write must not leave its temporary file behind.

Why a cap on reading: a later run reads files an earlier run (or someone else) left; a file far larger than
dagcheck ever writes is refused from its size, unread, as dagcheck.remote.guard refuses a server's answer.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700
CHUNK = 1024 * 1024


class FileTooLarge(ValueError):
    """A file is over the size dagcheck reads; refused unread (the message names it and the limit)."""


def private_dir(path: str | Path) -> Path:
    """The directory, created (with any missing parent) owner-only; an existing one is left as it is (it may
    be the user's own folder)."""
    target = Path(path)
    missing = []
    for parent in (target, *target.parents):
        if parent.exists():
            break
        missing.append(parent)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made by a concurrent run meanwhile
        os.chmod(folder, DIR_MODE)  # mkdir's mode is masked by the umask
    if not target.is_dir():
        target.mkdir(parents=True, exist_ok=True)  # raises the OSError that says why (a file in the way)
    return target


def write_private(path: str | Path, data: str | bytes) -> Path:
    """Write the whole file atomically, owner-only: a temporary file beside it (mkstemp creates it 0600), then
    os.replace. On any failure the temporary file is removed and the previous file, if any, stays."""
    target = Path(path)
    private_dir(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


@contextlib.contextmanager
def append_private(path: str | Path) -> Iterator[IO[str]]:
    """A text file opened for appending, created owner-only; one left wider by an older dagcheck is narrowed."""
    target = Path(path)
    private_dir(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    narrow(fd)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        yield out


def create_exclusive(path: str | Path) -> int:
    """A new file, owner-only, or FileExistsError (O_CREAT | O_EXCL: atomic, the basis of a lock file)."""
    target = Path(path)
    private_dir(target.parent)
    fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    narrow(fd)
    return fd


def narrow(fd: int) -> None:
    """Owner-only on an open file (the mode given to os.open is masked by the umask only downwards, but a file
    that already existed keeps its mode)."""
    if hasattr(os, "fchmod"):  # POSIX; on Windows the folder's ACL decides
        with contextlib.suppress(OSError):
            os.fchmod(fd, FILE_MODE)


def restrict(path: str | Path | None) -> None:
    """Owner-only on a file written by someone else's code (pytest-html's report, the JUnit XML), if it exists."""
    if path:
        with contextlib.suppress(OSError):
            os.chmod(path, FILE_MODE)


def read_bounded(path: str | Path, cap: int, what: str = "file") -> bytes:
    """The whole file, or FileTooLarge when it is over `cap` bytes: refused from its size before anything is
    read, and cut off if it grows while being read. A directory or a missing file raises its OSError."""
    target = Path(path)
    with target.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise FileTooLarge(f"{target}: the {what} is {size:,} bytes, over the limit of {cap:,}; not read")
        body = bytearray()
        while chunk := f.read(min(CHUNK, cap + 1 - len(body))):
            body += chunk
            if len(body) > cap:
                raise FileTooLarge(
                    f"{target}: the {what} grew past the limit of {cap:,} bytes while it was read; stopped reading"
                )
    return bytes(body)
