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
SELECTORS_REASON = ("The WS-Management service cannot process the request because the request contained invalid "
                    "selectors for the resource. ")
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

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def shell_not_found(shell_id: str | None) -> WSManFault:
    # The message is Windows' own (Exchange Online documents it verbatim); the reason and detail are
    # those of the recorded unknown-CommandId fault (guessed: the same for an unknown ShellId).
    return WSManFault(
        INVALID_SELECTORS, "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not "
        "found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer "
        "exists on the server. Provide the correct ShellId or create a new shell and retry the operation. ",
        reason=SELECTORS_REASON, detail=UNEXPECTED_SELECTORS, sender=True)


def command_not_found() -> WSManFault:
    """As recorded from Windows for a Receive naming a CommandId the shell does not have."""
    return WSManFault(
        INVALID_SELECTORS, "w:InvalidSelectors",
        "The Windows Remote Shell received a request to perform an operation on a command identifier that does "
        "not exist. Either the command has completed execution or the client specified an invalid command "
        "identifier. ", reason=SELECTORS_REASON, detail=UNEXPECTED_SELECTORS, sender=True)


def timed_out() -> WSManFault:
    return WSManFault(TIMED_OUT, "w:TimedOut", "The WS-Management service cannot complete the operation within "
                      "the time specified in OperationTimeout.  ")


def max_shells_per_user(limit: int) -> WSManFault:
    """WinRM's MaxShellsPerUser (winrm/config/winrs; 30 by default since Windows Server 2012), from Create."""
    # s:Receiver is guessed; subcode per MS-WSMV 3.1.4.5.2.1; code and text as reported from real servers.
    return WSManFault(
        QUOTA_MAX_SHELLS, "w:QuotaLimit",
        f"The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} "
        "concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. ")


def powershell_max_concurrency(limit: int) -> WSManFault:
    """Exchange's throttling policy (PowerShellMaxConcurrency, 18 in the default policy) refusing a runspace."""
    # The text is Exchange's as reported from Exchange 2010 ("maximum of N", no "number"), behind
    # PowerShell's "Connecting to remote server failed" prefix, which it puts on faults from Create.
    # Guessed: the code and subcode (those of WinRM's own shell quota), and that Exchange 2016/2019/SE
    # still word it so.
    return WSManFault(
        QUOTA_MAX_SHELLS, "w:QuotaLimit",
        f"The WS-Management service cannot process the request. This user is allowed a maximum of {limit} "
        "concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user.")


def user_load_quota(count: int, period: int, wait_ms: int) -> WSManFault:
    """Exchange's PowerShellMaxCmdlets budget: the text administrators report; code and subcode guessed."""
    return WSManFault(
        QUOTA_USER, "w:QuotaLimit",
        f"The WS-Management service cannot process the request. The user load quota of {count} requests per "
        f"{period} seconds has been exceeded. Send future requests at a slower rate or raise the quota for this "
        f"user. The next request from this user will not be approved for at least {wait_ms} milliseconds.")


def envelope_too_small(size: int) -> WSManFault:
    """DSP0226 6.2 / MS-WSMAN 3.1.4.1.9: a MaxEnvelopeSize under 8192 octets is refused. The first sentence is
    wsmerror.h's ERROR_WSMAN_ENCODING_LIMIT text; the second (naming the size) is guessed."""
    return WSManFault(ENCODING_LIMIT, "w:EncodingLimit",
                      "The WS-Management service cannot process the request because the encoding of the request "
                      f"exceeds an internal encoding limit. MaxEnvelopeSize {size} is below the minimum of 8192.",
                      sender=True)
