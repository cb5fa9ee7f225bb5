"""A private, loopback-only Postfix instance for tests (the Debian package ``postfix``, 3.7).

What it takes (shared/REAL-SERVERS.md): its own config directory with ``main.cf`` and a copy of
``/etc/postfix/master.cf`` whose services do not chroot, its own queue and data directories owned
by ``postfix``, logging to a file under /tmp, and the default ``/etc/postfix/main.cf`` listing the
directory in ``alternate_config_directories`` (``postfix -c`` refuses it otherwise; after a
"No configuration" install that file does not exist, so it is created with that one line).

The instance lives at a fixed path (``ROOT``), so that /etc/postfix/main.cf names one directory
whatever the number of runs; a lock file keeps two test sessions on one machine from sharing it.
Mail it accepts is discarded (``default_transport = discard``): the tests read SMTP replies.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "PostfixInstance", "free_port", "postfix_available", "running_postfix"]

POSTFIX = "/usr/sbin/postfix"
DEFAULT_MAIN_CF = Path("/etc/postfix/main.cf")
SYSTEM_MASTER_CF = Path("/etc/postfix/master.cf")
ROOT = Path("/tmp/ricochet-postfix-test")


def postfix_available() -> str | None:
    """None when a private instance can run here, else why not (a skip reason)."""
    if not Path(POSTFIX).exists() or not SYSTEM_MASTER_CF.exists():
        return "Postfix is not installed (.ci/run installs the Debian package postfix)"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (it runs its daemons as user postfix)"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class PostfixInstance:
    """A running private instance: its SMTP port on 127.0.0.1 and its log."""

    etc: Path
    port: int
    maillog: Path

    def log(self) -> str:
        """Everything the instance logged so far."""
        return self.maillog.read_text(errors="replace") if self.maillog.exists() else ""


def _main_cf(port: int, extra: str) -> str:
    return f"""\
compatibility_level = 3.6
queue_directory = {ROOT}/queue
data_directory = {ROOT}/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix-test.localdomain
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
maillog_file = {ROOT}/maillog
maillog_file_prefixes = /var, /dev/stdout, /tmp
# The test client acts as an authenticated account with XCLIENT LOGIN=...
smtpd_authorized_xclient_hosts = 127.0.0.0/8
# Accepted mail goes nowhere: the tests read the SMTP replies.
default_transport = discard:test
relay_transport = discard:test
smtpd_banner = $myhostname ESMTP test-{port}

{extra}
"""


def _master_cf(port: int) -> str:
    """The system master.cf with smtpd on 127.0.0.1:``port`` and no service chrooted."""
    lines = []
    for line in SYSTEM_MASTER_CF.read_text().splitlines():
        fields = line.split()
        if line and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
            if fields[0] == "smtp" and fields[1] == "inet":
                fields = [f"127.0.0.1:{port}", "inet", "n", "-", "n", "-", "-", "smtpd"]
            else:
                fields[4] = "n"
            line = "  ".join(fields)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _allow_config_directory(etc: Path) -> None:
    """List ``etc`` in the default main.cf's alternate_config_directories."""
    if not DEFAULT_MAIN_CF.exists():
        DEFAULT_MAIN_CF.write_text(f"# Written by Ricochet's tests (tests/postfix.py).\n"
                                   f"alternate_config_directories = {etc}\n")
        return
    current = subprocess.run(["postconf", "-c", str(DEFAULT_MAIN_CF.parent), "-h",
                              "alternate_config_directories"], capture_output=True, text=True).stdout
    if str(etc) not in current.replace(",", " ").split():
        value = f"{current.strip()}, {etc}" if current.strip() else str(etc)
        subprocess.run(["postconf", "-c", str(DEFAULT_MAIN_CF.parent), "-e",
                        f"alternate_config_directories = {value}"], check=True)


def _postfix(etc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([POSTFIX, "-c", str(etc), *args], capture_output=True, text=True, timeout=60)


def _wait_for_smtp(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(200).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"Postfix did not answer on 127.0.0.1:{port}")


@contextmanager
def running_postfix(main_cf_extra: str, port: int | None = None) -> Iterator[PostfixInstance]:
    """Start a private Postfix on 127.0.0.1 with ``main_cf_extra`` appended to its main.cf; stop it after."""
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        etc = ROOT / "etc"
        port = port or free_port()
        if (etc / "main.cf").exists():  # a run killed before its stop
            _postfix(etc, "stop")
        for name in ("etc", "queue", "data"):
            shutil.rmtree(ROOT / name, ignore_errors=True)
            (ROOT / name).mkdir()
        (ROOT / "maillog").unlink(missing_ok=True)
        (etc / "main.cf").write_text(_main_cf(port, main_cf_extra))
        (etc / "master.cf").write_text(_master_cf(port))
        shutil.chown(ROOT / "data", "postfix")
        _allow_config_directory(etc)
        for args in (("set-permissions",), ("check",), ("start",)):
            done = _postfix(etc, *args)
            if done.returncode != 0:
                raise RuntimeError(f"postfix {' '.join(args)} failed: {done.stdout}{done.stderr}")
        instance = PostfixInstance(etc, port, ROOT / "maillog")
        try:
            _wait_for_smtp(port, time.monotonic() + 15)
            yield instance
        finally:
            _postfix(etc, "stop")
