"""A private Dovecot IMAP server for the tests: 127.0.0.1, a free port, its own config and users.

The real server, not a mock (STYLE.md, anti-patterns): the ``dovecot`` fixture starts Dovecot 2.3
(Debian package ``dovecot-imapd``, installed by ``.ci/run``) once per test session, in a temporary
directory with its own ``dovecot.conf``, a passwd-file of users and maildirs owned by ``nobody``
(Dovecot refuses uid 0 as a mail user), and stops it at the end. The facts it relies on are in
/work/shared/REAL-SERVERS.md. Each test creates its own users (``add_user``), so tests sharing the
server never see each other's mail.

It listens on two ports: plain IMAP, where STARTTLS is offered, and IMAPS (implicit TLS), both with
a self-signed certificate for ``localhost`` / ``127.0.0.1`` whose path is ``ca_file``. Plaintext
login is allowed on the plain port so that the loopback tests need no TLS.

When ``dovecot`` is not installed the tests that need it are skipped, except under ``CI=true``,
where that is a failure (like an unreachable PostgreSQL in tests/db.py).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient

__all__ = ["Dovecot", "dovecot", "free_port"]

CONFIG = """\
instance_name = {instance}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
# The wrong-password tests need no 2-second penalty.
auth_failure_delay = 0
mail_location = maildir:{root}/mail/%u
default_login_user = {login_user}
default_internal_user = {internal_user}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: after a failed login Dovecot slows down every later login from the same IP,
  # and every test connects from 127.0.0.1 (the wiki's Authentication/Penalty way to turn it off).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


# Every user is written when the server starts: Dovecot's passwd-file looks at the file again at
# most once a second, so a user appended during the tests may stay unknown for a while.
_USERS = [f"user{number:03d}@test" for number in range(1, 201)]


def _users_file() -> str:
    # passwd-file: user:password:uid:gid:gecos:home:shell:extra userdb fields.
    return "".join(f"{name}:{{PLAIN}}secret::::::\n" for name in _USERS)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Dovecot:
    """A running private Dovecot; ``add_user`` gives each test its own mailbox."""

    root: Path
    port: int
    tls_port: int
    host: str = "127.0.0.1"
    _users: set[str] = field(default_factory=set)

    @property
    def config(self) -> Path:
        """The instance's dovecot.conf (for ``doveadm -c``)."""
        return self.root / "dovecot.conf"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate the server presents (trust it to verify TLS)."""
        return self.root / "cert.pem"

    def add_user(self) -> str:
        """A user nobody has used yet (a fresh, empty mailbox), password ``secret``."""
        pool = [name for name in _USERS if name not in self._users]
        if not pool:
            raise RuntimeError("the Dovecot fixture has no user left; raise _USERS's size")
        self._users.add(pool[0])
        return pool[0]

    def client(self, user: str, password: str = "secret") -> IMAPClient:
        """A logged-in plain IMAP connection as ``user``."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(user, password)
        return client

    def append(self, user: str, messages: list[bytes], folder: str = "INBOX") -> None:
        """Put ``messages`` into ``folder`` of ``user`` with IMAP APPEND, creating the folder."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw)

    def folder_bodies(self, user: str, folder: str) -> list[bytes]:
        """The raw bytes of every message in ``folder`` (empty when the folder does not exist)."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            if not uids:
                return []
            fetched = client.fetch(uids, ["BODY.PEEK[]"])
            return [fetched[uid][b"BODY[]"] for uid in sorted(fetched)]

    def folder_flags(self, user: str, folder: str) -> list[tuple[bytes, ...]]:
        """The flags of every message in ``folder``, by ascending UID."""
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
            return [tuple(fetched[uid][b"FLAGS"]) for uid in sorted(fetched)]

    def set_uidvalidity(self, user: str, folder: str, uidvalidity: int) -> None:
        """Give ``folder`` a new UIDVALIDITY, keeping its messages (as a server migration may)."""
        subprocess.run(["doveadm", "-c", str(self.config), "mailbox", "update", "-u", user,
                        "--uid-validity", str(uidvalidity), folder], check=True, capture_output=True)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def _dovecot_missing() -> str | None:
    for program in ("dovecot", "doveadm", "openssl"):
        if shutil.which(program) is None:
            return f"{program} is not installed (apt-get install dovecot-imapd openssl)"
    return None


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _self_signed_certificate(root: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(root / "key.pem"), "-out", str(root / "cert.pem")],
        check=True, capture_output=True)


def _mail_owner() -> tuple[str, str]:
    """The uid and gid of the mail files: nobody when we are root (Dovecot refuses uid 0)."""
    if os.geteuid() == 0:
        return "nobody", "nogroup"
    return str(os.geteuid()), str(os.getegid())


def _wait_listening(port: int, log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
                if connection.recv(200).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    raise RuntimeError(f"Dovecot did not answer on 127.0.0.1:{port}; its log:\n{text}")


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One private Dovecot for the test session, stopped at the end."""
    missing = _dovecot_missing()
    if missing:
        _skip_or_fail(missing)
    # Not under pytest's base temp: that is private to us (0700), and Dovecot's auth and imap
    # processes run as other users (dovecot, nobody) that must reach the users file and maildirs.
    root = Path(tempfile.mkdtemp(prefix="ricochet-dovecot-"))
    root.chmod(0o755)
    (root / "mail").mkdir()
    (root / "users").write_text(_users_file(), encoding="utf-8")
    _self_signed_certificate(root)
    uid, gid = _mail_owner()
    if os.geteuid() == 0:
        shutil.chown(root / "mail", user=uid, group=gid)
    login_user = "dovenull" if os.geteuid() == 0 else str(os.geteuid())
    internal_user = "dovecot" if os.geteuid() == 0 else str(os.geteuid())
    server = Dovecot(root=root, port=free_port(), tls_port=free_port())
    server.config.write_text(CONFIG.format(
        instance=f"ricochet-test-{secrets.token_hex(4)}", root=root, port=server.port,
        tls_port=server.tls_port, uid=uid, gid=gid, login_user=login_user,
        internal_user=internal_user), encoding="utf-8")
    # Dovecot forks into the background: its output goes to a file, since a pipe would stay open
    # (held by the daemon) and subprocess.run would wait for it forever.
    with (root / "start.log").open("wb") as start_log:
        started = subprocess.run(["dovecot", "-c", str(server.config)], stdin=subprocess.DEVNULL,
                                 stdout=start_log, stderr=subprocess.STDOUT, check=False)
    if started.returncode != 0:
        raise RuntimeError(f"dovecot did not start: {(root / 'start.log').read_text(errors='replace')}")
    try:
        _wait_listening(server.port, root / "dovecot.log", time.monotonic() + 15)
        yield server
    finally:
        _stop(root / "run" / "master.pid")
        shutil.rmtree(root, ignore_errors=True)


def _stop(pid_file: Path) -> None:
    """SIGTERM to the instance's master process (its pid file), then wait for it to be gone."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs; a zombie (exited, not yet reaped by its parent) does not."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status
