"""A minimal W3C WebDriver client over `requests`, for Debian's `chromedriver` driving headless
`chromium`: the few commands the page test needs, with no browser package to install.

`browser()` yields None when no browser is installed here (the test then says so and skips).
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from typing import Any, Iterator

import requests

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"     # the W3C key of an element reference
MISSING = ("no headless browser here: install Debian's chromium and chromium-driver "
           "(.ci/run does) to run the page test in a real browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    def __init__(self, base: str, session: str) -> None:
        self._url = f"{base}/session/{session}"

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        answer = requests.request(method, self._url + path, json=body, timeout=60)
        value = answer.json().get("value")
        if answer.status_code != 200:
            raise AssertionError(f"webdriver {method} {path}: {value}")
        return value

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def find(self, css: str) -> str:
        return self._call("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css: str) -> list[str]:
        found = self._call("POST", "/elements", {"using": "css selector", "value": css})
        return [e[ELEMENT] for e in found]

    def text(self, element: str) -> str:
        """What the browser renders for it: hidden content (a closed <details>) is empty."""
        return self._call("GET", f"/element/{element}/text")

    def displayed(self, element: str) -> bool:
        return self._call("GET", f"/element/{element}/displayed")

    def click(self, element: str) -> None:
        self._call("POST", f"/element/{element}/click", {})

    def url(self) -> str:
        return self._call("GET", "/url")

    def quit(self) -> None:
        self._call("DELETE", "")


@contextmanager
def browser() -> Iterator[Browser | None]:
    """Headless chromium with JavaScript switched off: the page must work without it."""
    driver, chromium = shutil.which("chromedriver"), shutil.which("chromium")
    if driver is None or chromium is None:
        yield None
        return
    port = _free_port()
    process = subprocess.Popen([driver, f"--port={port}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(base + "/status", timeout=2).json()["value"]["ready"]:
                    break
            except (requests.RequestException, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("chromedriver did not start within 30 s")
            time.sleep(0.1)
        options = {"binary": chromium,
                   "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--window-size=1280,2000"],
                   "prefs": {"profile.managed_default_content_settings.javascript": 2}}
        answer = requests.post(base + "/session", timeout=120, json={"capabilities": {
            "alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}})
        value = answer.json()["value"]
        if answer.status_code != 200:
            raise AssertionError(f"chromedriver could not start chromium: {value}")
        session = Browser(base, value["sessionId"])
        try:
            yield session
        finally:
            session.quit()
    finally:
        process.terminate()
        process.wait(timeout=30)
