"""The lab's "patch": what running a CU or SU installer does to a server that is in maintenance.

Setup writes the new build (ExSetup.exe's file version; AdminDisplayVersion in AD shows the CU's own
build, products.admin_display_version), then the server restarts: its connections are reset and its
port refuses connections for a while (LabServer.reboot, the same reboot the `reboot` wire fault uses),
and it comes back with no shells. The lab refuses to patch a server that is not in maintenance
(ServerWideOffline not Inactive): in a rehearsal, patching a server in service is the mistake to catch.

A running persistent lab (`python -m dagcheck.lab serve --state FILE`) takes patch requests from other
processes through a control folder beside its state file (FILE.control/): a request is a JSON file the
serving process picks up, applies under the organisation's lock and answers with a `.done` file. This is
what a rolling run's patch command talks to:

    python -m dagcheck.lab patch --state FILE --server mbx1 --build 15.2.2562.49 [--reboot-seconds 2]

(--server and --build default to $DAGCHECK_SERVER and $DAGCHECK_TARGET_BUILD, which a rolling run sets
for its patch command). `python -m dagcheck.lab calls --state FILE` prints the changes the lab's cmdlets
were asked to make (its call log), so a test in another process can show which servers were touched.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from dagcheck.lab import products
from dagcheck.lab.state import SERVICE_START_STEP, Organization

POLL = 0.05


class PatchRefused(Exception):
    """The lab will not patch this server (unknown build, server not in maintenance)."""


class Rebooter(Protocol):
    def reboot(self, server: str, seconds: float) -> None: ...


def apply_patch(org: Organization, server_name: str, build_text: str) -> str:
    """Install `build_text` on a server in maintenance; returns a one-line account of what changed."""
    try:
        build = products.parse_build(build_text)
    except ValueError:
        raise PatchRefused(f"{build_text!r} is not a build number (15.2.x.y)") from None
    release = products.release_of(build)
    if release is None or (build != release.cu_build and build not in release.su_builds):
        raise PatchRefused(
            f"the lab knows no Exchange build {build_text} (it simulates: "
            + ", ".join(f"{r.product} {r.name}" for r in products.RELEASES)
            + ")"
        )
    with org.lock:
        try:
            server = org.server(server_name)
        except KeyError:
            raise PatchRefused(f"the lab has no server {server_name!r}") from None
        if server.own_state("ServerWideOffline") != "Inactive":
            raise PatchRefused(
                f"{server.name} is not in maintenance (ServerWideOffline "
                f"{server.own_state('ServerWideOffline')}); the lab patches only servers in maintenance"
            )
        before = ".".join(map(str, server.exsetup_version))
        server.install(build)
        org.call_log.append((server.name, "lab:patch", {"Build": build_text}))
        reset = [reset_settings(server, f) for f in org.faults_matching("patch_resets_settings", server.name)]
        if build == release.cu_build and products.setup_enables_extended_protection(build):
            reset.append(setup_configures_extended_protection(server))
    return f"{server.name}: {before} -> {build_text} ({release.product} {release.name})" + "".join(f"; {r}" for r in reset)


def setup_configures_extended_protection(server: Any) -> str:
    """What CU setup does from Exchange 2019 CU14 on (and so SE): it configures Extended Protection on every
    IIS application with the values Microsoft documents (the lab's products.SETUP_EP), rather than leave or turn
    it off ("Exchange Server 2019 CU14 ... enables Extended Protection by default", Exchange team blog,
    2024-02-13; Learn, "Configure Windows Extended Protection in Exchange Server"). Security Updates do not run
    that part of setup."""
    changed = 0
    for (site, app), a in server.iis.items():
        wanted = products.SETUP_EP.get(site, {}).get(app)
        if wanted is not None and (a.token_checking != wanted or a.cmdlet_token_checking is not None):
            a.token_checking, a.cmdlet_token_checking = wanted, None
            changed += 1
    return f"setup configured Extended Protection ({changed} application(s) changed)"


def reset_settings(server: Any, fault: Any) -> str:
    """The patch_resets_settings fault: what a CU that rewrites IIS and vdir configuration can leave behind
    (the kind of reset is documented for web.config and vdir customisations in general; which settings a
    given CU resets is not, so the two chosen here are the rehearsal's, not a known CU's)."""
    url_of, ep_of = str(fault.get("url_of") or "owa"), str(fault.get("ep_of") or "ecp")
    front = products.FRONT_END
    url_app, ep_app = server.iis.get((front, url_of)), server.iis.get((front, ep_of))
    if url_app is None or ep_app is None:
        raise PatchRefused(f"patch_resets_settings: {server.name} has no {front}/{url_of} or {front}/{ep_of}")
    url_app.external_url = None
    ep_app.token_checking, ep_app.cmdlet_token_checking = "None", None
    return (
        f"the patch reset ExternalUrl of {url_of} ({front}) and Extended Protection of {ep_of} ({front}) to None "
        "(fault patch_resets_settings)"
    )


def patch_and_reboot(org: Organization, lab: Rebooter, server_name: str, build_text: str, seconds: float) -> str:
    """Patch, then restart the server; it is down (connection refused) when this returns."""
    done = apply_patch(org, server_name, build_text)
    if seconds > 0:
        with org.lock:
            order = org.schedule_restart(org.server(server_name), seconds)
        lab.reboot(org.server(server_name).name, seconds)
        done += (
            f"; restarting, back in {seconds:g} s, then its services start one by one "
            f"({len(order)}, every {SERVICE_START_STEP:g} s: {', '.join(order[:3])}, ...)"
        )
    return done


def changes(org: Organization) -> list[dict[str, Any]]:
    """The call log's entries that asked for a change (not Get-/Test-), oldest first."""
    with org.lock:
        return [
            {"server": s, "cmdlet": c, "parameters": p}
            for s, c, p in org.call_log
            if not c.split(":")[-1].startswith(("Get-", "Test-")) and not c.startswith("winrs:")
        ]


# ---- the control folder of a persistent lab ---------------------------------------------------------


def control_dir(state: Path) -> Path:
    return state.with_name(state.name + ".control")


class ControlWatcher:
    """In `serve --state FILE`: applies requests dropped into FILE.control/ and answers each."""

    def __init__(self, org: Organization, lab: Rebooter, state: Path, on_change: Any = None) -> None:
        self.org, self.lab, self.folder = org, lab, control_dir(state)
        self.on_change = on_change  # e.g. the saver's save(): a patch is not a call, so it is saved here
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lab-control", daemon=True)

    def start(self) -> ControlWatcher:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            for request in sorted(self.folder.glob("*.request.json")):
                self._answer(request)

    def _answer(self, request: Path) -> None:
        try:
            data = json.loads(request.read_text(encoding="utf-8"))
            op = data.get("op")
            if op == "patch":
                answer = {
                    "ok": True,
                    "message": patch_and_reboot(
                        self.org, self.lab, str(data["server"]), str(data["build"]), float(data.get("reboot_seconds", 2))
                    ),
                }
                if self.on_change is not None:
                    self.on_change()
            elif op == "calls":
                answer = {"ok": True, "calls": changes(self.org)}
            else:
                answer = {"ok": False, "message": f"unknown lab control request {op!r}"}
        except PatchRefused as exc:
            answer = {"ok": False, "message": str(exc)}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            answer = {"ok": False, "message": f"bad lab control request {request.name}: {exc}"}
        done = request.with_name(request.name.replace(".request.json", ".done.json"))
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(answer, default=str), encoding="utf-8")
        tmp.replace(done)
        request.unlink(missing_ok=True)


def request(state: Path, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Send one control request to the lab serving `state` and wait for its answer."""
    folder = control_dir(state)
    if not folder.is_dir():
        return {
            "ok": False,
            "message": f"no lab is serving {state} (no {folder}): start `python -m dagcheck.lab serve --state {state}` first",
        }
    name = uuid.uuid4().hex
    tmp = folder / f"{name}.tmp"
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    tmp.replace(folder / f"{name}.request.json")
    done = folder / f"{name}.done.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done.exists():
            answer = json.loads(done.read_text(encoding="utf-8"))
            done.unlink(missing_ok=True)
            return answer
        time.sleep(POLL)
    (folder / f"{name}.request.json").unlink(missing_ok=True)
    return {"ok": False, "message": f"the lab serving {state} did not answer within {timeout:g} s"}
