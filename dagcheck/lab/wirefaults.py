"""The WSMan faults the lab answers with, shaped as Windows and Exchange answer them.

Sources: the recorded Windows responses in pypsrp's test suite (tests/responses/test_winrs_bad_cmd_id.yml:
InvalidSelectors for an unknown CommandId, with its FaultDetail and message), MS-WSMV 3.1.4.5.2.1
(w:QuotaLimit from Create), the error texts administrators report for MaxShellsPerUser (WSManFault
Code 2150859173) and Exchange's throttling policy (PowerShellMaxConcurrency, PowerShellMaxCmdlets),
and winerror/wsmerror.h for the codes. Where a part was not in any source, a comment says "guessed".
"""

from __future__ import annotations

from dataclasses import dataclass

# wsmerror.h
INVALID_SELECTORS = 2150858843  # 0x8033805B, the code Windows puts on a missing shell or command
TIMED_OUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT: no output within OperationTimeout
QUOTA_MAX_SHELLS = 2150859173  # ERROR_WSMAN_QUOTA_MAX_SHELLS (MaxShellsPerUser)
QUOTA_MAX_OPERATIONS = 2150859174  # ERROR_WSMAN_QUOTA_MAX_OPERATIONS
QUOTA_USER = 2150859175  # ERROR_WSMAN_QUOTA_USER (the user load quota)
ENCODING_LIMIT = 2150858805  # ERROR_WSMAN_ENCODING_LIMIT (code=Sender, subcode EncodingLimit)
FILE_NOT_FOUND = 2147942402  # 0x80070002 ERROR_FILE_NOT_FOUND as an HRESULT
INVALID_PARAMETER = 87  # ERROR_INVALID_PARAMETER
POWERSHELL_PLUGIN_ERROR = 2152992672  # 0x8054_8120: what Exchange's PowerShell plug-in puts on its own faults
INVALID_VALUE = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue"
# The plug-ins that answer each kind of shell, as Windows names them in f:ProviderFault. The cmd plug-in is
# recorded (pypsrp's test_winrs_no_cmd_shell.yml, test_winrs_fail_poll_process.yml); Exchange's from a
# fault an Exchange 2019 server sent (ktecv2000/ProxyShell issue 1); Windows PowerShell's from a fault of
# Windows Server 2016 (microsoft/lis-test issue 894).
CMD_PLUGIN = ("Shell cmd plugin", "%systemroot%\\system32\\winrscmd.dll")
EXCHANGE_PLUGIN = ("PowerShellplugin", "%windir%\\system32\\pwrshplugin.dll")
WINDOWS_POWERSHELL_PLUGIN = ("microsoft.powershell", "C:\\Windows\\system32\\pwrshplugin.dll")
SELECTORS_REASON = (
    "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. "
)
UNEXPECTED_SELECTORS = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"


@dataclass
class WSManFault(Exception):
    """One SOAP fault: Code/Subcode, Reason, and the WSManFault detail (Code, Message) Windows adds."""

    code: int
    subcode: str
    message: str
    status: int = 500
    reason: str | None = None  # s:Reason text when it differs from the detail message
    detail: str | None = None  # w:FaultDetail URI
    sender: bool = False  # s:Sender (the client's fault) rather than s:Receiver
    # (provider, path): the plug-in that raised it, as Windows wraps the message in f:ProviderFault
    provider: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def shell_not_found(shell_id: str | None) -> WSManFault:
    # The message is Windows' own (Exchange Online documents it verbatim); the reason and detail are
    # those of the recorded unknown-CommandId fault (guessed: the same for an unknown ShellId).
    return WSManFault(
        INVALID_SELECTORS,
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and retry the operation. ",
        reason=SELECTORS_REASON,
        detail=UNEXPECTED_SELECTORS,
        sender=True,
    )


def command_not_found() -> WSManFault:
    """As recorded from Windows for a Receive naming a CommandId the shell does not have."""
    return WSManFault(
        INVALID_SELECTORS,
        "w:InvalidSelectors",
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does "
        "not exist. Either the command has completed execution or the client specified an invalid command "
        "identifier. ",
        reason=SELECTORS_REASON,
        detail=UNEXPECTED_SELECTORS,
        sender=True,
    )


def program_not_found() -> WSManFault:
    """A Command with WINRS_SKIP_CMD_SHELL naming a program that is not on the server: recorded from Windows
    (s:Receiver, w:InternalError, Code 2147942402, HTTP 500)."""
    return WSManFault(FILE_NOT_FOUND, "w:InternalError", "The system cannot find the file specified. ", provider=CMD_PLUGIN)


def invalid_parameter() -> WSManFault:
    """A cmd shell's Receive without a CommandId: recorded from Windows (s:Sender, w:InvalidParameter, Code 87,
    FaultDetail InvalidValue, HTTP 500)."""
    return WSManFault(
        INVALID_PARAMETER,
        "w:InvalidParameter",
        "The parameter is incorrect. ",
        detail=INVALID_VALUE,
        sender=True,
        provider=CMD_PLUGIN,
    )


def plugin_error(provider: tuple[str, str], what: str) -> WSManFault:
    """A request the PowerShell plug-in could not process (an unexpected PSRP message, a pipeline it does not
    have, data it cannot decode). Exchange answers such requests with a SOAP fault from its plug-in, not by
    closing the connection: s:Receiver, w:InternalError, Code 2152992672 and an f:ProviderFault are as an
    Exchange 2019 server sent them; the message text here is guessed (the captured one is an RBAC refusal)."""
    return WSManFault(
        POWERSHELL_PLUGIN_ERROR,
        "w:InternalError",
        f"The PowerShell plug-in could not process the request: {what}",
        reason="",
        provider=provider,
    )


