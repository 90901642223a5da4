"""One small exception hierarchy, so that every user-facing failure says what, where and what to do."""

from __future__ import annotations


class DagcheckError(Exception):
    """Base of every error dagcheck raises on purpose."""


class InventoryError(DagcheckError):
    """The inventory cannot be used; the message names the file and the path inside it."""

    def __init__(self, file: str, path: str, problem: str) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        where = f"{file}: {path}" if path else file
        super().__init__(f"invalid inventory {where}: {problem}")


class RemoteError(DagcheckError):
    """A remote call did not give a usable answer."""

    def __init__(self, server: str, cmdlet: str, message: str) -> None:
        self.server = server
        self.cmdlet = cmdlet
        self.reason = message
        super().__init__(f"{server}: {cmdlet}: {message}")


class ConnectionFailed(RemoteError):
    """The endpoint could not be reached or refused us (network, TLS, credentials)."""


class CmdletFailed(RemoteError):
    """The cmdlet ran and wrote an error record (ErrorRecord.CategoryInfo is kept)."""

    def __init__(self, server: str, cmdlet: str, message: str, category: str = "", error_id: str = "") -> None:
        self.category = category
        self.error_id = error_id
        detail = f"{message} (category {category}, id {error_id})" if category or error_id else message
        super().__init__(server, cmdlet, detail)


class Throttled(CmdletFailed):
    """The server refused for now: Exchange's throttling (budget errors, the user load quota, the runspace
    quota) or WinRM's shell quota. The transport backs off and retries; this is raised when the budget
    never freed. A verdict of "throttled", not "unreachable": the server answered."""


class OutcomeUnknown(RemoteError):
    """A change was sent and the connection or shell was lost before its answer: it may or may not have
    run. It is never repeated blindly; the caller re-verifies by reading."""


class TransitionRefused(DagcheckError):
    """A maintenance transition was refused by an interlock before anything changed."""


class ParseError(RemoteError):
    """A cmdlet answered, but a property it returned is in no form the sources' parsers know (neither the live
    Exchange type nor its remote-session string form). Never read as a silent zero or empty string:
    the source fails for that one server, and every check that reads it fails with this message."""

    def __init__(self, cmdlet: str, prop: str, value: object, expected: str, server: str = "") -> None:
        self.prop = prop
        self.value = value
        self.expected = expected
        shown = _show(value)
        super().__init__(server, cmdlet, f"cannot read {prop} = {shown}: expected {expected}")
        if not server:  # raised by a parser, which does not know the server; collect adds it
            self.args = (f"{cmdlet}: cannot read {prop} = {shown}: expected {expected}",)

    def on(self, server: str) -> ParseError:
        """The same error, naming the server whose answer could not be read."""
        return ParseError(self.cmdlet, self.prop, self.value, self.expected, server)


def _show(value: object) -> str:
    if value is None:
        return "nothing"
    names = getattr(getattr(value, "PSObject", None), "type_names", None)
    text = repr(str(value)) if isinstance(value, str) or not names else f"{names[0]} {str(value)!r}"
    return text if len(text) <= 120 else text[:117] + "..."


class BadResponse(ConnectionFailed):
    """The endpoint answered, but not with a usable WSMan/PSRP message: not well-formed XML, a DTD (entity
    expansion and external entities are refused before parsing), an answer over the size limit, or an HTTP
    error without a WSMan fault. Like an endpoint that cannot be reached, it costs that server's checks only."""
