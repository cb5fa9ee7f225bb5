"""Debian's Exim (exim4-daemon-light 4.96), run from a private directory, one SMTP session at a time.

Debian's ``exim4-daemon-light`` and ``postfix`` both provide the system MTA and conflict, and CI
installs postfix. So ``.ci/run`` does not install Exim: it downloads the .deb (and ``libidn12``,
the one library it needs that the machine lacks) and unpacks it with ``dpkg -x`` into ``ROOT``,
and creates the ``Debian-exim`` system user that the binary's compiled-in ``EXIM_USER`` names
(Exim refuses to start without it, whatever the configuration says).

No daemon and no port: each session is ``exim -C <config> -bs`` (SMTP on standard input and
output, Exim spec chapter 5 "-bs") over a socketpair that smtplib drives, so the test speaks
real SMTP to a real Exim, AUTH included; a local submission is ``exim -t`` (what ``sendmail -t``
runs). Why it works with a private configuration:

- ``-C`` with a file that is not in Debian's ``TRUSTED_CONFIG_LIST`` (/etc/exim4/trusted_configs)
  is allowed to root. The session gives up root and runs as ``Debian-exim`` (uid seen in /proc),
  which ``-bs`` with ``-odq`` (queue only, no delivery process) allows: the spool and log
  directories belong to ``Debian-exim``.
- ``-oMa 127.0.0.1`` gives the session a client address (``$sender_host_address``), so it is an
  SMTP session "from" a host, with AUTH advertised to it; only a trusted caller (root) may use it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["EXIM", "PASSWORD", "ROOT", "EximInstance", "exim_instance", "exim_missing", "skip_or_fail"]

ROOT = Path("/tmp/ricochet-exim")
EXIM = ROOT / "usr" / "sbin" / "exim4"
EXIM_USER = "Debian-exim"
# Every account logs in with this password (the plaintext authenticator below): the tests are
# about what Exim does after AUTH, not about checking passwords.
PASSWORD = "ricochet-test"


def exim_missing() -> str | None:
    """None when a private Exim can run here, else why not."""
    if not EXIM.exists():
        return f"Exim is not unpacked at {ROOT} (.ci/run does it: apt-get download exim4-daemon-light ...)"
    if os.geteuid() != 0:
        return "the private Exim needs root (-oMa is for trusted callers only)"
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        return f"the system user {EXIM_USER} does not exist (.ci/run creates it with adduser)"
    # -bV prints the version even without a configuration file; a missing library stops it first.
    done = subprocess.run([str(EXIM), "-bV"], capture_output=True, text=True, timeout=15, env=_env())
    if "Exim version" not in done.stdout:
        return f"{EXIM} -bV does not run: {(done.stderr or done.stdout).strip()[:300]}"
    return None


def _env() -> dict[str, str]:
    """Exim's environment: the libraries unpacked next to it (libidn12) come first."""
    libs = ":".join(str(p) for p in (ROOT / "usr" / "lib").glob("*-linux-gnu"))
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LD_LIBRARY_PATH": libs}


def skip_or_fail(reason: str) -> None:
    """Skip, except under CI=true, where a missing server is a failure (like tests/dovecot.py)."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _configuration(home: Path, acls: str) -> str:
    """A whole Exim configuration around ``acls`` (main options, then ``begin acl`` and the ACLs).

    ``acls`` must end inside the ACL section; the RCPT ACL accepts everyone, the PLAIN
    authenticator accepts any user with ``PASSWORD``, and accepted mail stays queued (``-odq``).
    """
    return f"""\
primary_hostname = exim-test.localdomain
spool_directory = {home}/spool
log_file_path = {home}/log/%slog
keep_environment =
acl_smtp_rcpt = acl_check_rcpt
tls_advertise_hosts =

{acls.rstrip()}

acl_check_rcpt:
  accept

begin routers

discard:
  driver = redirect
  data = :blackhole:

begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${{if eq{{$auth3}}{{{PASSWORD}}}}}
  server_set_id = $auth2
"""


@dataclass(frozen=True)
class EximInstance:
    """A private Exim configuration and its spool; ``session`` runs one ``exim -bs``."""

    home: Path

    @property
    def config(self) -> Path:
        """The configuration file."""
        return self.home / "exim.conf"

    def _command(self, *args: str) -> list[str]:
        return [str(EXIM), "-C", str(self.config), *args]

    @contextmanager
    def session(self, client_address: str = "127.0.0.1") -> Iterator[smtplib.SMTP]:
        """An smtplib client talking to ``exim -bs`` over a socketpair, after the banner."""
        ours, theirs = socket.socketpair()
        with open(self.home / "log" / "stderr.log", "ab") as stderr:
            command = self._command("-bs", "-odq", "-oMa", client_address)
            process = subprocess.Popen(command, stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=stderr,
                                       env=_env())
        theirs.close()
        smtp = smtplib.SMTP(timeout=15)
        smtp.sock = ours
        try:
            code, banner = smtp.getreply()
            assert code == 220, (code, banner, self.log())
            yield smtp
        finally:
            smtp.close()
            try:
                process.wait(timeout=15)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=15)

    def submit_local(self, ident: str, message: bytes) -> subprocess.CompletedProcess[str]:
        """``exim -t`` as the Unix user ``ident`` would run it (``sendmail -t``; ``-oMt``, a trusted
        caller's option, sets ``$sender_ident``); errors on standard error (``-oep``)."""
        return subprocess.run(self._command("-odq", "-oep", "-oMt", ident, "-t"), input=message.decode(),
                              capture_output=True, text=True, timeout=15, env=_env())

    def queue(self) -> str:
        """``exim -bp``: the queued messages, frozen ones marked ``*** frozen ***``."""
        done = subprocess.run(self._command("-bp"), capture_output=True, text=True, timeout=15, env=_env())
        return done.stdout + done.stderr

    def log(self) -> str:
        """Exim's main log (the rejections with their full text), panic log and standard error."""
        return "".join(p.read_text(errors="replace") for p in sorted((self.home / "log").glob("*log")))


@contextmanager
def exim_instance(acls: str) -> Iterator[EximInstance]:
    """A private Exim in a new directory under /tmp whose configuration holds ``acls``; removed after.

    Not under pytest's tmp_path: its parents are mode 0700, and Exim, once it has given up root,
    must still reach its spool and log directories as ``Debian-exim``.
    """
    home = Path(tempfile.mkdtemp(prefix="ricochet-exim-test-"))
    try:
        home.chmod(0o755)
        for name in ("spool", "log"):
            (home / name).mkdir()
            shutil.chown(home / name, EXIM_USER, EXIM_USER)
        instance = EximInstance(home)
        instance.config.write_text(_configuration(home, acls))
        instance.config.chmod(0o644)
        yield instance
    finally:
        shutil.rmtree(home, ignore_errors=True)
