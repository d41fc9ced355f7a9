"""Headless chromium driven through its DevTools protocol, for tests of pages in a real browser.

Chromium speaks the protocol over a websocket (``--remote-debugging-port``); this client
sends commands and waits for their answers, ignoring events. It needs the chromium
binary and the ``websockets`` package, nothing else (no driver binary to keep in step
with the browser). Missing chromium skips the test on a developer's machine and fails
it in CI (``CI=true``), as tests/frontends/test_html_browser.py does.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Generous: the machine may be busy; a wait only ends early when its condition holds.
WAIT_SECONDS = 180.0


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    reason = "no chromium binary found (Debian: apt-get install chromium); .ci/run installs it"
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason}; in CI (CI={os.environ['CI']}) the browser check must run")
    pytest.skip(reason)


def _websocket_client() -> Any:
    try:
        from websockets.sync.client import connect
    except ImportError:
        reason = "the websockets package is missing: pip install '.[test]'"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"{reason}; in CI the browser check must run")
        pytest.skip(reason)
    return connect


class Chromium:
    """One headless chromium with one page, controlled through the DevTools protocol.

    Example:
        >>> with Chromium(tmp_path) as page:  # doctest: +SKIP
        ...     page.goto("http://127.0.0.1:8000/")
        ...     page.js("document.title")
    """

    def __init__(self, tmp_path: Path, width: int = 1280, height: int = 900) -> None:
        connect = _websocket_client()
        browser = find_browser()
        profile = tmp_path / "chromium-profile"
        self._log = open(tmp_path / "chromium.log", "wb")  # noqa: SIM115 (closed in close())
        self._proc = subprocess.Popen(
            [
                browser,
                "--headless",
                "--no-sandbox",  # needed when running as root (CI containers)
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        port = self._devtools_port(profile / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
            pages = [t for t in json.load(answer) if t["type"] == "page"]
        self._stack = contextlib.ExitStack()
        url = pages[0]["webSocketDebuggerUrl"]
        self._ws = self._stack.enter_context(connect(url, max_size=None, open_timeout=30))
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")

    def _devtools_port(self, file: Path) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._proc.returncode}")
            if file.exists() and file.read_text().strip():
                return int(file.read_text().split()[0])
            time.sleep(0.05)
        raise RuntimeError("chromium did not open its DevTools port within 60 s")

    # ------------------------------------------------------------ protocol
    def send(self, method: str, **params: Any) -> dict:
        """Send one command and return its result (events on the way are dropped)."""
        call = next(self._ids)
        self._ws.send(json.dumps({"id": call, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=WAIT_SECONDS))
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def js(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its value."""
        answer = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description", str(details)))
        return answer["result"].get("value")

    def wait_for(self, expression: str, timeout: float = WAIT_SECONDS) -> Any:
        """Poll ``expression`` until it is truthy; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"waited {timeout:.0f} s for {expression!r} to hold")

    # ------------------------------------------------------------ as a person would
    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) in the middle of the element."""
        x, y = self._centre(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type(self, selector: str, text: str) -> None:
        """Replace the field's text by typing ``text`` into it (input events fire)."""
        self.click(selector)
        self.js(f"document.querySelector({json.dumps(selector)}).select()")
        self.send("Input.dispatchKeyEvent", type="keyDown", key="Backspace", code="Backspace",
                  windowsVirtualKeyCode=8)  # fmt: skip
        self.send("Input.dispatchKeyEvent", type="keyUp", key="Backspace", code="Backspace",
                  windowsVirtualKeyCode=8)  # fmt: skip
        self.send("Input.insertText", text=text)

    def choose(self, selector: str, value: str) -> None:
        """Pick an option of a <select> (as the keyboard would: the change event fires)."""
        self.js(
            f"(() => {{ const s = document.querySelector({json.dumps(selector)}); "
            f"s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
        )

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.js("[document.documentElement.scrollWidth, document.body.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            params["captureBeyondViewport"] = True
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))
        return path

    def _centre(self, selector: str) -> tuple[float, float]:
        rect = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
            "return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        return rect[0], rect[1]

    # ------------------------------------------------------------ lifecycle
    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._log.close()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
