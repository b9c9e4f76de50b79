"""Open the HTML reports in headless Chromium (through chromedriver) and check they render.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (CI installs them with
``bash install.sh --test``). Missing binaries fail the test: it is never skipped.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deploy.report import compare_reports, write_report
from deploy.report.sample import sample_report

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROME_ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1280,2200",
)
IMAGES_JS = "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]);"
RESOURCES_JS = "return performance.getEntriesByType('resource').map(e => e.name);"


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        f"none of {names} on PATH: install with `bash install.sh --test` "
        "(apt-get install -y chromium chromium-driver)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebDriver:
    """The few W3C WebDriver commands this test needs, over urllib (no selenium)."""

    def __init__(self, *, base_url: str) -> None:
        self.base_url = base_url
        self.session_id = ""

    def call(self, method: str, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as error:
            raise AssertionError(f"webdriver {method} {path}: {error.read().decode()[:300]}") from error

    def wait_ready(self, *, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/status").get("ready"):
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"chromedriver at {self.base_url} not ready after {timeout_s} s")

    def start(self, *, chromium: str, user_data_dir: Path) -> None:
        options = {"binary": chromium, "args": [*CHROME_ARGS, f"--user-data-dir={user_data_dir}"]}
        capabilities = {"browserName": "chrome", "goog:chromeOptions": options, "goog:loggingPrefs": {"browser": "ALL"}}
        self.session_id = self.call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})["sessionId"]

    def session(self, method: str, path: str, body: dict | None = None):
        return self.call(method, f"/session/{self.session_id}{path}", body)

    def open(self, path: Path) -> None:
        self.session("POST", "/url", {"url": path.resolve().as_uri()})

    def script(self, source: str):
        return self.session("POST", "/execute/sync", {"script": source, "args": []})

    def console(self) -> list[dict]:
        return self.session("POST", "/se/log", {"type": "browser"})

    def screenshot(self) -> bytes:
        return base64.b64decode(self.session("GET", "/screenshot"))

    def element_screenshots(self, css: str) -> list[bytes]:
        found = self.session("POST", "/elements", {"using": "css selector", "value": css})
        ids = [next(iter(element.values())) for element in found]
        return [base64.b64decode(self.session("GET", f"/element/{eid}/screenshot")) for eid in ids]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = _binary("chromium", "chromium-browser", "google-chrome")
    chromedriver = _binary("chromedriver")
    port = _free_port()
    process = subprocess.Popen(
        [chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    driver = WebDriver(base_url=f"http://127.0.0.1:{port}")
    try:
        driver.wait_ready()
        driver.start(chromium=chromium, user_data_dir=tmp_path_factory.mktemp("chromium-profile"))
        yield driver
        driver.call("DELETE", f"/session/{driver.session_id}")
    finally:
        process.terminate()
        process.wait(timeout=20)


def _pixel_std(png: bytes) -> float:
    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64).std())


def _save_artifact(name: str, png: bytes) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    temp = ARTIFACTS / f".{name}.{os.getpid()}.tmp"
    temp.write_bytes(png)
    return temp.replace(ARTIFACTS / name)


def _assert_page_rendered(browser: WebDriver, page: Path, *, images: int, screenshot_name: str) -> None:
    browser.open(page)
    screenshot = browser.screenshot()
    assert _pixel_std(screenshot) > 5.0
    assert _save_artifact(screenshot_name, screenshot).stat().st_size > 0
    states = browser.script(IMAGES_JS)
    assert len(states) == images
    assert all(complete and width > 0 and height > 0 for complete, width, height in states), states
    shots = browser.element_screenshots("img")
    blank = [index for index, shot in enumerate(shots) if _pixel_std(shot) < 5.0]
    assert len(shots) == images and not blank, f"blank plots at img indices {blank}"
    assert browser.script(RESOURCES_JS) == [], "page fetched external resources"
    errors = [entry for entry in browser.console() if entry["level"] in ("SEVERE", "WARNING")]
    assert errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_report_browser_renders_every_plot_when_report_html_opened(browser, tmp_path):
    paths = write_report(sample_report(), tmp_path)

    _assert_page_rendered(browser, paths["html"], images=6, screenshot_name="report.png")


@pytest.mark.browser
@pytest.mark.slow
def test_report_browser_renders_both_sides_when_compare_html_opened(browser, tmp_path):
    paths = compare_reports(sample_report(), sample_report(), tmp_path, labels=("main", "pr"))

    _assert_page_rendered(browser, paths["html"], images=12, screenshot_name="compare.png")


@pytest.mark.browser
@pytest.mark.slow
def test_report_browser_reports_console_error_when_page_logs_one(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>")

    browser.open(page)

    assert any("boom" in entry["message"] for entry in browser.console() if entry["level"] == "SEVERE")
