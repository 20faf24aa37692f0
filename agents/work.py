"""Units of work reported by the training job (steps, samples, tokens), per window.

Two ways in, both local: HTTP POST on a loopback port, or lines appended to a file.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

log = logging.getLogger("finops_agent.work")

_UNIT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class WorkCounter:
    """Thread-safe totals: per window (`take`) and since start (`totals`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window: dict[str, float] = {}
        self._totals: dict[str, float] = {}
        self.rejected_total = 0

    def add_report(self, report: Any) -> None:
        """Add `{"unit": u, "amount": x}` or `{"units": {u: x, ...}}`; ValueError if malformed."""
        if not isinstance(report, dict):
            raise ValueError("a work report is a JSON object")
        if "units" in report:
            units = report["units"]
            if not isinstance(units, dict) or not units:
                raise ValueError('"units" must be an object such as {"steps": 1, "tokens": 4096}')
            items = list(units.items())
        else:
            items = [(report.get("unit"), report.get("amount"))]
        checked = []
        for unit, amount in items:
            if not isinstance(unit, str) or not _UNIT.match(unit):
                raise ValueError(f"unit {unit!r} must match [a-z][a-z0-9_]{{0,31}}")
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                raise ValueError(f"amount for {unit!r} must be a number, not {amount!r}")
            if not math.isfinite(amount) or amount < 0:
                raise ValueError(f"amount for {unit!r} must be finite and >= 0, not {amount!r}")
            checked.append((unit, float(amount)))
        with self._lock:
            for unit, amount in checked:
                self._window[unit] = self._window.get(unit, 0.0) + amount
                self._totals[unit] = self._totals.get(unit, 0.0) + amount

    def take(self) -> dict[str, float]:
        """The window's work so far, resetting it for the next window."""
        with self._lock:
            window, self._window = self._window, {}
            return window

    def totals(self) -> dict[str, float]:
        with self._lock:
            return dict(self._totals)


class WorkServer:
    """`POST /work` on a loopback address; 204 when accepted, 400 with the reason when not."""

    def __init__(self, counter: WorkCounter, host: str, port: int) -> None:
        self.counter = counter

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/work":
                    self._answer(404, "POST /work")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > 65536:
                    self._answer(413, "report too large")
                    return
                try:
                    counter.add_report(json.loads(self.rfile.read(length) or b"null"))
                except (ValueError, json.JSONDecodeError) as exc:
                    counter.rejected_total += 1
                    self._answer(400, str(exc))
                    return
                self._answer(204, "")

            def _answer(self, status: int, text: str) -> None:
                body = (text + "\n").encode() if text else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # no per-request access log

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="work-http", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class WorkFileFollower:
    """Reads lines the job appends to a file; called from the sampling loop (no thread)."""

    def __init__(self, counter: WorkCounter, path: str | Path) -> None:
        self.counter = counter
        self.path = Path(path)
        self.offset = 0
        self._inode = 0
        self._partial = b""

    def poll(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        if st.st_ino != self._inode or st.st_size < self.offset:  # rotated or truncated
            self._inode, self.offset, self._partial = st.st_ino, 0, b""
        if st.st_size == self.offset:
            return
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read(1 << 20)
        self.offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                self.counter.add_report(json.loads(line))
            except (ValueError, json.JSONDecodeError) as exc:
                self.counter.rejected_total += 1
                log.warning(
                    "bad work report line", extra={"file": str(self.path), "error": str(exc)}
                )
