"""The lab's wire, one file per concern: HTTP and authentication, WSMan, PSRP, shells, WinRS."""
