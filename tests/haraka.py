"""A private Haraka 3 (the Node.js MTA, from npm) on a free loopback port, for the plugin's tests.

``.ci/run`` installs Haraka with npm into ``HOME`` (a cache directory outside the work tree, so
node_modules never lands in the repository); Node.js comes with the machine image. Each instance
gets a new directory with Haraka's own default configuration copied from the package, then ours:
``smtp.ini`` listening on 127.0.0.1 with ``nodes=0`` (one process, no cluster master to restart a
crashed worker: a plugin that throws must show up as a dead server), the plugins listed in
``config/plugins``, AUTH PLAIN/LOGIN from ``auth_flat_file.ini`` (Haraka offers it on loopback
without TLS: the connection is "private"), and ``queue/discard`` told to discard everything
(``YES_REALLY_DO_DISCARD``): the tests read SMTP replies, nothing is delivered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HARAKA", "HOME", "HarakaInstance", "haraka_missing", "running_haraka"]

HOME = Path("/tmp/ricochet-haraka")
HARAKA = HOME / "node_modules" / ".bin" / "haraka"
DEFAULT_CONFIG = HOME / "node_modules" / "Haraka" / "config"
START_TIMEOUT = 15.0  # seconds; Haraka 3.3 listens about a second after it starts here


def haraka_missing() -> str | None:
    """None when Haraka can run here, else why not."""
    if shutil.which("node") is None:
        return "Node.js is not installed (Haraka needs node >= 20)"
    if not HARAKA.exists() or not DEFAULT_CONFIG.is_dir():
        return f"Haraka is not installed in {HOME} (.ci/run does it: npm install --prefix {HOME} Haraka@3)"
    return None


@dataclass(frozen=True)
class HarakaInstance:
    """A running instance: its SMTP port on 127.0.0.1 and its directory."""

    home: Path
    port: int

    def log(self) -> str:
        """What Haraka printed so far (it logs to standard output)."""
        path = self.home / "haraka.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_config(home: Path, port: int, plugins: list[str], users: Mapping[str, str],
                  files: Mapping[str, str]) -> None:
    config = home / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    (config / "smtp.ini").write_text(f"[main]\nlisten=127.0.0.1:{port}\nnodes=0\n")
    (config / "me").write_text("haraka-test.localdomain\n")
    (config / "plugins").write_text("".join(f"{name}\n" for name in plugins))
    (config / "auth_flat_file.ini").write_text(
        "[core]\nmethods=PLAIN,LOGIN\n\n[users]\n" + "".join(f"{u}={p}\n" for u, p in users.items()))
    # queue/quarantine (where held mail goes) keeps its files in the instance, not /var/spool/haraka.
    (config / "quarantine.ini").write_text(f"quarantine_path={home}/quarantine\n")
    for name, text in files.items():
        (config / name).write_text(text)


def _wait_for_smtp(instance: HarakaInstance, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Haraka exited with {process.returncode}:\n{instance.log()}")
        try:
            with socket.create_connection(("127.0.0.1", instance.port), timeout=2) as sock:
                if sock.recv(200).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"Haraka did not answer on 127.0.0.1:{instance.port}:\n{instance.log()}")


@contextmanager
def running_haraka(plugins: list[str], users: Mapping[str, str], *, local_plugins: Mapping[str, Path],
                   files: Mapping[str, str]) -> Iterator[HarakaInstance]:
    """Start Haraka with ``plugins`` (in order); ``local_plugins`` are copied to plugins/<name>.js.

    ``files`` are more files for config/ (``ricochet.ini``); queue/quarantine keeps its files under
    ``home/quarantine``. Stopped (its own process, by pid) and removed after.
    """
    home = Path(tempfile.mkdtemp(prefix="ricochet-haraka-test-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        port = _free_port()
        _write_config(home, port, plugins, users, files)
        (home / "plugins").mkdir()
        for name, source in local_plugins.items():
            shutil.copyfile(source, home / "plugins" / f"{name}.js")
        instance = HarakaInstance(home, port)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
               "YES_REALLY_DO_DISCARD": "1"}  # queue/discard discards only when told so
        with open(home / "haraka.log", "wb") as log:
            process = subprocess.Popen([str(HARAKA), "-c", str(home)], cwd=home, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait_for_smtp(instance, process)
        yield instance
    finally:
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
