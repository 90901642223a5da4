"""README's commands stay true to the commands (issue 26): every command block runs dagcheck, pytest and
python from the venv the set-up makes; every option README gives `dagcheck COMMAND` is in that command's
--help; and no example quotes a pass count, which goes stale with every new check (it said 595 when the
lab ran 755)."""

from __future__ import annotations

import re
import shlex

import pytest

from dagcheck import cli
from dagcheck.options import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def _command_lines() -> list[str]:
    """Each command of the sh blocks, with its continuation lines joined and its comment dropped."""
    out = []
    for block in _blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                out.append(line.split(" #", 1)[0].strip())
    return out


def _dagcheck_commands() -> list[list[str]]:
    """`dagcheck ...` as README gives it: in sh blocks and in `inline code` (the Running it table)."""
    found = [line for line in _command_lines() if re.match(r"(\.venv/bin/)?dagcheck ", line)]
    found += re.findall(r"`((?:\.venv/bin/)?dagcheck [^`]+)`", README)
    commands = {*_subparsers().choices, "--help", "--version"}
    # Inline code that quotes dagcheck's output ("dagcheck exit 8: ...", "dagcheck email: ...") is no command.
    return [argv for c in found if (argv := shlex.split(c.split(" &")[0])[1:])[:1] and argv[0] in commands]


def _subparsers():
    return next(a for a in cli._parser()._actions if a.dest == "command")


def test_every_command_block_runs_the_venvs_programs() -> None:
    bare = [line for line in _command_lines() if re.match(r"(dagcheck|pytest|python)\b", line)]
    assert bare == [], "write these as .venv/bin/...: " + "; ".join(bare)
    assert ". .venv/bin/activate" in README


def _help_of(command: str) -> str:
    return _subparsers().choices[command].format_help()  # type: ignore[attr-defined]


def test_every_option_readme_gives_dagcheck_is_in_its_help() -> None:
    commands = _dagcheck_commands()
    assert len(commands) >= 15  # the table and the examples: the parse found them
    missing = []
    for argv in commands:
        command = argv[0]
        if command.startswith("-") or command == "lab":  # the lab's own options: dagcheck lab --help
            continue
        text = _help_of(command)
        missing += [
            f"dagcheck {command} {flag}"
            for flag in argv[1:]
            if flag.startswith("--") and f"{flag.split('=')[0]} " not in text and f"{flag.split('=')[0]}\n" not in text
        ]
    assert missing == []


def test_help_lists_the_mail_history_and_table_options() -> None:
    text = _help_of("health")
    for flag in (
        "--mail-to",
        "--mail-when",
        "--smtp ",
        "--smtp-security",
        "--mail-from",
        "--history-keep",
        "--build-table",
        "--lifecycle-table",
    ):
        assert flag in text, flag
    assert "--build-table" in _help_of("gate")


def test_no_example_quotes_a_pass_count() -> None:
    quoted = re.findall(r"#[^\n]*\b\d+ passed\b[^\n]*", "\n".join(_blocks("sh")))
    assert quoted == []


@pytest.mark.parametrize(
    "argv",
    [["health", "--no-such-option"], ["health", "--server"], ["bogus"], [], ["health", "--mail-when", "sometimes"], ["report"]],
)
def test_a_usage_error_exits_4_not_2(argv, capsys) -> None:
    """argparse's own status is 2, which dagcheck documents as "interrupted". An option dagcheck does not
    know goes on to pytest, whose usage error is 4 too."""
    try:
        code = cli.main(
            [*argv, "-p", "no:cacheprovider"]
            if argv[:1] == ["health"] and len(argv) == 2 and argv[1] == "--no-such-option"
            else argv
        )
    except SystemExit as stopped:
        code = stopped.code
    assert code == 4
    captured = capsys.readouterr()
    assert "error" in captured.err or argv == []


def test_version(capsys) -> None:
    from dagcheck import __version__

    with pytest.raises(SystemExit) as stopped:
        cli.main(["--version"])
    assert stopped.value.code == 0 and capsys.readouterr().out == f"dagcheck {__version__}\n"


def test_mail_options_given_to_health_reach_pytest() -> None:
    args, rest = cli._parser().parse_known_args(
        [
            "health",
            "--smtp",
            "relay:25",
            "--smtp-security",
            "none",
            "--mail-to",
            "a@b",
            "--mail-to",
            "c@d",
            "--history-keep",
            "7",
            "--build-table",
            "b.csv",
            "-x",
        ]
    )
    line = cli.pytest_args(args, rest)
    joined = " ".join(line)
    assert "--smtp relay:25" in joined and "--smtp-security none" in joined and "--history-keep 7" in joined
    assert "--mail-to a@b --mail-to c@d" in joined and "--build-table b.csv" in joined and line[-1] == "-x"
