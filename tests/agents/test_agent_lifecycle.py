"""A node the fleet removes: each cloud's termination signal on a fake metadata service, the
checkpoint hook run once, and the AWS lifecycle action completed against moto's Auto Scaling
(heartbeats while a slow hook runs, bounded on a hung one); Azure's Terminate approved."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from agent_procs import FakeImds
from botocore.validate import ParamValidator
from moto import mock_aws
from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult

from aifinops.agents.agent import Agent
from aifinops.agents.config import MetadataSection, parse_config
from aifinops.agents.lifecycle import SCALE_IN, see_off
from aifinops.agents.metadata import AwsMetadata, AzureMetadata
from aifinops.agents.nvml import NvmlSampler

REGION = "us-east-1"
HOOK = "finops-checkpoint"


class LifecycleActions:
    """What moto 5 lacks: CompleteLifecycleAction and RecordLifecycleActionHeartbeat, checked
    against moto's own hooks and groups as Auto Scaling checks them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.completed: list[dict[str, str]] = []
        self.heartbeats: list[dict[str, str]] = []
        actions = self

        def check(response: Any) -> dict[str, str]:
            params = {
                k: response._get_param(k)
                for k in ("LifecycleHookName", "AutoScalingGroupName", "InstanceId")
            }
            backend = response.autoscaling_backend
            group = params["AutoScalingGroupName"]
            if not backend.describe_lifecycle_hooks(group, [params["LifecycleHookName"]]):
                raise ValidationError(f"No Lifecycle Hook found for {params}")
            members = [s.instance.id for s in backend.autoscaling_groups[group].instance_states]
            if params["InstanceId"] not in members:
                raise ValidationError(f"instance {params['InstanceId']} not in {group}")
            return params

        def complete(response: Any) -> Any:
            params = check(response)
            params["LifecycleActionResult"] = response._get_param("LifecycleActionResult")
            actions.completed.append(params)
            return EmptyResult()

        def heartbeat(response: Any) -> Any:
            actions.heartbeats.append(check(response))
            return EmptyResult()

        monkeypatch.setattr(
            AutoScalingResponse, "complete_lifecycle_action", complete, raising=False
        )
        monkeypatch.setattr(
            AutoScalingResponse, "record_lifecycle_action_heartbeat", heartbeat, raising=False
        )


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto: one group with the fleet's termination hook and one instance; a fake IMDS."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        asg = boto3.client("autoscaling", region_name=REGION)
        template = ec2.create_launch_template(
            LaunchTemplateName="t", LaunchTemplateData={"ImageId": "ami-12c6146b"}
        )["LaunchTemplate"]["LaunchTemplateId"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName="train-group",
            LaunchTemplate={"LaunchTemplateId": template},
            MinSize=0,
            MaxSize=2,
            DesiredCapacity=1,
            AvailabilityZones=[f"{REGION}a"],
        )
        asg.put_lifecycle_hook(
            LifecycleHookName=HOOK,
            AutoScalingGroupName="train-group",
            LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
            HeartbeatTimeout=120,
            DefaultResult="CONTINUE",
        )
        instance = asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"][0]
        imds = FakeImds(instance_id=instance["InstanceId"], lifecycle="on-demand")
        try:
            yield {
                "asg": asg,
                "imds": imds,
                "instance": instance["InstanceId"],
                "actions": LifecycleActions(monkeypatch),
            }
        finally:
            imds.stop()


def agent_for(
    tmp_path: Path, fake_nvml: Any, fleet: dict[str, Any], hook: dict, **life: Any
) -> Agent:
    fake_nvml("healthy8")
    cfg = parse_config(
        {
            "agent": {"sample_interval_seconds": 0.1, "window_seconds": 1.0},
            "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
            "export": {"path": ""},
            "prometheus": {"enabled": False},
            "metadata": {"provider": "aws", "endpoint": fleet["imds"].url},
            "checkpoint": {"hook": hook},
            "lifecycle": {"aws_hook_name": HOOK, "heartbeat_seconds": 1, **life},
        },
        source="test",
    )
    agent = Agent(
        cfg,
        NvmlSampler(),
        metadata=AwsMetadata(cfg.metadata),
        autoscaling_client=fleet["asg"],
    )
    agent.start()
    return agent


def hook_command(tmp_path: Path, sleep_seconds: float) -> dict[str, Any]:
    out = tmp_path / "hook.out"
    code = (
        f"import os, time; open({str(out)!r}, 'a')"
        ".write(os.environ['FINOPS_INTERRUPTION_ACTION'] + '\\n'); "
        f"time.sleep({sleep_seconds})"
    )
    return {"mode": "command", "command": [sys.executable, "-c", code], "timeout_seconds": 60}


