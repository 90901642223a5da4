"""The few Windows commands the host checks run through WinRS, with their real output formats.

reg.exe query, sc.exe query/queryex, fsutil volume diskfree, netsh http show sslcert, appcmd list site /
apppool and cmd.exe's type (of IIS's applicationHost.config) print what Windows Server 2019 prints (CRLF line
ends, four-space registry indents, the sc.exe block layout); anything else gets cmd.exe's "is not recognized"
error. Results come from the lab's state, never canned.
"""

from __future__ import annotations

import shlex

from dagcheck.lab import iis
from dagcheck.lab.objects import LabServer
from dagcheck.lab.state import Organization

NOT_RECOGNIZED = "'{0}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
REG_NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value.\r\n"
HIVES = {"HKLM": "HKEY_LOCAL_MACHINE", "HKEY_LOCAL_MACHINE": "HKEY_LOCAL_MACHINE"}
SC_STATES = {
    "Running": "4  RUNNING",
    "Stopped": "1  STOPPED",
    "StartPending": "2  START_PENDING",
    "StopPending": "3  STOP_PENDING",
}


# What CreateProcess finds on a Windows Server's PATH (System32) among the programs clients run over WinRS;
# cmd.exe's built-ins (type, dir, echo) are not programs and are found only through cmd.exe.
PROGRAMS = frozenset(
    {
        "cmd",
        "reg",
        "sc",
        "fsutil",
        "powershell",
        "whoami",
        "hostname",
        "ipconfig",
        "netsh",
        "w32tm",
        "systeminfo",
        "tasklist",
        "wevtutil",
        "wmic",
        "certutil",
    }
)


def exists(word: str) -> bool:
    """Whether a program named as the first word of a command line is on the server (a full path counts by
    its file name: the lab's servers have Windows in C:\\Windows)."""
    name = word.strip('"').replace("/", "\\").rsplit("\\", 1)[-1].lower().removesuffix(".exe")
    return name in PROGRAMS


def program(command_line: str) -> str:
    """The program a command line runs (sc, reg, fsutil; cmd /c unwrapped), lower case, without .exe: the
    name a slow_cmdlet fault gives to make that command slow."""
    try:
        words = [w.strip('"') for w in shlex.split(command_line, posix=False)]
    except ValueError:
        return ""
    while len(words) > 1 and words[0].lower() in ("cmd", "cmd.exe") and words[1].lower() == "/c":
        words = words[2:]
    return words[0].lower().removesuffix(".exe") if words else ""


