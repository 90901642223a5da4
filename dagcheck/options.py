"""dagcheck's command-line options, registered early through the pytest11 entry point "dagcheck".

Only options live here: registering them before pytest looks for its root directory keeps
`--inventory PATH` working for a path outside the repository. Everything else is dagcheck.plugin,
which the repository's conftest.py loads, so installing dagcheck changes no other project's runs.
"""

from __future__ import annotations

import pytest

from dagcheck import paths
from dagcheck.catalogue import PHASES

ROOT = paths.ROOT
DEFAULT_INVENTORY = paths.LAB_INVENTORY


def positive_integer(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("dagcheck", "Exchange DAG compliance checks")
    group.addoption(
        "--inventory",
        default=None,
        help="inventory YAML (default: $DAGCHECK_INVENTORY, ./dagcheck.yml, ~/.config/dagcheck/inventory.yml, "
        "/etc/dagcheck/inventory.yml, else the embedded simulated lab: dagcheck/locate.py)",
    )
    group.addoption("--server", action="append", default=[], help="check only this server (repeatable)")
    group.addoption("--dag", default=None, help="check only the members of this DAG")
    group.addoption("--phase", default="health", choices=PHASES, help="which phase's checks to run (default: health)")
    group.addoption(
        "--target",
        default=None,
        help="the server that takes the maintenance server's messages (default: a DAG member with "
        "HubTransport Active, same AD site first)",
    )
    group.addoption(
        "--cycle", action="store_true", help="pre-flight, enter maintenance, verify, exit, verify, in one run (needs --server)"
    )
    group.addoption(
        "--apply",
        action="store_true",
        help="perform the maintenance transitions; without it dagcheck only prints and reports the plan",
    )
    group.addoption(
        "--force",
        action="store_true",
        help="override the interlocks that maintenance.force_allowed in the inventory lists (reported)",
    )
    group.addoption(
        "--strict-warnings",
        action="store_true",
        help="fail the run on failed warning-severity checks too (default: only critical ones fail it)",
    )
    group.addoption(
        "--build-table",
        default=None,
        metavar="PATH",
        help="CSV of CUs and their latest SUs to judge builds by (default: dagcheck/data/exchange_builds.csv)",
    )
    group.addoption(
        "--lifecycle-table",
        default=None,
        metavar="PATH",
        help="CSV of products' and CUs' end of support (default: dagcheck/data/exchange_lifecycle.csv)",
    )
    group.addoption(
        "--save",
        default=None,
        metavar="DIR",
        help="also write what every server returned (CLIXML per server and command) into DIR, for --replay",
    )
    group.addoption(
        "--replay",
        default=None,
        metavar="DIR",
        help="run the checks from a folder saved by --save or Export-DagcheckData.ps1; connects to nothing",
    )
    group.addoption(
        "--history-keep",
        type=positive_integer,
        default=None,
        metavar="N",
        help="keep the last N nightly results files (default: report.history_keep, else 90)",
    )
    group.addoption(
        "--mail-to",
        action="append",
        default=[],
        metavar="ADDR",
        help="mail the summary to ADDR (repeatable; replaces report.email.recipients)",
    )
    group.addoption(
        "--mail-when",
        default=None,
        choices=("always", "on_failure", "on_change", "never"),
        help="when to mail (default: report.email.when, else always)",
    )
    group.addoption("--smtp", default=None, metavar="HOST[:PORT]", help="SMTP server (default: report.email.host)")
    group.addoption("--mail-from", default=None, metavar="ADDR", help="sender (default: report.email.sender)")
    group.addoption(
        "--smtp-security",
        default=None,
        choices=("none", "starttls", "tls"),
        help="how to reach the SMTP server: starttls, tls (implicit) or none (default: report.email.security, "
        "else starttls); none with a username needs report.email.allow_cleartext_credentials",
    )
    group.addoption(
        "--rolling",
        default=None,
        metavar="DAG",
        help="patch every member of DAG in turn: gate, enter, patch, exit, verify (dry-run unless --apply)",
    )
    group.addoption(
        "--patch-command",
        default=None,
        metavar="CMD",
        help="with --rolling: the local command that patches a member (default: dags[].patch_command)",
    )
    group.addoption("--patch-pause", action="store_true", help="with --rolling: wait for the operator to confirm each patch")
    group.addoption(
        "--patch-wait",
        action="store_true",
        help="with --rolling: wait until the member reports the target build and answers again",
    )
    group.addoption(
        "--patch-timeout",
        type=float,
        default=3600.0,
        metavar="S",
        help="with --rolling: how long a patch step may take, reboot included (default 3600)",
    )
    group.addoption(
        "--patch-poll",
        type=float,
        default=1.0,
        metavar="S",
        help="with --rolling: seconds between two looks at a member coming back from its patch (default 1)",
    )
    group.addoption(
        "--target-build",
        default=None,
        metavar="BUILD",
        help="with --rolling: the build every member goes to (default: dags[].target_build)",
    )
    group.addoption(
        "--progress-every",
        type=float,
        default=10.0,
        metavar="S",
        help="with --rolling: at least one progress line every S seconds while anything runs (default 10)",
    )
    group.addoption(
        "--reports-dir",
        default=str(paths.DEFAULT_REPORTS),
        help="where the HTML and JUnit reports go (default: reports/ of the checkout)",
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
