"""The dashboard in a real browser: the service as a subprocess over HTTP, Debian's headless Chromium.

- ``service``: ``python app.py --config FILE serve`` as a subprocess on 127.0.0.1 and a free port,
  on a temporary SQLite database migrated by ``db upgrade``, with a dashboard user made by ``user
  add`` and an MTA token by ``token create`` (the real commands, run in this process by click's
  runner to save three interpreter starts), seeded with tests/demo_data.py before it starts. One
  backend is enough here: the pages' queries are tested on both in their own tests, and what this
  adds is the browser, the HTTP server and the policy node of a real process.
- ``chromium``: a Selenium driver for /usr/bin/chromium through /usr/bin/chromedriver (the Debian
  packages chromium and chromium-driver, installed by .ci/run). Both paths are given, so Selenium
  Manager never looks for, or downloads, a browser or a driver.
- ``screenshot``: a PNG of the page (down to 4000 px, not only the window) under var/screenshots/;
  ``log_in``: through the login form.
- ``python -m tests.browser`` (``docs_assets``) remakes the README's screenshots (docs/images/) and
  sample report (docs/sample-report.html) from the same demo data.

Every wait has a deadline, so a hung server or browser fails the test instead of stalling it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app import cli
from config import load_settings
from ingest.runtime import Runtime
from tests.demo_data import SETTINGS_TOML, Scenario, seed

__all__ = ["CHROMEDRIVER", "CHROMIUM", "DESKTOP", "PHONE", "SCREENSHOTS", "WAIT_SECONDS", "Service",
           "chromium", "docs_assets", "log_in", "screenshot", "service", "viewport"]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = REPO / "var" / "screenshots"  # var/ is not committed
DESKTOP = (1280, 800)
PHONE = (375, 812)  # an iPhone X/11 Pro's CSS pixels
STARTUP_SECONDS = 60.0
WAIT_SECONDS = 10  # for a page or an element
MAX_HEIGHT = 4000  # of a full-page screenshot, in pixels: enough to judge a page, and quick to take


@dataclass(frozen=True)
class Service:
    """A running service: where it listens, who may log in, the MTA token, and what was seeded."""

    base_url: str
    config: Path
    user: str
    password: str
    mta_token: str
    scenario: Scenario
    log: Path

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this service."""
        return self.base_url + path

    def policy(self, **fields: str) -> dict[str, Any]:
        """GET /v1/policy with ``fields`` and the MTA token (docs/mta.md, "HTTP"): the JSON answer."""
        request = urllib.request.Request(self.url("/v1/policy?" + urllib.parse.urlencode(fields)),
                                         headers={"Authorization": f"Bearer {self.mta_token}",
                                                  "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's choice for port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _cli(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the command ``python app.py --config CONFIG ARGS...`` in this process; its standard output.

    In-process (click's runner calls the same command as ``python app.py``) to save an interpreter
    start per command; a failure raises with what the command wrote.
    """
    result = CliRunner().invoke(cli, ["--config", str(config), *args], env=env, catch_exceptions=False)
    if result.exit_code != 0:
        raise AssertionError(f"python app.py {' '.join(args)} failed ({result.exit_code}): {result.output}")
    return result.stdout


def _wait_healthy(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {log.read_text()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(base_url + "/healthz", timeout=1) as answer:
            if json.loads(answer.read()).get("status") == "ok":
                return
        time.sleep(0.1)
    raise AssertionError(f"serve did not answer /healthz within {STARTUP_SECONDS:.0f} s: {log.read_text()}")


@contextlib.contextmanager
def service(directory: Path) -> Iterator[Service]:
    """The seeded service in ``directory`` (database, config, log), stopped at the end."""
    port = free_port()
    config = directory / "ricochet.toml"
    config.write_text(f"""{SETTINGS_TOML}
[server]
host = "127.0.0.1"
port = {port}

[log]
level = "WARNING"

[database]
url = "sqlite:///{directory / 'ricochet.db'}"

[web]
secret_key_file = "{directory / 'web-secret.key'}"
""")
    _cli(config, "db", "upgrade")
    user, password = "maria", secrets.token_urlsafe(12)
    _cli(config, "user", "add", user, "--role", "admin", env={"RICOCHET_USER_PASSWORD": password})
    token = _cli(config, "token", "create", "browser-test-mta", "--role", "mta").strip()
    with Runtime.from_settings(load_settings(config)) as runtime:
        scenario = seed(runtime)
    log = directory / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "app.py", "--config", str(config), "serve"], cwd=REPO,
                                   stdout=output, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base_url, process, log)
        yield Service(base_url, config, user, password, token, scenario, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def chromium(size: tuple[int, int] = DESKTOP, *, mobile: bool = False) -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a ``size`` viewport (CSS pixels; ``mobile``: a phone's), quit at the end."""
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox",  # the tests run as root in CI
                     "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
                     f"--window-size={size[0]},{size[1] + 200}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=DriverService(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        viewport(driver, size, mobile=mobile)
        driver.set_page_load_timeout(15)
        driver.set_script_timeout(5)
        yield driver
    finally:
        driver.quit()


def viewport(driver: webdriver.Chrome, size: tuple[int, int], *, mobile: bool = False) -> None:
    """Make the page ``size`` CSS pixels (the window's size would include the browser's frame)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile})


def screenshot(driver: webdriver.Chrome, name: str, *, full_page: bool = True,
               directory: Path = SCREENSHOTS) -> Path:
    """Save the page as <directory>/<name>.png, down to MAX_HEIGHT when ``full_page``; the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    view = metrics["cssLayoutViewport"]
    height = min(metrics["cssContentSize"]["height"], MAX_HEIGHT) if full_page else view["clientHeight"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": full_page,
        "clip": {"x": 0, "y": 0, "width": view["clientWidth"], "height": height, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def log_in(driver: webdriver.Chrome, running: Service, path: str = "/") -> None:
    """Open ``path`` and log in through the form if the dashboard asks (it keeps ?next=path)."""
    driver.get(running.url(path))
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))
    if "/login" not in driver.current_url:
        return
    password = driver.find_element(By.CSS_SELECTOR, "form input[name=password]")
    form = password.find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.NAME, "name").send_keys(running.user)
    form.find_element(By.NAME, "password").send_keys(running.password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: "/login" not in d.current_url)


def docs_assets(images: Path, sample_report: Path) -> list[Path]:
    """The README's pictures (1280x800, the top of the page) and sample report, from the demo data.

    ``python -m tests.browser``: the overview and the compromised account's page into ``images``,
    made small with pngquant and optipng when they are installed, and last week's report written
    by ``python app.py report`` (the real command, in a subprocess) to ``sample_report``.
    """
    written = []
    with tempfile.TemporaryDirectory() as folder, service(Path(folder)) as running, chromium() as driver:
        account = running.scenario.compromised
        for name, path in (("dashboard-overview", "/"),
                           ("dashboard-identity", f"/identities/{account.kind.value}/{account.value}")):
            log_in(driver, running, path)
            written.append(screenshot(driver, name, full_page=False, directory=images))
        subprocess.run([sys.executable, "app.py", "--config", str(running.config), "report",
                        "--week", running.scenario.report_week, "--output", str(sample_report)],
                       cwd=REPO, check=True, timeout=60)
        written.append(sample_report)
    for png in (path for path in written if path.suffix == ".png"):
        if shutil.which("pngquant"):
            subprocess.run(["pngquant", "--force", "--skip-if-larger", "--quality", "70-95",
                            "--output", str(png), str(png)], check=False, timeout=60)
        if shutil.which("optipng"):
            subprocess.run(["optipng", "-quiet", "-o5", str(png)], check=True, timeout=120)
    return written


if __name__ == "__main__":
    for made in docs_assets(REPO / "docs" / "images", REPO / "docs" / "sample-report.html"):
        print(f"wrote {made.relative_to(REPO)} ({made.stat().st_size // 1024} KiB)")
