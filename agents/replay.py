"""Recorded traces: GPU readings as JSON Lines, written by `--record`, replayed by `--replay`.

A trace line is one `GpuSample` as a JSON object (the dataclass fields); the readings of one
tick share a timestamp. Replaying runs the whole pipeline (windows, spool, exporters)
without a GPU, for demos.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aifinops.agents.records import GpuSample, MigInstance


class ReplaySource:
    """Replays a recorded trace (JSON Lines of GpuSample dicts), for demos without a GPU.

    Samples sharing a timestamp form one reading; each `sample()` returns the next reading
    stamped with the current time. `exhausted` turns true after the last one.
    """

    driver_version = "replay"

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        self.path = Path(path)
        self.loop = loop
        self.exhausted = False
        self._rounds: list[list[GpuSample]] = []
        self._next = 0

    def start(self) -> list[tuple[int, str, str]]:
        rounds: dict[float, list[GpuSample]] = {}
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                sample = sample_from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{self.path}:{number}: not a recorded sample: {exc}") from exc
            rounds.setdefault(sample.timestamp, []).append(sample)
        if not rounds:
            raise ValueError(f"{self.path}: the trace is empty")
        self._rounds = [sorted(rounds[t], key=lambda s: s.gpu_index) for t in sorted(rounds)]
        first = self._rounds[0]
        return [(s.gpu_index, s.gpu_uuid, s.gpu_name) for s in first]

    def sample(self, now: float | None = None) -> list[GpuSample]:
        now = time.time() if now is None else now
        if self._next >= len(self._rounds):
            if not self.loop:
                self.exhausted = True
                return []
            self._next = 0
        reading = self._rounds[self._next]
        self._next += 1
        if self._next >= len(self._rounds) and not self.loop:
            self.exhausted = True
        return [_restamp(s, now) for s in reading]

    def shutdown(self) -> None:
        return None


def _restamp(sample: GpuSample, now: float) -> GpuSample:
    values = sample_to_json(sample)
    values["timestamp"] = now
    return sample_from_json(values)


def sample_to_json(sample: GpuSample) -> dict[str, Any]:
    out = {name: getattr(sample, name) for name in GpuSample.__dataclass_fields__}
    out["process_memory_bytes"] = [list(p) for p in sample.process_memory_bytes]
    out["xid_events"] = list(sample.xid_events)
    out["mig_instances"] = [m._asdict() for m in sample.mig_instances]
    out["unsupported"] = dict(sample.unsupported)
    return out


def sample_from_json(raw: dict[str, Any]) -> GpuSample:
    values = {k: v for k, v in raw.items() if k in GpuSample.__dataclass_fields__}
    values["process_memory_bytes"] = tuple(tuple(p) for p in values.get("process_memory_bytes", ()))
    values["xid_events"] = tuple(values.get("xid_events", ()))
    values["mig_instances"] = tuple(MigInstance(**m) for m in values.get("mig_instances", ()))
    values["unsupported"] = tuple(sorted(dict(values.get("unsupported") or {}).items()))
    return GpuSample(**values)
