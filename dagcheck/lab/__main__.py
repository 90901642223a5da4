"""Run the lab standalone so that an administrator (or any PSRP client) can rehearse against it.

    python -m dagcheck.lab serve --inventory inventory/lab.yml [--port N] [--username U --password P]
                                 [--state FILE] [--write-inventory PATH]

Each simulated server gets its own port (N, N+1, ... when --port is given). The password is read
from --password, else the DAGCHECK_LAB_PASSWORD environment variable, else generated and printed
once on the terminal (never written to disk).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

import yaml

from dagcheck.errors import InventoryError
from dagcheck.inventory import load_inventory
from dagcheck.lab import launch, patching, persist
from dagcheck.lab.auth import LabCredentials
from dagcheck.lab.build import build_organization
from dagcheck.lab.server import LabServer
from dagcheck.lab.settings import lab_settings
from dagcheck.lab.state import Organization


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagcheck.lab", description="The dagcheck lab: a simulated Exchange DAG")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the lab's WSMan/PSRP endpoints on 127.0.0.1")
    serve.add_argument("--inventory", default="inventory/lab.yml")
    serve.add_argument("--port", type=int, default=0, help="first port; each server takes the next one (default: free ports)")
    serve.add_argument("--username", default="lab\\dagcheck")
    serve.add_argument("--password", default=None, help="default: $DAGCHECK_LAB_PASSWORD, else generated")
    serve.add_argument("--https", action="store_true", help="serve HTTPS with a certificate generated at start")
    serve.add_argument(
        "--auth",
        choices=("basic", "ntlm"),
        default="basic",
        help="basic (default) or ntlm (pyspnego acceptor; connect with encryption='never' over HTTP)",
    )
    serve.add_argument(
        "--ca-out",
        default=os.path.join(tempfile.gettempdir(), "dagcheck-lab-ca.pem"),
        help="with --https: where to write the certificate clients verify against",
    )
    serve.add_argument(
        "--state",
        default=None,
        help="keep the simulated organisation in this JSON file: loaded at start if it exists, saved after "
        "every call and at stop",
    )
    serve.add_argument(
        "--write-inventory",
        default=None,
        metavar="PATH",
        help="write an inventory that points dagcheck at this lab (credentials from environment variables)",
    )
    patch = sub.add_parser("patch", help="patch a server of a running persistent lab (it must be in maintenance)")
    patch.add_argument("--state", required=True, help="the --state FILE of the running lab")
    patch.add_argument("--server", default=os.environ.get("DAGCHECK_SERVER"), help="default: $DAGCHECK_SERVER")
    patch.add_argument("--build", default=os.environ.get("DAGCHECK_TARGET_BUILD"), help="default: $DAGCHECK_TARGET_BUILD")
    patch.add_argument("--reboot-seconds", type=float, default=2.0, help="how long the server is unreachable (default 2)")
    calls = sub.add_parser("calls", help="print the changes a running persistent lab was asked to make (JSON lines)")
    calls.add_argument("--state", required=True, help="the --state FILE of the running lab")
    args = parser.parse_args(argv)
    if args.command in ("patch", "calls"):
        return _control(args)
    try:
        inventory = load_inventory(args.inventory)
    except InventoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if inventory.lab is None:
        print(f"error: {args.inventory} has no lab: section to simulate", file=sys.stderr)
        return 2
    password = args.password or os.environ.get("DAGCHECK_LAB_PASSWORD")
    generated = password is None
    creds = (
        LabCredentials(args.username, password) if password else LabCredentials(args.username, LabCredentials.generate().password)
    )
    ports = {s.name.lower(): args.port + i for i, s in enumerate(inventory.servers)} if args.port else None
    org, saver = build_organization(inventory), None
    if args.state:
        org, ports = _persisted(Path(args.state), org, ports)
        if org is None:
            return 2
    lab = LabServer(org, creds, ports, https=args.https, auth=args.auth, latency=lab_settings(inventory).latency).start()
    if args.state:
        served_on = {s.name.lower(): lab.port(s.name) for s in inventory.servers}
        saver = persist.Saver(org, Path(args.state), {"ports": served_on}).start()
        control = patching.ControlWatcher(org, lab, Path(args.state), on_change=saver.save).start()
    print(
        f"dagcheck lab serving {len(inventory.servers)} simulated servers on 127.0.0.1 ({lab.scheme.upper()}, {args.auth} auth)"
    )
    if lab.certificate is not None:
        print(f"  certificate to trust (cert_validation=...): {lab.certificate.write_ca_bundle(args.ca_out)}")
    print(f"  user name: {creds.username}")
    print(f"  password:  {creds.password if generated else '(as given)'}")
    for s in inventory.servers:
        print(f"  {s.name:<10} Exchange: {lab.exchange_uri(s.name)}   Windows: {lab.windows_uri(s.name)}")
    how = "ssl=True, cert_validation=<certificate>" if args.https else "ssl=False, encryption='never'"
    print(
        f"Connect with pypsrp: WSMan('127.0.0.1', port=<port>, path='PowerShell', auth='{args.auth}', {how}, ...) "
        "and RunspacePool(..., configuration_name='Microsoft.Exchange')."
    )
    if args.state:
        print(f"  state: {args.state} (saved after every call, at stop and on SIGUSR1; delete it to start afresh)")
    if args.write_inventory:
        with open(args.inventory, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
        text = "# Written by python -m dagcheck.lab serve: points dagcheck at that running lab.\n" + yaml.safe_dump(
            persist.inventory_for(
                raw, lab.exchange_uri, lab.windows_uri, str(Path(args.ca_out).resolve()) if lab.certificate else None, args.auth
            ),
            sort_keys=False,
        )
        persist.write_atomically(Path(args.write_inventory), text)
        print(f"  inventory: {args.write_inventory}; before running dagcheck with it:")
        print(f"    export {persist.USERNAME_ENV}='{creds.username}'")
        print(
            f"    export {persist.PASSWORD_ENV}='{creds.password}'"
            if generated
            else f"    export {persist.PASSWORD_ENV}=<the password given>"
        )
    # The handlers are in place before the line that says the lab serves: whoever waits for that line may signal
    # at once (SIGUSR1's default action would end the process, SIGTERM's skip the last save).
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if saver is not None and hasattr(signal, "SIGUSR1"):  # not on Windows
        signal.signal(signal.SIGUSR1, lambda *_: saver.ask())
    print(launch.READY, flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    lab.stop()
    if saver is not None:
        control.stop()
        saver.stop()
    return 0


def _control(args: argparse.Namespace) -> int:
    """`patch` and `calls`: one request to the running lab through its control folder."""
    if args.command == "calls":
        answer = patching.request(Path(args.state), {"op": "calls"})
        for call in answer.get("calls", []):
            print(json.dumps(call, default=str))
    else:
        if not args.server or not args.build:
            print("error: patch needs --server and --build (or $DAGCHECK_SERVER and $DAGCHECK_TARGET_BUILD)", file=sys.stderr)
            return 2
        answer = patching.request(
            Path(args.state), {"op": "patch", "server": args.server, "build": args.build, "reboot_seconds": args.reboot_seconds}
        )
        print(answer.get("message", ""), file=sys.stdout if answer.get("ok") else sys.stderr)
    return 0 if answer.get("ok") else 1


def _persisted(path: Path, fresh: Organization, ports: dict[str, int] | None):
    """The saved organisation when `path` exists (and the ports it was served on, unless --port is given)."""
    if not path.exists():
        return fresh, ports
    try:
        org, data = persist.load(path)
    except persist.StateFileError as exc:
        print(f"error: {exc}; delete it to start from the inventory", file=sys.stderr)
        return None, ports
    print(f"dagcheck lab: loaded {path} (lab time {org.now().isoformat()})")
    return org, ports or data.get("ports")


if __name__ == "__main__":
    sys.exit(main())
