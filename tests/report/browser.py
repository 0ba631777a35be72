"""Open a page in a real headless Chromium and record what it did (stdlib only).

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no websocket library and no
port are needed. :func:`open_page` returns every request the page made, every console error or
uncaught exception, and a full-page PNG screenshot.

Run the browser tests locally: install Debian's ``chromium`` (``apt-get install -y chromium``;
``.ci/run`` does this when it is missing), or point ``READMIT_CHROMIUM`` at another Chromium or
Chrome binary, then ``pytest tests/report/test_browser.py``.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
)


def chromium_binary() -> str | None:
    return os.environ.get("READMIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")


@dataclass
class PageVisit:
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    png: bytes = b""
    loaded: bool = False


class _Pipe:
    def __init__(self, proc: subprocess.Popen, to_browser: int, from_browser: int):
        self.proc, self.out, self.inp = proc, to_browser, from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.out, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self.receive(timeout)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.inp], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def wait_for(self, method: str, timeout: float) -> bool:
        if any(e.get("method") == method for e in self.events):
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.receive(deadline - time.monotonic())
            except TimeoutError:
                return False
            self.events.append(event)
            if event.get("method") == method:
                return True
        return False


def open_page(url: str, *, width: int = 1280, height: int = 900, timeout: float = 60.0) -> PageVisit:
    """Load ``url`` in headless Chromium; return its requests, errors and a full-page screenshot."""
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("no chromium found: apt-get install -y chromium (or set READMIT_CHROMIUM)")
    visit = PageVisit()
    with tempfile.TemporaryDirectory() as profile:
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4.
        proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=lambda: (os.dup2(to_browser_r, 3), os.dup2(from_browser_w, 4)),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(proc, to_browser_w, from_browser_r)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
            pipe.events.clear()
            pipe.send("Page.navigate", {"url": url}, session=session)
            visit.loaded = pipe.wait_for("Page.loadEventFired", timeout)
            time.sleep(0.5)  # late console messages and requests
            pipe.wait_for("__drain__", 0.5)
            shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                             session=session, timeout=timeout)
            visit.png = base64.b64decode(shot["data"])
            for event in pipe.events:
                method, params = event.get("method"), event.get("params", {})
                if method == "Network.requestWillBeSent":
                    visit.requests.append(params["request"]["url"])
                elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    visit.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
                elif method == "Runtime.exceptionThrown":
                    details = params["exceptionDetails"]
                    visit.errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
                elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                    visit.errors.append(params["entry"].get("text", ""))
            try:
                pipe.send("Browser.close", timeout=10)
            except (RuntimeError, TimeoutError):
                pass
        finally:
            os.close(to_browser_w)
            os.close(from_browser_r)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return visit


def save(visit: PageVisit, path: Path) -> Path:
    path.write_bytes(visit.png)
    return path
