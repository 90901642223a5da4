"""`dagcheck`: the front door. Each subcommand turns into a pytest run of the checks with the right
root directory and configuration, from any working directory; options it does not know go to pytest.

Where the checks are: checks/ and the conftest.py that loads dagcheck.plugin sit at the repository
root, next to the package; a wheel installs the same files under <prefix>/share/dagcheck
(dagcheck.paths finds either). If neither is there, this command says so rather than running nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dagcheck import __version__
from dagcheck.options import ROOT

EXIT_USAGE = 4  # pytest's usage code, which dagcheck documents as its own (README: Exit codes)

USAGE = """dagcheck COMMAND [options] [pytest options]

commands:
  health            nightly health checks of every server (or --dag/--server)
  gate SERVER       the pre-flight gate before patching SERVER
  enter SERVER      enter maintenance (dry-run unless --apply)
  exit SERVER       leave maintenance and verify (dry-run unless --apply)
  cycle SERVER      gate, enter, verify, exit, verify in one run
  rolling DAG       patch every member of DAG in turn (dry-run unless --apply)
  report JSON       re-render the summary HTML from a results file
  lab               serve the simulated DAG (dagcheck lab --help)
  discover --from S write an inventory from what Exchange knows (dagcheck discover --help)
  doctor            diagnose each server's connection, layer by layer (dagcheck doctor --help)

