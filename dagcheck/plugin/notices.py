"""What the reader must know about the run itself, beside the verdicts, in the words the console, the
summary, the HTML report and the mail share: TLS not verified, credentials sent in clear, a stale
table, and what a maintenance transition did. Reads config.stash; never creates the session."""

from __future__ import annotations

from typing import Any

import pytest

from dagcheck.plugin.keys import SESSION_KEY, STALE_KEY


def unverified_tls(config: pytest.Config) -> list[str]:
    """The servers whose TLS certificates this run did not verify (connection.verify_tls: false)."""
    session = config.stash.get(SESSION_KEY, None)
    return sorted(session.transport.unverified_tls) if session is not None else []


def cleartext_lines(config: pytest.Config) -> list[str]:
    """The servers this run reached in clear (connection.allow_cleartext: true), for the console, the summary
    and the mail (issue 24, item 8)."""
    session = config.stash.get(SESSION_KEY, None)
    names = sorted(session.transport.cleartext) if session is not None else []
    return (
        [
            f"WARNING: credentials and messages went in CLEAR (Basic or unencrypted over http) to {', '.join(names)} "
            "(connection.allow_cleartext: true in the inventory)"
        ]
        if names
        else []
    )


def run_notices(config: pytest.Config) -> list[str]:
    """The results file's notices: a stale build or lifecycle table (its verdicts may miss newer releases),
    credentials in clear, TLS not verified."""
    unverified = unverified_tls(config)
    tls = (
        [
            f"WARNING: TLS certificates were NOT verified for {', '.join(unverified)} (connection.verify_tls: false "
            "in the inventory)"
        ]
        if unverified
        else []
    )
    return [f"Stale table: {line}" for line in config.stash.get(STALE_KEY, [])] + cleartext_lines(config) + tls


def transition_lines(result: Any) -> list[str]:
    """A maintenance transition's plan or record, one line per refusal, step and note."""
    head = (
        f"{'Applied' if result.applied else 'Dry-run (nothing changed; --apply performs it)'}: "
        f"{result.direction} maintenance on {result.server}" + (f", messages to {result.target}" if result.target else "")
    )
    lines = [head]
    if result.resumed_from:
        lines.append(f"Journal: {result.resumed_from}")
    lines += [f"REFUSED [{r.interlock}]: {r.reason}" for r in result.refusals]
    lines += [f"FORCED past [{r.interlock}]: {r.reason}" for r in result.forced]
    for step in result.steps:
        timing = f" ({step.duration:.1f} s)" if step.outcome in ("done", "failed") else ""
        lines.append(f"  {step.outcome:>12}  {step.title}{timing}" + (f": {step.detail}" if step.detail else ""))
        lines += [f"                {c}" for c in step.commands if step.outcome != "already done"]
    lines += [f"Note: {n}" for n in result.notes]
    if result.error:
        lines.append(f"STOPPED: {result.error}")
    return lines
