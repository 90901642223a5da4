"""Run the lab standalone so that an administrator (or any PSRP client) can rehearse against it.

    python -m dagcheck.lab serve --inventory inventory/lab.yml [--port N] [--username U --password P]

Each simulated server gets its own port (N, N+1, ... when --port is given). The password is read
from --password, else the DAGCHECK_LAB_PASSWORD environment variable, else generated and printed
once on the terminal (never written to disk).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading

from dagcheck.errors import InventoryError
from dagcheck.inventory import load_inventory
from dagcheck.lab.build import build_organization
from dagcheck.lab.server import LabCredentials, LabServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagcheck.lab", description="The dagcheck lab: a simulated Exchange DAG")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the lab's WSMan/PSRP endpoints on 127.0.0.1")
    serve.add_argument("--inventory", default="inventory/lab.yml")
    serve.add_argument("--port", type=int, default=0, help="first port; each server takes the next one (default: free ports)")
    serve.add_argument("--username", default="lab\\dagcheck")
    serve.add_argument("--password", default=None, help="default: $DAGCHECK_LAB_PASSWORD, else generated")
    serve.add_argument("--https", action="store_true", help="serve HTTPS with a certificate generated at start")
    serve.add_argument("--auth", choices=("basic", "ntlm"), default="basic",
                       help="basic (default) or ntlm (pyspnego acceptor; connect with encryption='never' over HTTP)")
    serve.add_argument("--ca-out", default=os.path.join(tempfile.gettempdir(), "dagcheck-lab-ca.pem"),
                       help="with --https: where to write the certificate clients verify against")
    args = parser.parse_args(argv)
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
    creds = LabCredentials(args.username, password) if password else LabCredentials(args.username, LabCredentials.generate().password)
    ports = {s.name.lower(): args.port + i for i, s in enumerate(inventory.servers)} if args.port else None
    lab = LabServer(build_organization(inventory), creds, ports, https=args.https, auth=args.auth).start()
    print(f"dagcheck lab serving {len(inventory.servers)} simulated servers on 127.0.0.1 "
          f"({lab.scheme.upper()}, {args.auth} auth)")
    if lab.certificate is not None:
        print(f"  certificate to trust (cert_validation=...): {lab.certificate.write_ca_bundle(args.ca_out)}")
    print(f"  user name: {creds.username}")
    print(f"  password:  {creds.password if generated else '(as given)'}")
    for s in inventory.servers:
        print(f"  {s.name:<10} Exchange: {lab.exchange_uri(s.name)}   Windows: {lab.windows_uri(s.name)}")
    how = "ssl=True, cert_validation=<certificate>" if args.https else "ssl=False, encryption='never'"
    print(f"Connect with pypsrp: WSMan('127.0.0.1', port=<port>, path='PowerShell', auth='{args.auth}', {how}, ...) "
          "and RunspacePool(..., configuration_name='Microsoft.Exchange').")
    print("Ctrl-C stops the lab.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