def run(org: Organization, server_name: str, command_line: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one command line, as cmd.exe on the server would give them."""
    try:
        words = [w[1:-1] if len(w) > 1 and w[0] == w[-1] == '"' else w for w in shlex.split(command_line, posix=False)]
    except ValueError:
        return 1, "", "The syntax of the command is incorrect.\r\n"
    while words and words[0].lower() in ("cmd", "cmd.exe") and len(words) > 1 and words[1].lower() == "/c":
        words = words[2:]
    if not words:
        return 0, "", ""
    program = words[0].lower().removesuffix(".exe")
    with org.lock:
        org.start_due_services()
        server = org.server(server_name)
        org.call_log.append((server_name, f"winrs:{program}", {"CommandLine": command_line}))
        if program == "reg" and len(words) >= 3 and words[1].lower() == "query":
            return _reg_query(server, words[2:])
        if program == "sc" and len(words) >= 2 and words[1].lower() in ("query", "queryex"):
            return _sc_query(server, words[2:], ex=words[1].lower() == "queryex")
        if program == "fsutil" and words[1:3] == ["volume", "diskfree"] and len(words) == 4:
            return _diskfree(server, words[3])
        if program == "type" and len(words) == 2:
            return _type(org, server, words[1])
        if program.rsplit("\\", 1)[-1] == "appcmd" and len(words) == 3 and words[1].lower() == "list":
            return _appcmd_list(server, words[2].lower())
        if program == "whoami" and [w.lower() for w in words[1:]] == ["/groups"]:
            return _whoami_groups(org, server)
        if program == "powershell" and CCM_METHOD in command_line:
            return _ccm_reboot_pending(server)
        if program == "netsh" and [w.lower() for w in words[1:]] == ["http", "show", "sslcert"]:
            return _sslcert(server)
    return 1, "", NOT_RECOGNIZED.format(words[0])


# whoami /groups as Windows Server 2019 prints it (columns as wide as their longest value; format guessed from
# public examples, docs/remote-session-shapes.md). A WinRM logon is a network logon: an administrator's token
# holds BUILTIN\Administrators enabled (no UAC filtering for domain accounts).
_GROUPS = [
    ("Everyone", "Well-known group", "S-1-1-0", "Mandatory group, Enabled by default, Enabled group"),
    ("BUILTIN\\Administrators", "Alias", "S-1-5-32-544", "Mandatory group, Enabled by default, Enabled group, Group owner"),
    ("BUILTIN\\Remote Management Users", "Alias", "S-1-5-32-580", "Mandatory group, Enabled by default, Enabled group"),
    ("NT AUTHORITY\\NETWORK", "Well-known group", "S-1-5-2", "Mandatory group, Enabled by default, Enabled group"),
    (
        "CONTOSO\\Organization Management",
        "Group",
        "S-1-5-21-1004336348-1177238915-682003330-1121",
        "Mandatory group, Enabled by default, Enabled group",
    ),
]


def _whoami_groups(org: Organization, server: LabServer) -> tuple[int, str, str]:
    admin = not org.faults_matching("windows_not_admin", server.name)
    rows = [g for g in _GROUPS if admin or g[2] != "S-1-5-32-544"]
    widths = [max(len(r[i]) for r in rows + [("Group Name", "Type", "SID", "Attributes")]) for i in range(4)]
    line = " ".join
    out = [
        "",
        "GROUP INFORMATION",
        "-----------------",
        "",
        line(h.ljust(w) for h, w in zip(("Group Name", "Type", "SID", "Attributes"), widths, strict=True)).rstrip(),
        line("=" * w for w in widths),
    ]
    out += [line(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return 0, "\r\n".join(out) + "\r\n", ""


# The one PowerShell command line the lab answers: the Configuration Manager client's reboot verdict, as
# HealthChecker reads it (Invoke-CimMethod on root\\ccm\\ClientSDK CCM_ClientUtilities).
CCM_METHOD = "CCM_ClientUtilities -MethodName DetermineIfRebootPending"
# Without the client the WMI namespace does not exist. Message text guessed (CIM's "Invalid namespace").
CCM_MISSING = (
    "Invoke-CimMethod : Invalid namespace \r\n    + CategoryInfo          : MetadataError: "
    "(root\\ccm\\ClientSDK:CCM_ClientUtilities:String) [Invoke-CimMethod], CimException\r\n"
    "    + FullyQualifiedErrorId : HRESULT 0x8004100e,Microsoft.Management.Infrastructure.CimCmdlets."
    "InvokeCimMethodCommand\r\n"
)


def _ccm_reboot_pending(server: LabServer) -> tuple[int, str, str]:
    """Format-List RebootPending,IsHardRebootPending of DetermineIfRebootPending's result."""
    if server.ccm_client is None:
        return 1, "", CCM_MISSING
    lines = ["", ""] + [f"{k:<19} : {server.ccm_client.get(k, False)}" for k in ("RebootPending", "IsHardRebootPending")]
    return 0, "\r\n".join(lines) + "\r\n\r\n\r\n", ""


def _normalize_key(key: str) -> str | None:
    hive, _, rest = key.partition("\\")
    full = HIVES.get(hive.upper())
    return f"{full}\\{rest}".rstrip("\\") if full else None


def _reg_query(server: LabServer, args: list[str]) -> tuple[int, str, str]:
    key = _normalize_key(args[0])
    if key is None:
        return 1, "", 'ERROR: Invalid key name.\r\nType "REG QUERY /?" for usage.\r\n'
    values = next((v for k, v in server.registry.items() if k.lower() == key.lower()), None)
    if values is None:
        return 1, "", REG_NOT_FOUND
    if len(args) == 2 and args[1].lower() == "/s":
        return _reg_query_recursive(server, key)
    wanted = None
    if len(args) >= 3 and args[1].lower() == "/v":
        wanted = args[2]
    shown = {n: v for n, v in values.items() if wanted is None or n.lower() == wanted.lower()}
    if wanted is not None and not shown:
        return 1, "", REG_NOT_FOUND
    lines = ["", key]
    for name, (kind, data) in shown.items():
        lines.append(f"    {name}    {kind}    {_reg_data(kind, data)}")
    if wanted is None:
        prefix = key.lower() + "\\"
        lines.append("")
        lines += [k for k in server.registry if k.lower().startswith(prefix) and "\\" not in k[len(prefix) :]]
    return 0, "\r\n".join(lines) + "\r\n\r\n", ""


def _reg_query_recursive(server: LabServer, key: str) -> tuple[int, str, str]:
    """`reg.exe query KEY /s`: the key's values, then each subkey's path and values, depth first.
    Guessed: no "End of search" summary line (that line belongs to /f searches)."""
    prefix = key.lower() + "\\"
    keys = sorted((k for k in server.registry if k.lower() == key.lower() or k.lower().startswith(prefix)), key=str.lower)
    lines = [""]
    for k in keys:
        lines.append(k)
        lines += [f"    {name}    {kind}    {_reg_data(kind, data)}" for name, (kind, data) in server.registry[k].items()]
        lines.append("")
    return 0, "\r\n".join(lines) + "\r\n", ""


def _reg_data(kind: str, data: object) -> str:
    if kind == "REG_DWORD":
        return hex(int(data))  # type: ignore[call-overload]
    if kind == "REG_MULTI_SZ":
        return "\\0".join(data)  # type: ignore[arg-type]
    return str(data)


def _sc_block(name: str, status: str) -> str:
    state = SC_STATES.get(status, "1  STOPPED")
    flags = (
        "(STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)"
        if status == "Running"
        else "(NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)"
    )
    return (
        f"SERVICE_NAME: {name}\r\n        TYPE               : 10  WIN32_OWN_PROCESS\r\n"
        f"        STATE              : {state}\r\n                                {flags}\r\n"
        "        WIN32_EXIT_CODE    : 0  (0x0)\r\n        SERVICE_EXIT_CODE  : 0  (0x0)\r\n"
        "        CHECKPOINT         : 0x0\r\n        WAIT_HINT          : 0x0\r\n"
    )


def _sc_query(server: LabServer, args: list[str], ex: bool) -> tuple[int, str, str]:
    options = {args[i].lower().rstrip("="): args[i + 1] for i in range(0, len(args) - 1, 2) if args[i].endswith("=")}
    names = [a for a in args if not a.endswith("=") and a not in options.values()]
    if names:
        match = next((k for k in server.services if k.lower() == names[0].lower()), None)
        if match is None:
            return (
                1060,
                (
                    "[SC] EnumQueryServicesStatus:OpenService FAILED 1060:\r\n\r\n"
                    "The specified service does not exist as an installed service.\r\n\r\n"
                ),
                "",
            )
        return 0, "\r\n" + _sc_block(match, server.services[match]) + "\r\n", ""
    state = options.get("state", "active").lower()
    shown = [n for n in sorted(server.services) if state == "all" or (server.services[n] == "Running") == (state == "active")]
    return 0, "".join("\r\n" + _sc_block(n, server.services[n]) for n in shown) + "\r\n", ""


def _diskfree(server: LabServer, volume: str) -> tuple[int, str, str]:
    drive = volume.upper().rstrip("\\")
    if drive not in server.volumes:
        return 1, "", "Error:  The system cannot find the path specified.\r\n"
    free, total = server.volumes[drive]
    return (
        0,
        (
            f"Total # of free bytes        : {free}\r\n"
            f"Total # of bytes             : {total}\r\n"
            f"Total # of avail free bytes  : {free}\r\n"
        ),
        "",
    )


def _appcmd_list(server: LabServer, what: str) -> tuple[int, str, str]:
    """appcmd list site(s) / apppool(s): IIS's one line per object (lab.iis.appcmd_list)."""
    kind = {"site": "site", "sites": "site", "apppool": "apppool", "apppools": "apppool"}.get(what)
    if kind is None:
        return 1, f'ERROR ( message:Unknown object type "{what}". )\r\n', ""  # guessed wording
    return 0, iis.appcmd_list(server, kind), ""


FILE_NOT_FOUND = "The system cannot find the file specified.\r\n"
ENVIRONMENT = {"%windir%": iis.WINDIR, "%systemroot%": iis.WINDIR, "%systemdrive%": "C:"}


def _expand(path: str) -> str:
    for name, value in ENVIRONMENT.items():
        start = path.lower().find(name)
        while start != -1:
            path = path[:start] + value + path[start + len(name) :]
            start = path.lower().find(name)
    return path


def _type(org: Organization, server: LabServer, path: str) -> tuple[int, str, str]:
    """cmd.exe's type: the file's bytes as they are. The lab has one file, IIS's applicationHost.config;
    fault iis_config makes it unreadable (value denied) or cut short (value truncated)."""
    if _expand(path).lower() != iis.PATH.lower():
        return 1, "", FILE_NOT_FOUND
    fault = next(iter(org.faults_matching("iis_config", server.name)), None)
    text = iis.application_host_config(server)
    if fault is not None and fault.get("value", "truncated") == "denied":
        return 1, "", "Access is denied.\r\n"
    if fault is not None:
        return 0, text[: len(text) // 2], ""
    return 0, text, ""


# IIS's application id in HTTP.sys, and the two Exchange endpoints: Default Web Site on 443, Exchange Back End
# on 444 (the layout of `netsh http show sslcert` on an Exchange server, as Exchange troubleshooting posts
# show it: "IP:port : 0.0.0.0:444 / Certificate Hash : c71d3d6f..."). Guessed: the padding of the labels.
IIS_APP_ID = "{4dc3e181-e14b-4a21-b022-59fc669b0914}"
SSLCERT_FIELDS = (
    "Application ID",
    "Certificate Store Name",
    "Verify Client Certificate Revocation",
    "Verify Revocation Using Cached Client Certificate Only",
    "Usage Check",
    "Revocation Freshness Time",
    "URL Retrieval Timeout",
    "Ctl Identifier",
    "Ctl Store Name",
    "DS Mapper Usage",
    "Negotiate Client Certificate",
    "Reject Connections",
)
_SSLCERT_VALUES = (
    IIS_APP_ID,
    "My",
    "Enabled",
    "Disabled",
    "Enabled",
    "0",
    "0",
    "(null)",
    "(null)",
    "Disabled",
    "Disabled",
    "Disabled",
)


def _sslcert(server: LabServer) -> tuple[int, str, str]:
    """HTTP.sys's certificate bindings: the front end (443) on the certificate with IIS among its services,
    the back end (444) on setup's self-signed certificate (CN=<server>), as after setup."""
    front = next((c for c in server.certificates if "IIS" in c.services.replace(" ", "").split(",")), None)
    back = next((c for c in server.certificates if c.subject.upper() == f"CN={server.name.upper()}"), front)
    lines = ["", "SSL Certificate bindings:", "-------------------------", ""]
    for endpoint, cert in (("0.0.0.0:443", front), ("0.0.0.0:444", back)):
        if cert is None:
            continue
        rows = [
            ("IP:port", endpoint),
            ("Certificate Hash", cert.thumbprint.lower()),
            *zip(SSLCERT_FIELDS, _SSLCERT_VALUES, strict=True),
        ]
        lines += [f"    {name:<28} : {value}" for name, value in rows] + [""]
    return 0, "\r\n".join(lines) + "\r\n", ""
