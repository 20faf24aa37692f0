"""Hooks (signal / file / command), the shipper's backoff, and the structured log lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aifinops.agents.config import HookConfig
from aifinops.agents.hooks import run_hook
from aifinops.agents.logs import JsonFormatter
from aifinops.agents.shipping import Shipper
from aifinops.agents.spool import Spool

ENV = {
    "FINOPS_EVENT": "interruption",
    "FINOPS_INTERRUPTION_ACTION": "terminate",
    "FINOPS_INTERRUPTION_TIME": "2026-11-28T16:02:00Z",
    "FINOPS_INTERRUPTION_DEADLINE_SECONDS": "118",
    "FINOPS_CLOUD": "aws",
    "FINOPS_INSTANCE_ID": "i-0abc",
}

TRAINER = """
import signal, sys, time, pathlib
out = pathlib.Path(sys.argv[1])
signal.signal(signal.SIGUSR1, lambda *a: (out.write_text("checkpointed"), sys.exit(0)))
print("ready", flush=True)
time.sleep(30)
"""


def run(hook: HookConfig) -> list[str]:
    outcomes: list[str] = []
    thread = run_hook(hook, ENV, on_done=outcomes.append)
    assert thread is not None
    thread.join(timeout=20)
    return outcomes


@pytest.mark.parametrize("via_pid_file", [False, True])
def test_signal_hook_reaches_the_training_process(tmp_path: Path, via_pid_file: bool) -> None:
    done = tmp_path / "done"
    trainer = subprocess.Popen(
        [sys.executable, "-c", TRAINER, str(done)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert trainer.stdout is not None and trainer.stdout.readline().strip() == "ready"
        pid_file = tmp_path / "train.pid"
        pid_file.write_text(f"{trainer.pid}\n")
        hook = (
            HookConfig(mode="signal", pid_file=str(pid_file))
            if via_pid_file
            else HookConfig(mode="signal", signal="SIGUSR1", pid=trainer.pid)
        )
        assert run(hook) == ["ok"]
        assert trainer.wait(timeout=10) == 0
        assert done.read_text() == "checkpointed"
    finally:
        trainer.kill()
        trainer.wait(timeout=5)


def test_file_hook_writes_the_event_atomically(tmp_path: Path) -> None:
    target = tmp_path / "run" / "interruption.json"
    assert run(HookConfig(mode="file", file=str(target))) == ["ok"]
    event = json.loads(target.read_text())
    assert event["event"] == "interruption" and event["action"] == "terminate"
    assert event["time"] == "2026-11-28T16:02:00Z" and event["deadline_seconds"] == 118.0
    assert event["instance_id"] == "i-0abc"
    assert [p.name for p in target.parent.iterdir()] == ["interruption.json"]  # no temp left


def test_command_hook_gets_the_variables_and_is_bounded(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    dump = f"import json, os; json.dump({{k: v for k, v in os.environ.items() if k.startswith('FINOPS_')}}, open({str(out)!r}, 'w'))"
    assert run(HookConfig(mode="command", command=(sys.executable, "-c", dump))) == ["ok"]
    seen = json.loads(out.read_text())
    assert {key: seen.get(key) for key in ENV} == ENV
    assert run(
        HookConfig(mode="command", command=(sys.executable, "-c", "raise SystemExit(3)"))
    ) == ["failed"]
    slow = HookConfig(
        mode="command",
        command=(sys.executable, "-c", "import time; time.sleep(10)"),
        timeout_seconds=0.3,
    )
    started = time.monotonic()
    assert run(slow) == ["timeout"]
    assert time.monotonic() - started < 5


def test_hook_mode_none_does_nothing() -> None:
    assert run_hook(HookConfig(), ENV) is None


class Throttled(Exception):
    response = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}


def test_shipper_backs_off_on_throttling_and_keeps_records_until_accepted(tmp_path: Path) -> None:
    from aifinops.agents.cloudwatch import is_throttle

    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096, sinks=["cw"], fsync=False)
    spool.append([json.dumps({"n": n}) + "\n" for n in range(5)])
    accepted: list[int] = []
    answers: list[Exception | None] = [Throttled(), Throttled(), None]

    def deliver(records: list[dict], lines: list[str]) -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        accepted.extend(r["n"] for r in records)

    shipper = Shipper(
        spool,
        "cw",
        deliver,
        batch_records=10,
        interval_seconds=1.0,
        max_backoff_seconds=300.0,
        is_throttle=is_throttle,
    )
    first = shipper.ship_once()
    second = shipper.ship_once()
    assert first is not None and second is not None
    assert 4.0 <= first <= 8.0 and 8.0 <= second <= 16.0  # 4 s * 2^n, jittered down to half
    assert shipper.throttled_total == 2 and spool.depth("cw") == 5  # nothing acked
    assert shipper.ship_once() == 1.0  # accepted: idle interval next
    assert accepted == [0, 1, 2, 3, 4] and spool.depth("cw") == 0
    assert shipper.delivered_records_total == 5 and shipper.last_success_unixtime > 0


def test_backoff_is_capped(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096, sinks=["cw"], fsync=False)
    spool.append(['{"n": 1}\n'])

    def down(records: list[dict], lines: list[str]) -> None:
        raise ConnectionRefusedError("endpoint down")

    shipper = Shipper(
        spool, "cw", down, batch_records=10, interval_seconds=1.0, max_backoff_seconds=3.0
    )
    delays = [shipper.ship_once() for _ in range(8)]
    assert all(d is not None and d <= 3.0 for d in delays)
    assert shipper.failures_total == 8 and shipper.throttled_total == 0


def test_json_log_lines_carry_the_extra_fields() -> None:
    record = logging.LogRecord("finops_agent", logging.WARNING, __file__, 1, "gpu lost", None, None)
    record.gpu = 5
    record.uuid = "GPU-5"
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "warning" and line["msg"] == "gpu lost"
    assert line["gpu"] == 5 and line["uuid"] == "GPU-5" and line["ts"].endswith("Z")


def test_cloudwatch_skips_too_old_records_and_a_permanent_refusal_does_not_block(
    tmp_path: Path,
) -> None:
    from botocore.exceptions import ClientError

    from aifinops.agents.cloudwatch import CloudWatchPublisher
    from aifinops.agents.config import CloudWatchSection

    sent: list[list[dict]] = []

    class Client:
        refuse = False

        def put_metric_data(self, Namespace: str, MetricData: list[dict]) -> None:
            if self.refuse:
                error = {"Error": {"Code": "InvalidParameterValue", "Message": "bad timestamp"}}
                raise ClientError(error, "PutMetricData")  # type: ignore[arg-type]
            sent.append(MetricData)

    publisher = CloudWatchPublisher(
        CloudWatchSection(endpoint_url="http://127.0.0.1:9"), "us-east-1"
    )
    publisher.client = Client()
    now = 2_000_000_000.0
    fresh = {
        "window_start": now - 60,
        "instance_id": "i-1",
        "gpu_index": 0,
        "sample_count": 2,
        "instance_type": "p5.48xlarge",
        "gpu_util_percent": {"min": 1, "mean": 2, "p95": 3, "max": 3},
    }
    old = {**fresh, "window_start": now - 15 * 86400}
    assert publisher.publish([old, fresh], now=now) > 0
    assert publisher.too_old_records_total == 1
    assert all(d["Timestamp"].timestamp() == now - 60 for d in sent[0])

    spool = Spool(
        tmp_path, max_bytes=1 << 20, segment_bytes=4096, sinks=["cloudwatch"], fsync=False
    )
    spool.append([json.dumps(fresh) + "\n", json.dumps({**fresh, "gpu_index": 1}) + "\n"])
    publisher.client.refuse = True
    shipper = Shipper(
        spool,
        "cloudwatch",
        lambda records, lines: publisher.publish(records, now=now),
        batch_records=1,
        interval_seconds=1.0,
        max_backoff_seconds=5.0,
    )
    assert shipper.ship_once() is None  # refused for good: skipped at once, not retried
    assert shipper.rejected_records_total == 1 and spool.depth("cloudwatch") == 1
    publisher.client.refuse = False
    shipper.ship_once()
    assert spool.depth("cloudwatch") == 0 and shipper.delivered_records_total == 1


def test_a_damaged_spool_line_is_skipped_not_a_blocked_queue(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=4096, sinks=["s"], fsync=False)
    spool.append(['{"n": 1}\n', '{"n": 2, "torn\n', '{"n": 3}\n'])
    got: list[int] = []
    shipper = Shipper(
        spool,
        "s",
        lambda records, lines: got.extend(r["n"] for r in records),
        batch_records=10,
        interval_seconds=1.0,
        max_backoff_seconds=1.0,
    )
    shipper.ship_once()
    assert got == [1, 3] and shipper.rejected_records_total == 1 and spool.depth("s") == 0
