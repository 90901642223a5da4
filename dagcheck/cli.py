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

from dagcheck.options import DEFAULT_INVENTORY, ROOT

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

`dagcheck COMMAND --help`: its options. Others (-k, -x ...) go to pytest. Reports
go to reports/ of the checkout (of the current directory if installed).
Exit status: 0 healthy, 1 a check failed or a transition refused, 2 interrupted, 3 internal error,
4 usage or inventory error, 5 no check selected, 8 some server could not be checked, 9 both 1 and 8
(README: Exit codes and interrupted runs).
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inventory", default=str(DEFAULT_INVENTORY), help="inventory YAML (default: the lab)")
    p.add_argument("--reports-dir", default=None, help="where reports go (default: reports/ of the checkout)")
    p.add_argument("--strict-warnings", action="store_true", help="failed warnings fail the run too")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dagcheck", usage=USAGE, add_help=False)
    parser.add_argument("-h", "--help", action="store_true")
    sub = parser.add_subparsers(dest="command", prog="dagcheck")
    health = sub.add_parser("health", description="Nightly health checks.")
    _common(health)
    health.add_argument("--dag", help="only this DAG's members")
    health.add_argument("--server", action="append", default=[], help="only this server (repeatable)")
    health.add_argument("--save", metavar="DIR", help="also save what the servers returned, for --replay")
    health.add_argument("--replay", metavar="DIR", help="judge a saved folder; connects to nothing")
    for name, text in (("gate", "The pre-flight gate before patching SERVER."),
                       ("enter", "Enter maintenance on SERVER: gate, drain, move, verify (dry-run unless --apply)."),
                       ("exit", "Leave maintenance on SERVER and verify (dry-run unless --apply)."),
                       ("cycle", "Gate, enter, verify, exit, verify SERVER in one run.")):
        p = sub.add_parser(name, description=text)
        p.add_argument("server", metavar="SERVER")
        _common(p)
        if name != "exit":
            p.add_argument("--target", help="the server that takes SERVER's messages")
        if name != "gate":
            p.add_argument("--apply", action="store_true", help="perform it (default: print the plan)")
            p.add_argument("--force", action="store_true", help="override interlocks the inventory allows")
    rolling = sub.add_parser("rolling", description="Patch every member of DAG in turn: target gate, pre-flight gate, "
                             "enter, patch step, build check, exit, post-maintenance checks (dry-run unless --apply).")
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
    return parser


PHASE_ARGS = {"gate": ["--phase", "preflight"], "enter": ["--phase", "maintenance"],
              "exit": ["--phase", "postflight"], "cycle": ["--cycle"]}


def pytest_args(args: argparse.Namespace, rest: list[str]) -> list[str]:
    """The pytest command line a subcommand stands for."""
    out = [str(ROOT / "checks"), "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
           "--inventory", str(Path(args.inventory).resolve())]
    if args.reports_dir:
        out += ["--reports-dir", str(Path(args.reports_dir).resolve())]
    if args.strict_warnings:
        out.append("--strict-warnings")
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
        print(USAGE, end="")
        return 0 if args.help else 2
    if args.command == "report":
        return _report(args)
    if not (ROOT / "checks").is_dir() or not (ROOT / "conftest.py").is_file():
        print(f"dagcheck: the checks are not at {ROOT / 'checks'}: this installation lacks its data files "
              "(share/dagcheck); reinstall dagcheck with pip", file=sys.stderr)
        return 4
    import pytest

    return int(pytest.main(pytest_args(args, rest)))


def _report(args: argparse.Namespace) -> int:
    from dagcheck.report import summary
    from dagcheck.report.results import read

    try:
        current = read(Path(args.results))
        previous = read(Path(args.previous)) if args.previous else None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"dagcheck report: cannot read {args.results}: {exc}", file=sys.stderr)
        return 2
    Path(args.output).write_text(summary.render(current, previous, standalone=True), encoding="utf-8")
    print(f"{summary.verdict(current)[1]}\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