def wait_for(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)


def scale_in(agent: Agent, polls: int = 3) -> None:
    for _ in range(polls):  # the state stays Terminated while the hook waits
        agent.handle_notices(agent.metadata.poll())


def test_aws_target_lifecycle_state_runs_the_hook_once_and_completes_the_action(
    tmp_path: Path, fake_nvml: Any, fleet: dict[str, Any]
) -> None:
    agent = agent_for(tmp_path, fake_nvml, fleet, hook_command(tmp_path, 0))
    assert agent.metadata.poll() == []  # InService: nothing
    fleet["imds"].values["meta-data/autoscaling/target-lifecycle-state"] = "Terminated"
    scale_in(agent)
    actions = fleet["actions"]
    wait_for(lambda: actions.completed, 10)
    scale_in(agent)  # still Terminated: answered once, hook not rerun
    wait_for(lambda: ("lifecycle", "checkpointed") in agent.counters.hook_runs, 5)
    time.sleep(0.3)
    agent.close()
    assert (tmp_path / "hook.out").read_text() == f"{SCALE_IN}\n"
    assert actions.completed == [
        {
            "LifecycleHookName": HOOK,
            "AutoScalingGroupName": "train-group",  # found with DescribeAutoScalingInstances
            "InstanceId": fleet["instance"],
            "LifecycleActionResult": "CONTINUE",
        }
    ]
    assert agent.notices["interruption"].action == SCALE_IN
    assert agent.counters.hook_runs[("lifecycle", "checkpointed")] == 1


def test_aws_slow_hook_is_heartbeaten_then_completed(
    tmp_path: Path, fake_nvml: Any, fleet: dict[str, Any]
) -> None:
    agent = agent_for(tmp_path, fake_nvml, fleet, hook_command(tmp_path, 3.5))
    fleet["imds"].values["meta-data/autoscaling/target-lifecycle-state"] = "Terminated"
    scale_in(agent)
    actions = fleet["actions"]
    wait_for(lambda: actions.completed, 15)
    wait_for(lambda: ("lifecycle", "checkpointed") in agent.counters.hook_runs, 5)
    agent.close()
    assert len(actions.heartbeats) >= 2
    assert len(actions.completed) == 1
    assert agent.counters.hook_runs[("lifecycle", "checkpointed")] == 1


def test_aws_hung_hook_is_bounded(tmp_path: Path, fake_nvml: Any, fleet: dict[str, Any]) -> None:
    agent = agent_for(tmp_path, fake_nvml, fleet, hook_command(tmp_path, 600), max_wait_seconds=2)
    fleet["imds"].values["meta-data/autoscaling/target-lifecycle-state"] = "Terminated"
    started = time.monotonic()
    scale_in(agent)
    actions = fleet["actions"]
    wait_for(lambda: actions.completed, 15)
    elapsed = time.monotonic() - started
    wait_for(lambda: ("lifecycle", "timeout") in agent.counters.hook_runs, 5)
    agent.close()
    assert len(actions.completed) == 1 and 1.5 < elapsed < 10
    assert agent.counters.hook_runs[("lifecycle", "timeout")] == 1


def test_the_agents_calls_hold_to_botocores_models(fleet: dict[str, Any]) -> None:
    from aifinops.agents.config import LifecycleSection
    from aifinops.agents.lifecycle import AwsLifecycleAction

    calls: list[tuple[Any, dict[str, Any]]] = []
    client = boto3.client("autoscaling", region_name=REGION)
    client.meta.events.register(
        "provide-client-params.autoscaling.*",
        lambda params, model, **_: calls.append((model, dict(params))),
    )
    action = AwsLifecycleAction(
        LifecycleSection(aws_hook_name=HOOK), REGION, fleet["instance"], client
    )
    action.heartbeat()
    action.complete()
    names = [model.name for model, _ in calls]
    assert names == [
        "DescribeAutoScalingInstances",
        "RecordLifecycleActionHeartbeat",
        "CompleteLifecycleAction",
    ]
    for model, params in calls:
        assert not ParamValidator().validate(params, model.input_shape).has_errors()


def test_see_off_waits_for_the_job_to_let_go_of_the_gpus() -> None:
    now = [0.0]
    done = threading.Event()
    done.set()
    released = iter([False, False, True])

    class Clock:
        def wait(self, seconds: float) -> bool:
            now[0] += seconds
            return False

    outcome = see_off(
        done,
        lambda: next(released),
        max_wait_seconds=60,
        heartbeat_seconds=10,
        stop=Clock(),  # type: ignore[arg-type]
        clock=lambda: now[0],
    )
    assert outcome == "checkpointed" and now[0] == 2.0