def timed_out() -> WSManFault:
    return WSManFault(
        TIMED_OUT,
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ",
    )


def max_shells_per_user(limit: int) -> WSManFault:
    """WinRM's MaxShellsPerUser (winrm/config/winrs; 30 by default since Windows Server 2012), from Create."""
    # s:Receiver is guessed; subcode per MS-WSMV 3.1.4.5.2.1; code and text as reported from real servers.
    return WSManFault(
        QUOTA_MAX_SHELLS,
        "w:QuotaLimit",
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} "
        "concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ",
    )


def powershell_max_concurrency(limit: int) -> WSManFault:
    """Exchange's throttling policy (PowerShellMaxConcurrency, 18 in the default policy) refusing a runspace."""
    # The text is Exchange's as reported from Exchange 2010 ("maximum of N", no "number"), behind
    # PowerShell's "Connecting to remote server failed" prefix, which it puts on faults from Create.
    # Guessed: the code and subcode (those of WinRM's own shell quota), and that Exchange 2016/2019/SE
    # still word it so.
    return WSManFault(
        QUOTA_MAX_SHELLS,
        "w:QuotaLimit",
        f"The WS-Management service cannot process the request. This user is allowed a maximum of {limit} "
        "concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user.",
    )


def user_load_quota(count: int, period: int, wait_ms: int) -> WSManFault:
    """Exchange's PowerShellMaxCmdlets budget: the text administrators report; code and subcode guessed."""
    return WSManFault(
        QUOTA_USER,
        "w:QuotaLimit",
        f"The WS-Management service cannot process the request. The user load quota of {count} requests per "
        f"{period} seconds has been exceeded. Send future requests at a slower rate or raise the quota for this "
        f"user. The next request from this user will not be approved for at least {wait_ms} milliseconds.",
    )


def envelope_too_small(size: int) -> WSManFault:
    """DSP0226 6.2 / MS-WSMAN 3.1.4.1.9: a MaxEnvelopeSize under 8192 octets is refused. The first sentence is
    wsmerror.h's ERROR_WSMAN_ENCODING_LIMIT text; the second (naming the size) is guessed."""
    return WSManFault(
        ENCODING_LIMIT,
        "w:EncodingLimit",
        "The WS-Management service cannot process the request because the encoding of the request "
        f"exceeds an internal encoding limit. MaxEnvelopeSize {size} is below the minimum of 8192.",
        sender=True,
    )


# ---- hostile answers (fault kind "hostile_response"): what a broken or malicious endpoint sends ----------

HOSTILE_SHAPES = ("malformed_xml", "billion_laughs", "xxe", "huge", "huge_declared", "http_500_html", "fault_without_code")
SOAP_OPEN = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing">'
)
# The classic billion-laughs document, as a SOAP envelope whose RelatesTo expands to 10^9 "lol"s.
_LAUGHS = b"".join(
    [b'<?xml version="1.0"?>\n<!DOCTYPE s:Envelope [\n <!ENTITY lol "lol">\n']
    + [
        b' <!ENTITY lol%d "%s">\n' % (i, b"".join([b"&lol%s;" % (str(i - 1).encode() if i > 1 else b"")] * 10))
        for i in range(1, 10)
    ]
    + [b"]>\n", SOAP_OPEN, b"<s:Header><wsa:RelatesTo>&lol9;</wsa:RelatesTo></s:Header><s:Body/></s:Envelope>"]
)
_XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    + SOAP_OPEN
    + b"<s:Header><wsa:RelatesTo>&xxe;</wsa:RelatesTo></s:Header><s:Body/></s:Envelope>"
)
# Guessed: the shape of IIS/ASP.NET's error page when the PowerShell virtual directory's application fails.
_IIS_500 = (
    b'<!DOCTYPE html>\r\n<html>\r\n<head>\r\n<title>Runtime Error</title>\r\n</head>\r\n<body bgcolor="white">'
    b"<span><H1>Server Error in '/PowerShell' Application.<hr width=100% size=1 color=silver></H1><h2> "
    b"<i>Runtime Error</i> </h2></span>" + b"<p>" + b"&nbsp;" * 4000 + b"</p></body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class HostileAnswer:
    """One HTTP answer: status, content type, the body in chunks (so a huge one is never held), and whether
    its length is declared (Content-Length) or only ends with the connection."""

    status: int
    content_type: str
    chunks: tuple[bytes, ...] | None  # None: `size` bytes of padding generated as it is written
    size: int = 0
    declared: bool = True


def hostile_answer(shape: str, size_mb: float = 200) -> HostileAnswer:
    soap = "application/soap+xml;charset=UTF-8"
    if shape == "malformed_xml":  # cut off mid-element, as a proxy that truncates does
        return HostileAnswer(200, soap, (SOAP_OPEN + b"<s:Header><wsa:Action>http://schemas.xml",))
    if shape == "billion_laughs":
        return HostileAnswer(200, soap, (_LAUGHS,))
    if shape == "xxe":
        return HostileAnswer(200, soap, (_XXE,))
    if shape in ("huge", "huge_declared"):  # "huge": no Content-Length, the body ends when the server closes
        return HostileAnswer(200, soap, None, int(size_mb * 1024 * 1024), declared=shape == "huge_declared")
    if shape == "http_500_html":
        return HostileAnswer(500, "text/html; charset=utf-8", (_IIS_500,))
    if shape == "fault_without_code":
        return HostileAnswer(500, soap, (SOAP_OPEN + b"<s:Body><s:Fault/></s:Body></s:Envelope>",))
    raise ValueError(f"hostile_response: unknown shape {shape!r}; shapes: {', '.join(HOSTILE_SHAPES)}")