`dagcheck COMMAND --help`: its options. Others (-k, -x ...) go to pytest. Reports
go to reports/ of the checkout (of the current directory if installed).
Exit status: 0 healthy, 1 a check failed or a transition refused, 2 interrupted, 3 internal error,
4 usage or inventory error, 5 no check selected, 8 some server could not be checked, 9 both 1 and 8,
10 the checks passed but the mail was not sent (README: Exit codes and interrupted runs).
Inventory: --inventory, else $DAGCHECK_INVENTORY, ./dagcheck.yml, ~/.config/dagcheck/inventory.yml,
/etc/dagcheck/inventory.yml; only then the simulated lab (the run says so).
`dagcheck --version`: the version.
"""


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which dagcheck documents as "interrupted": exit 4 instead."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# Options of the checks' pytest run that `dagcheck COMMAND --help` lists too (dagcheck.options defines them):
# flag -> (argparse keywords, help). They go to pytest unchanged.
TABLE_OPTIONS = {
    "--build-table": ({"metavar": "PATH"}, "CSV of CUs and their latest SUs (default: the package's table)"),
    "--lifecycle-table": ({"metavar": "PATH"}, "CSV of products' and CUs' end of support (default: the package's table)"),
}
REPORT_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "--history-keep": ({"metavar": "N"}, "keep the last N nightly results files (default: report.history_keep, else 90)"),
    "--mail-to": (
        {"metavar": "ADDR", "action": "append"},
        "mail the summary to ADDR (repeatable; replaces report.email.recipients)",
    ),
    "--mail-when": (
        {"choices": ("always", "on_failure", "on_change", "never")},
        "when to mail (default: report.email.when, else always)",
    ),
    "--smtp": ({"metavar": "HOST[:PORT]"}, "SMTP server (default: report.email.host)"),
    "--smtp-security": (
        {"choices": ("none", "starttls", "tls")},
        "starttls (default), tls (implicit) or none; none with a username needs report.email.allow_cleartext_credentials",
    ),
    "--mail-from": ({"metavar": "ADDR"}, "sender (default: report.email.sender)"),
}


def _passed_on(p: argparse.ArgumentParser, title: str, options: dict[str, tuple[dict[str, Any], str]]) -> None:
    group = p.add_argument_group(title)
    for flag, (kwargs, text) in options.items():
        group.add_argument(flag, dest=_dest(flag), default=None, help=text, **kwargs)


def _dest(flag: str) -> str:
    return "pass_" + flag.lstrip("-").replace("-", "_")


def _forward(args: argparse.Namespace) -> list[str]:
    """The pass-through options the command line gave, as pytest options."""
    out: list[str] = []
    for flag in (*TABLE_OPTIONS, *REPORT_OPTIONS):
        value = getattr(args, _dest(flag), None)
        for one in value if isinstance(value, list) else [] if value is None else [value]:
            out += [flag, str(one)]
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--inventory",
        default=None,
        help="inventory YAML (default: $DAGCHECK_INVENTORY, ./dagcheck.yml, "
        "~/.config/dagcheck/inventory.yml, /etc/dagcheck/inventory.yml, else the simulated lab)",
    )
    p.add_argument("--reports-dir", default=None, help="where reports go (default: reports/ of the checkout)")
    p.add_argument("--strict-warnings", action="store_true", help="failed warnings fail the run too")
    _passed_on(p, "build and lifecycle tables", TABLE_OPTIONS)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dagcheck", usage=USAGE, add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    parser.add_argument("--version", action="version", version=f"dagcheck {__version__}")
    sub = parser.add_subparsers(dest="command", prog="dagcheck")
    health = sub.add_parser("health", description="Nightly health checks.")
    _common(health)
    health.add_argument("--dag", help="only this DAG's members")
    health.add_argument("--server", action="append", default=[], help="only this server (repeatable)")
    health.add_argument("--save", metavar="DIR", help="also save what the servers returned, for --replay")
    health.add_argument("--replay", metavar="DIR", help="judge a saved folder; connects to nothing")
    _passed_on(health, "history and mail (README: Reports)", REPORT_OPTIONS)
    for name, text in (
        ("gate", "The pre-flight gate before patching SERVER."),
        ("enter", "Enter maintenance on SERVER: gate, drain, move, verify (dry-run unless --apply)."),
        ("exit", "Leave maintenance on SERVER and verify (dry-run unless --apply)."),
        ("cycle", "Gate, enter, verify, exit, verify SERVER in one run."),
    ):
        p = sub.add_parser(name, description=text)
        p.add_argument("server", metavar="SERVER")
        _common(p)
        if name != "exit":
            p.add_argument("--target", help="the server that takes SERVER's messages")
        if name != "gate":
            p.add_argument("--apply", action="store_true", help="perform it (default: print the plan)")
            p.add_argument("--force", action="store_true", help="override interlocks the inventory allows")
    rolling = sub.add_parser(
        "rolling",
        description="Patch every member of DAG in turn: target gate, pre-flight gate, "
        "enter, patch step, build check, exit, post-maintenance checks (dry-run unless --apply).",
    )
    rolling.add_argument("dag", metavar="DAG")
    _common(rolling)
    rolling.add_argument("--apply", action="store_true", help="perform it (default: print the plan)")
    rolling.add_argument("--patch-command", metavar="CMD", help="the local command that patches a member")
    rolling.add_argument("--patch-pause", action="store_true", help="wait for the operator to confirm each patch")
    rolling.add_argument("--patch-wait", action="store_true", help="wait until the member reports the target build")
    rolling.add_argument("--patch-timeout", metavar="S", help="how long a patch step may take (default 3600)")
    rolling.add_argument("--patch-poll", metavar="S", help="seconds between two looks at a member coming back (default 1)")
    rolling.add_argument("--target-build", metavar="BUILD", help="the build every member goes to")
    rolling.add_argument("--progress-every", metavar="S", help="a progress line at least every S seconds (default 10)")
    report = sub.add_parser("report", description="Re-render the summary HTML from a results JSON file.")
    report.add_argument("results", metavar="JSON")
    report.add_argument("--previous", metavar="JSON", help="compare with this earlier results file")
    report.add_argument("-o", "--output", default="summary.html", help="output file (default: summary.html)")
    sub.add_parser("lab", description="Serve the lab (see dagcheck lab --help for its options).", add_help=False)
    _first_run_commands(sub)
    return parser


def _first_run_commands(sub: Any) -> None:
    """discover and doctor: the first hour with a real organisation (dagcheck/discover.py, dagcheck/doctor.py)."""
    disc = sub.add_parser(
        "discover",
        description="Write an inventory from what Exchange knows: every server (FQDN, "
        "AD site, DAG), each DAG's members and witness, the Autodiscover SCP per site, the activation "
        "policy and builds. Over an existing OUT it shows what changed and keeps your expectations. "
        "Exit 0 written or unchanged, 1 changes shown (OUT kept), 4 bad seed or OUT, 8 SERVER not asked.",
    )
    disc.add_argument("--from", dest="source", required=True, metavar="SERVER", help="the Exchange server to ask")
    disc.add_argument(
        "--inventory",
        default=None,
        metavar="FILE",
        help="connection settings (auth, TLS, credential variables, connection.endpoints); may list only SERVER",
    )
    disc.add_argument("--output", required=True, metavar="OUT", help="the inventory to write")
    disc.add_argument("--dag", action="append", default=[], help="only this DAG (repeatable)")
    disc.add_argument("--site", action="append", default=[], help="only servers of this AD site, and DAGs with a member there")
    disc.add_argument("--update", action="store_true", help="over an existing OUT: rewrite its sites, servers and dags")
    doc = sub.add_parser(
        "doctor",
        description="Diagnose each server's connection, stopping at the first failing layer: "
        "name, TCP, TLS, authentication, Exchange session, RBAC, Windows endpoint. Exit 0 only when "
        "every server is ready, 8 otherwise, 4 on a bad inventory or --server.",
    )
    doc.add_argument("--inventory", default=None, help="the inventory (found as for health when not given)")
    doc.add_argument("--server", action="append", default=[], help="only this server (repeatable)")


def _first_run(args: argparse.Namespace) -> int:
    if args.command == "discover":
        from dagcheck import discover

        return discover.main(args.source, args.inventory, args.output, args.dag, args.site, args.update)
    from dagcheck import doctor

    return doctor.main(args.inventory, args.server)


PHASE_ARGS = {
    "gate": ["--phase", "preflight"],
    "enter": ["--phase", "maintenance"],
    "exit": ["--phase", "postflight"],
    "cycle": ["--cycle"],
}


def pytest_args(args: argparse.Namespace, rest: list[str]) -> list[str]:
    """The pytest command line a subcommand stands for."""
    out = [str(ROOT / "checks"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")]
    # Without --inventory the plugin finds one (dagcheck.locate), from the directory the command runs in.
    out += ["--inventory", str(Path(args.inventory).resolve())] if args.inventory else []
    if args.reports_dir:
        out += ["--reports-dir", str(Path(args.reports_dir).resolve())]
    if args.strict_warnings:
        out.append("--strict-warnings")
    out += _forward(args)
    if args.command == "health":
        out += ["--phase", "health"] + (["--dag", args.dag] if args.dag else [])
        for server in args.server:
            out += ["--server", server]
        out += ["--save", str(Path(args.save).resolve())] if args.save else []
        out += ["--replay", str(Path(args.replay).resolve())] if args.replay else []
    elif args.command == "rolling":
        out += ["--rolling", args.dag] + (["--apply"] if args.apply else [])
        out += ["--patch-command", args.patch_command] if args.patch_command else []
        out += ["--patch-pause"] if args.patch_pause else []
        out += ["--patch-wait"] if args.patch_wait else []
        out += ["--patch-timeout", args.patch_timeout] if args.patch_timeout else []
        out += ["--patch-poll", args.patch_poll] if args.patch_poll else []
        out += ["--target-build", args.target_build] if args.target_build else []
        out += ["--progress-every", args.progress_every] if args.progress_every else []
    else:
        out += PHASE_ARGS[args.command] + ["--server", args.server]
        if getattr(args, "target", None):
            out += ["--target", args.target]
        out += ["--apply"] if getattr(args, "apply", False) else []
        out += ["--force"] if getattr(args, "force", False) else []
    return out + rest


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lab"]:
        from dagcheck.lab.__main__ import main as lab_main

        return lab_main(["serve", *argv[1:]])
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        print(USAGE, end="", file=sys.stdout if args.help else sys.stderr)
        return 0 if args.help else EXIT_USAGE
    if rest and args.command in ("report", "discover", "doctor"):
        # These do not hand over to pytest, so nothing would read what is left: `dagcheck report a.json
        # b.json` rendered a.json alone and said nothing of b.json (issue 27's design note found it).
        print(
            f"dagcheck {args.command}: unrecognized arguments: {' '.join(rest)}"
            + (" (report reads one results file; --previous names the one to compare with)" if args.command == "report" else ""),
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.command == "report":
        return _report(args)
    if args.command in ("discover", "doctor"):
        return _first_run(args)
    if not (ROOT / "checks").is_dir() or not (ROOT / "conftest.py").is_file():
        print(
            f"dagcheck: the checks are not at {ROOT / 'checks'}: this installation lacks its data files "
            "(share/dagcheck); reinstall dagcheck with pip",
            file=sys.stderr,
        )
        return 4
    import pytest

    return int(pytest.main(pytest_args(args, rest)))


def _report(args: argparse.Namespace) -> int:
    from dagcheck.files import write_private
    from dagcheck.report import summary
    from dagcheck.report.results import read

    try:
        current = read(Path(args.results))
        previous = read(Path(args.previous)) if args.previous else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"dagcheck report: cannot read {args.results}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    write_private(Path(args.output), summary.render(current, previous, standalone=True))
    print(f"{summary.verdict(current)[1]}\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
