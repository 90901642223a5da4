"""Microsoft's expected Extended Protection token checking per virtual directory (EXCHANGE-NOTES.md)."""

from __future__ import annotations

FRONT_END = "Default Web Site"
BACK_END = "Exchange Back End"

# vdir (as in the cmdlet's Name, lower-cased) -> (front end, back end); None = not published there.
_MATRIX: dict[str, tuple[str | None, str | None]] = {
    "api": ("Require", "Require"),
    "autodiscover": ("None", "None"),
    "ecp": ("Require", "Require"),
    "ews": ("Allow", "Require"),
    "microsoft-server-activesync": ("Allow", "Require"),
    "oab": ("Allow", "Require"),
    "powershell": ("None", "Require"),
    "owa": ("Require", "Require"),
    "rpc": ("Require", "Require"),
    "mapi": ("Require", None),
    "pushnotifications": (None, "Require"),
    "rpcwithcert": (None, "Require"),
}
LEVELS = {"None": 0, "Allow": 1, "Require": 2}


def supports_extended_protection(build: tuple[int, int, int, int]) -> bool:
    """Builds with the August 2022 SU or later (2019 CU11+/CU12+, 2016 CU22+/CU23+); SE always."""
    major, minor, b, rev = build
    if (major, minor) == (15, 2):
        return (b, rev) >= (1118, 11) or (b == 986 and rev >= 28) or b > 1118
    if (major, minor) == (15, 1):
        return (b, rev) >= (2507, 11) or (b == 2375 and rev >= 30) or b > 2507
    return False


def expected_token_checking(vdir: str, site: str) -> str | None:
    """The matrix value for a virtual directory on a web site, or None when the matrix has no entry."""
    fe, be = _MATRIX.get(vdir.lower(), (None, None))
    return fe if site == FRONT_END else be


def split_vdir_name(name: str) -> tuple[str, str]:
    """'owa (Default Web Site)' -> ('owa', 'Default Web Site')."""
    vdir, _, site = name.rpartition(" (")
    return vdir, site.rstrip(")")