class FakeAzureImds:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.approved: list[Any] = []
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                assert self.headers["Metadata"] == "true"
                self._send(200, json.dumps({"DocumentIncarnation": 1, "Events": imds.events}))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                imds.approved.append(json.loads(body))
                self._send(200, "")

            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_azure_terminate_event_runs_the_hook_once_and_approves_it(
    tmp_path: Path, fake_nvml: Any
) -> None:
    imds = FakeAzureImds(
        [
            {
                "EventId": "E-1",
                "EventType": "Terminate",
                "ResourceType": "VirtualMachine",
                "Resources": ["train_3"],
                "EventStatus": "Scheduled",
                "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT",
            }
        ]
    )
    fake_nvml("healthy8")
    cfg = parse_config(
        {
            "spool": {"dir": str(tmp_path / "spool"), "fsync": False},
            "export": {"path": ""},
            "prometheus": {"enabled": False},
            "metadata": {"provider": "azure", "endpoint": imds.url},
            "checkpoint": {"hook": hook_command(tmp_path, 0)},
        },
        source="test",
    )
    metadata = AzureMetadata(cfg.metadata)
    metadata._name = "train_3"
    agent = Agent(cfg, NvmlSampler(), metadata=metadata)
    agent.start()
    for _ in range(3):
        agent.handle_notices(metadata.poll())
    wait_for(lambda: imds.approved, 10)
    for _ in range(2):
        agent.handle_notices(metadata.poll())
    time.sleep(0.3)
    agent.close()
    imds.httpd.shutdown()
    assert (tmp_path / "hook.out").read_text() == f"{SCALE_IN}\n"
    assert imds.approved == [{"StartRequests": [{"EventId": "E-1"}]}]


def test_azure_terminate_for_another_vm_is_ignored() -> None:
    imds = FakeAzureImds([{"EventId": "E-2", "EventType": "Terminate", "Resources": ["other_1"]}])
    metadata = AzureMetadata(MetadataSection(provider="azure", endpoint=imds.url))
    metadata._name = "train_3"
    assert metadata.poll() == []
    imds.httpd.shutdown()


def test_gcp_shutdown_script_path_runs_the_hook_and_waits_for_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aifinops.agents.cli import main

    hook = hook_command(tmp_path, 1)
    config = tmp_path / "agent.json"
    config.write_text(
        json.dumps(
            {
                "metadata": {"provider": "gcp"},
                "checkpoint": {"hook": hook},
                "lifecycle": {"max_wait_seconds": 30},
            }
        )
    )
    started = time.monotonic()
    assert main(["--config", str(config), "--scale-in"]) == 0
    assert time.monotonic() - started >= 1  # waited for the hook
    assert json.loads(capsys.readouterr().out) == {"scale_in": "checkpointed"}
    assert (tmp_path / "hook.out").read_text() == f"{SCALE_IN}\n"


def test_gcp_shutdown_script_path_is_bounded_on_a_hung_hook(tmp_path: Path) -> None:
    from aifinops.agents.lifecycle import scale_in_now

    cfg = parse_config(
        {
            "metadata": {"provider": "gcp"},
            "checkpoint": {"hook": hook_command(tmp_path, 600)},
            "lifecycle": {"max_wait_seconds": 1.5},
        }
    )
    started = time.monotonic()
    assert scale_in_now(cfg) == "timeout"
    assert time.monotonic() - started < 5


def test_a_file_hook_is_done_when_the_job_has_left_the_gpus(tmp_path: Path) -> None:
    from aifinops.agents.lifecycle import gpu_processes_gone, scale_in_now

    marker = tmp_path / "interruption.json"
    cfg = parse_config(
        {
            "metadata": {"provider": "gcp"},
            "checkpoint": {"hook": {"mode": "file", "file": str(marker)}},
            "lifecycle": {"max_wait_seconds": 10},
        }
    )
    answers = iter([False, False, True])
    assert scale_in_now(cfg, released=lambda: next(answers)) == "checkpointed"
    assert json.loads(marker.read_text())["action"] == SCALE_IN
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 4242\n")
    fake.chmod(0o755)
    assert gpu_processes_gone(str(fake)) is False
    fake.write_text("#!/bin/sh\nexit 0\n")
    assert gpu_processes_gone(str(fake)) is True
    assert gpu_processes_gone(str(tmp_path / "missing")) is False  # unknown is not gone
