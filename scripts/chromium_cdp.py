"""Open a page in Debian's headless Chromium and read what a user would see, over the
DevTools protocol: console messages, exceptions, network requests, element boxes and a
full-page screenshot. Used by tests/reporting/test_html_report.py and report_screenshot.py.

Chromium runs with a fresh profile and every background service off (no sync, no component
updates, no QUIC, no first-run), so the only requests are the page's own.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageVisit:
    console: list[dict[str, Any]] = field(default_factory=list)  # level, text, source
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    boxes: list[dict[str, Any]] = field(default_factory=list)  # from the page's script
    screenshot_png: bytes = b""

    @property
    def errors(self) -> list[str]:
        return self.exceptions + [
            f"{m['level']}: {m['text']}" for m in self.console if m["level"] in ("error", "warning")
        ]


class _Session:
    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self.socket = connect(url, max_size=256 * 1024 * 1024, open_timeout=20)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 30) -> Any:
        self.next_id += 1
        request_id = self.next_id
        self.socket.send(json.dumps({"id": request_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == request_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(method)

    def close(self) -> None:
        self.socket.close()


BOXES_SCRIPT = """
JSON.stringify([...document.querySelectorAll('svg[data-chart]')].map(s => {
  const r = s.getBoundingClientRect();
  return {name: s.dataset.chart, x: r.left + scrollX, y: r.top + scrollY, width: r.width,
          height: r.height, marks: s.querySelectorAll('rect, circle, polyline').length};
}).concat([{name: '#document', x: 0, y: 0, width: document.documentElement.scrollWidth,
            height: document.documentElement.scrollHeight, marks: 0}]))
"""


def visit(page: Path, width: int = 1000, settle_seconds: float = 0.5) -> PageVisit:
    """Load `page` (a local file) and return what happened and a full-page screenshot."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium not installed (Debian: apt-get install chromium)")
    profile = Path(tempfile.mkdtemp(prefix="finops-chromium-"))
    process = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    session: _Session | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            targets = json.loads(response.read())
        target = next(t for t in targets if t.get("type") == "page")
        session = _Session(target["webSocketDebuggerUrl"])
        for domain in ("Runtime", "Log", "Network", "Page"):
            session.send(f"{domain}.enable")
        session.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        session.send("Page.navigate", {"url": page.resolve().as_uri()})
        session.wait_for("Page.loadEventFired")
        time.sleep(settle_seconds)
        result = session.send(
            "Runtime.evaluate", {"expression": BOXES_SCRIPT, "returnByValue": True}
        )
        boxes = json.loads(result["result"]["value"])
        document = boxes[-1]
        shot = session.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": document["width"],
                    "height": document["height"],
                    "scale": 1,
                },
            },
            timeout=60,
        )
        visit = PageVisit(boxes=boxes[:-1], screenshot_png=base64.b64decode(shot["data"]))
        for event in session.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
                )
                visit.console.append(
                    {"level": params.get("type"), "text": text, "source": "console"}
                )
            elif method == "Log.entryAdded":
                entry = params.get("entry", {})
                visit.console.append(
                    {
                        "level": entry.get("level"),
                        "text": entry.get("text", ""),
                        "source": entry.get("source"),
                    }
                )
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                visit.exceptions.append(
                    details.get("exception", {}).get("description")
                    or details.get("text", "exception")
                )
            elif method == "Network.requestWillBeSent":
                visit.requests.append(params.get("request", {}).get("url", ""))
        return visit
    finally:
        if session is not None:
            session.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
