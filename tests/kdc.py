"""A real MIT Kerberos KDC on loopback for the tests: a throwaway realm in a temporary directory.

Why a real one: the lab's Kerberos acceptor (python-gssapi over MIT krb5) and dagcheck's initiator
must agree on tickets, SPNs and WinRM message wrapping exactly as they would against Active
Directory; a mock would agree with whatever the code under test does. The realm, its master key,
the user's password and the keytab live only in the temporary directory, which stop() deletes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

REALM = "LAB.CONTOSO.TEST"
# What these tests need from the OS, by Debian package (README: Kerberos from Linux).
PACKAGES = "krb5-kdc krb5-admin-server krb5-user libkrb5-dev"
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit")


def missing() -> str | None:
    """Why a real KDC cannot run here (a message naming what to install), or None."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    absent = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if absent:
        return f"MIT Kerberos tools not found ({', '.join(absent)}): apt-get install {PACKAGES}"
    try:  # pyspnego's Kerberos needs both (the extra pypsrp[kerberos] brings them; they build against libkrb5-dev)
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError:
        return (
            "python-gssapi/krb5 are not installed: apt-get install libkrb5-dev gcc python3-dev, "
            "then pip install -e '.[dev,kerberos]'"
        )
    return None


def _tool(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    assert found, name
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Kdc:
    """start() creates the realm, the user and HTTP/<fqdn> for each host, and a keytab; kinit() fills a
    ticket cache. env holds KRB5_CONFIG, KRB5_KTNAME (the lab's acceptor) and KRB5CCNAME (the client)."""

    hosts: list[str]
    user: str = "dagcheck"
    realm: str = REALM
    directory: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="dagcheck-kdc-"))
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18), repr=False)
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def principal(self) -> str:
        return f"{self.user}@{self.realm}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "KRB5_CONFIG": self._path("krb5.conf"),
            "KRB5_KDC_PROFILE": self._path("kdc.conf"),
            "KRB5_KTNAME": "FILE:" + self._path("lab.keytab"),
            "KRB5CCNAME": "FILE:" + self._path("ccache"),
        }

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _write(self, name: str, text: str) -> None:
        fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)

    def _run(self, *args: str, stdin: str | None = None) -> None:
        env = {**os.environ, **self.env}
        done = subprocess.run(args, input=stdin, env=env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:  # the output names the failing step; it never holds a password
            raise RuntimeError(f"{os.path.basename(args[0])} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> Kdc:
        try:
            return self._start()
        except BaseException:
            self.stop()  # a half-made realm (keys, keytab) never stays behind
            raise

    def _start(self) -> Kdc:
        os.chmod(self.directory, 0o700)
        # The lab's FQDNs do not resolve: no DNS canonicalisation, no reverse lookups, realm by default.
        self._write(
            "krb5.conf",
            f"""[libdefaults]
    default_realm = {self.realm}
    dns_canonicalize_hostname = false
    rdns = false
    dns_lookup_kdc = false
    dns_lookup_realm = false
    udp_preference_limit = 1
[realms]
    {self.realm} = {{
        kdc = 127.0.0.1:{self.port}
    }}
""",
        )
        self._write(
            "kdc.conf",
            f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{self.port}
    kdc_tcp_listen = 127.0.0.1:{self.port}
[realms]
    {self.realm} = {{
        database_name = {self._path("principal")}
        key_stash_file = {self._path("stash")}
        acl_file = {self._path("kadm5.acl")}
        kdc_listen = 127.0.0.1:{self.port}
        kdc_tcp_listen = 127.0.0.1:{self.port}
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}
[logging]
    kdc = FILE:{self._path("kdc.log")}
""",
        )
        self._write("kadm5.acl", "")
        master = secrets.token_urlsafe(18)
        self._run(_tool("kdb5_util"), "create", "-s", "-r", self.realm, stdin=f"{master}\n{master}\n")
        kadmin = _tool("kadmin.local")
        self._run(
            kadmin, "-r", self.realm, "-q", f"addprinc {self.principal}", stdin=f"{self.password}\n{self.password}\n"
        )  # on stdin: never in a process listing
        for host in self.hosts:
            spn = f"HTTP/{host.lower()}@{self.realm}"
            self._run(kadmin, "-r", self.realm, "-q", f"addprinc -randkey {spn}")
            self._run(kadmin, "-r", self.realm, "-q", f"ktadd -k {self._path('lab.keytab')} {spn}")
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(
            [_tool("krb5kdc"), "-n", "-r", self.realm], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"krb5kdc exited with {self.process.returncode}; see {self._path('kdc.log')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("krb5kdc did not listen within 15 s")

    def kinit(self, password: str | None = None) -> None:
        """The user's ticket, as an administrator gets it: kinit, the password on stdin."""
        self._run(_tool("kinit"), self.principal, stdin=(self.password if password is None else password) + "\n")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
