"""The JUnit XML of a check run, written as it goes rather than held to the end (issue 27: peak memory at fleet
scale).

pytest's junitxml plugin keeps every finished testcase as an ElementTree element (the testcase, its properties
and one element per property, each with its attribute dict) in `LogXML.node_reporters_ordered` until the session
ends, then builds the whole tree and writes it. A check carries about nine properties (id, severity, expected,
actual, remediation...), so that is about 3 KB per check: measured with tracemalloc at 40 servers (10,680
checks), 32 MB held by junitxml alone; at 300 servers, 80,100 checks, about 240 MB of the run's peak.

So, in a run of the checks, pytest's LogXML is replaced (before the session starts) by a subclass that
serializes each testcase when pytest finalizes it, appends the text to a spool file beside the report and keeps
in its place in `node_reporters_ordered` only where the text is (`Spooled`: offset and length), so the order is
pytest's own. At the end it writes the same document pytest writes: the header and the testsuite's tags come from
pytest's own writer (run on a one-element skeleton), each testcase from the spool, or, for a reporter never
finalized (a collection error), serialized as pytest does. A testcase serialized alone is the same text it is
inside the whole tree (JUnit has no namespaces; tests/unit/plugin/test_junit_stream.py compares whole files).

This uses pytest internals (`_pytest.junitxml`: `xml_key`, `LogXML` and its `finalize`, `node_reporters`,
`node_reporters_ordered`, `pytest_sessionfinish`, `logfile`). Where they are not as expected (pyproject allows
pytest>=8), pytest's writer stays in place: the same file, only not streamed. Two cases fall back at the end,
to pytest writing the whole tree from the spooled testcases parsed back (a carriage return in a testcase's text
then comes back as a newline, as XML parsing does): a namespaced attribute (record_xml_attribute with a {uri}
name, whose declaration pytest puts on the root), and a pytest whose skeleton lacks the marker. The spool is
owner-only and is removed when the report is written, when writing it fails, and at unconfigure as a last resort.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import xml.etree.ElementTree as ET
from typing import IO, Any

import pytest
from _pytest import junitxml
from _pytest.stash import StashKey

from dagcheck.plugin.scope import runs_checks

# What the replacement is built from: the original's constructor arguments, then the state it relies on.
ARGUMENTS = ("logfile", "prefix", "suite_name", "logging", "report_duration", "family", "log_passing_tests")
STATE = ("node_reporters", "node_reporters_ordered", "finalize", "pytest_sessionfinish")
MARKER = "dagcheck-spooled-testcases"  # stands for the testcases in the skeleton pytest writes

_LogXML: Any = getattr(junitxml, "LogXML", object)  # object: an unsupported pytest, never instantiated


class Spooled:
    """What is kept of a finished testcase until the end of the run: where its XML text is in the spool."""

    __slots__ = ("offset", "length")

    def __init__(self, offset: int, length: int) -> None:
        self.offset = offset
        self.length = length


class _Fixed:
    """An element standing in a reporter's place when pytest's own writer serializes the list."""

    def __init__(self, element: ET.Element) -> None:
        self._element = element

    def to_xml(self) -> ET.Element:
        return self._element


class StreamingLogXML(_LogXML):  # type: ignore[misc]
    """pytest's LogXML, with each finished testcase moved to a spool file as soon as pytest finalizes it."""

    logfile: str  # pytest's, set by its __init__
    node_reporters: dict[Any, Any]
    node_reporters_ordered: list[Any]

    @classmethod
    def replacing(cls, original: Any) -> StreamingLogXML:
        """A replacement built from the original's settings, with whatever state pytest has already set."""
        streaming = cls(*(getattr(original, name) for name in ARGUMENTS))
        streaming.__dict__.update(original.__dict__)
        return streaming

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spool: IO[bytes] | None = None
        self._spool_path = ""
        self._spool_size = 0
        self._whole_tree = False

    @property
    def spool_path(self) -> str:
        """The spool file while there is one, else ""."""
        return self._spool_path

    def finalize(self, report: Any) -> None:
        open_before = list(self.node_reporters.values())
        super().finalize(report)
        still_open = {id(r) for r in self.node_reporters.values()}
        for reporter in open_before:
            if id(reporter) not in still_open:
                self._spool_out(reporter)

    def _spool_out(self, reporter: Any) -> None:
        """The finalized reporter's testcase to the spool; its place in the ordered list to a Spooled."""
        ordered = self.node_reporters_ordered
        position = next((i for i in range(len(ordered) - 1, -1, -1) if ordered[i] is reporter), None)  # the last, usually
        if position is None:  # not in pytest's list: left to pytest's way at the end
            return
        element = reporter.to_xml()
        if any(name.startswith("{") for node in element.iter() for name in (node.tag, *node.attrib)):
            # A namespaced name (record_xml_attribute("{uri}name", ...)): alone, the testcase would declare its
            # namespace itself; in the whole tree the root does. Kept as an element, and the tree written whole.
            ordered[position] = _Fixed(element)
            self._whole_tree = True
            return
        data = ET.tostring(element, encoding="unicode").encode("utf-8")
        spool = self._open_spool()
        spool.write(data)
        ordered[position] = Spooled(self._spool_size, len(data))
        self._spool_size += len(data)

    def _open_spool(self) -> IO[bytes]:
        if self._spool is None:
            folder = os.path.dirname(os.path.abspath(self.logfile))
            os.makedirs(folder, exist_ok=True)  # as pytest does at the end
            fd, self._spool_path = tempfile.mkstemp(  # 0600
                prefix=f".{os.path.basename(self.logfile)}.", suffix=".spool", dir=folder
            )
            self._spool = os.fdopen(fd, "w+b")
        return self._spool

    def pytest_sessionfinish(self) -> None:
        if self._spool is None:  # nothing finished: pytest's own writer (its short empty testsuite, if so)
            super().pytest_sessionfinish()
            return
        try:
            self._write_report(self._spool)
        finally:
            self.discard_spool()

    def _write_report(self, spool: IO[bytes]) -> None:
        head, marker, tail = ("", "", "") if self._whole_tree else self._skeleton().partition(f"<{MARKER} />")
        if not marker:  # a namespace, or pytest wrote its skeleton some other way: pytest writes the whole tree
            self.node_reporters_ordered = [_Fixed(self._element(entry, spool)) for entry in self.node_reporters_ordered]
            super().pytest_sessionfinish()
            return
        with open(self.logfile, "w", encoding="utf-8") as out:  # as pytest opens it
            out.write(head)
            for entry in self.node_reporters_ordered:
                out.write(self._text(entry, spool))
            out.write(tail)

    def _skeleton(self) -> str:
        """The document pytest writes with one marker element for all the testcases: its header, the testsuite's
        attributes (counts, time, timestamp, host) and global properties exactly as pytest makes them."""
        folder = os.path.dirname(self._spool_path)
        fd, path = tempfile.mkstemp(prefix=f".{os.path.basename(self.logfile)}.", suffix=".skeleton", dir=folder)
        os.close(fd)
        entries, logfile = self.node_reporters_ordered, self.logfile
        try:
            self.node_reporters_ordered, self.logfile = [_Fixed(ET.Element(MARKER))], path
            super().pytest_sessionfinish()
            with open(path, encoding="utf-8") as f:
                return f.read()
        finally:
            self.node_reporters_ordered, self.logfile = entries, logfile
            with contextlib.suppress(OSError):
                os.unlink(path)

    @staticmethod
    def _text(entry: Any, spool: IO[bytes]) -> str:
        if isinstance(entry, Spooled):
            spool.seek(entry.offset)
            return spool.read(entry.length).decode("utf-8")
        return ET.tostring(entry.to_xml(), encoding="unicode")  # never finalized, e.g. a collection error

    @classmethod
    def _element(cls, entry: Any, spool: IO[bytes]) -> ET.Element:
        return ET.fromstring(cls._text(entry, spool)) if isinstance(entry, Spooled) else entry.to_xml()

    def discard_spool(self) -> None:
        """Close and remove the spool file, if there is one; safe to call more than once."""
        spool, self._spool = self._spool, None
        if spool is not None:
            with contextlib.suppress(OSError):
                spool.close()
        if self._spool_path:
            with contextlib.suppress(OSError):
                os.unlink(self._spool_path)
            self._spool_path = ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self) -> None:
        self.discard_spool()  # a last resort: a session that never reached sessionfinish


def supported(original: object) -> bool:
    """The instance is pytest's own LogXML, as this module knows it, with nothing recorded yet."""
    return (
        _LogXML is not object
        and type(original) is _LogXML
        and all(hasattr(original, name) for name in (*ARGUMENTS, *STATE))
        and isinstance(original.node_reporters, dict)  # type: ignore[attr-defined]
        and isinstance(original.node_reporters_ordered, list)  # type: ignore[attr-defined]
        and not original.node_reporters_ordered  # type: ignore[attr-defined]
    )


@pytest.hookimpl(trylast=True)  # after junitxml's configure made its LogXML; before the session starts
def pytest_configure(config: pytest.Config) -> None:
    key: StashKey[Any] | None = getattr(junitxml, "xml_key", None)
    if key is None or not runs_checks(config):
        return
    original = config.stash.get(key, None)
    if original is None or not supported(original):
        return
    streaming = StreamingLogXML.replacing(original)
    config.pluginmanager.unregister(original)
    config.stash[key] = streaming
    config.pluginmanager.register(streaming)
