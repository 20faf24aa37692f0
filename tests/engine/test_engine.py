"""The offline engine applies transforms as the Pulumi engine does and records everything."""

import pulumi
import pulumi_aws as aws
import pytest

from aifinops.engine import EngineError, run_program
from aifinops.tagging import tagging_transform

STACK_TAGS = {"Project": "vision", "Team": "ml", "Environment": "dev"}


def run(program, stack="test"):
    return run_program(program, stack, {"aws:region": "us-west-2"}, {"aws": "us-west-2"})


def by_name(result):
    return {r.name: r for r in result.resources}


def test_stack_transform_tags_every_taggable_resource_registered_after_it():
    def program():
        aws.s3.Bucket("before")
        pulumi.runtime.register_resource_transform(tagging_transform(STACK_TAGS))
        aws.s3.Bucket("after")
        aws.iam.RolePolicy("policy", role="r", policy="{}")

    resources = by_name(run(program))
    assert "tags" not in resources["before"].inputs  # transforms apply only to later resources
    assert resources["after"].inputs["tags"] == STACK_TAGS
    assert "tags" not in resources["policy"].inputs  # not taggable: untouched


def test_transform_order_is_own_then_parents_then_stack():
    seen: list[str] = []

    def mark(label):
        def transform(args):
            if args.custom:
                seen.append(f"{label}:{args.name}")
                tags = dict(args.props.get("tags") or {})
                tags["order"] = tags.get("order", "") + label
                return pulumi.ResourceTransformResult({**args.props, "tags": tags}, args.opts)
            return None

        return transform

    class Outer(pulumi.ComponentResource):
        def __init__(self, name, opts=None):
            super().__init__("test:index:Outer", name, None, opts)
            Inner(f"{name}-inner", pulumi.ResourceOptions(parent=self, transforms=[mark("P")]))
            self.register_outputs({})

    class Inner(pulumi.ComponentResource):
        def __init__(self, name, opts=None):
            super().__init__("test:index:Inner", name, None, opts)
            aws.s3.Bucket(
                f"{name}-bucket", opts=pulumi.ResourceOptions(parent=self, transforms=[mark("O")])
            )
            self.register_outputs({})

    def program():
        pulumi.runtime.register_resource_transform(mark("S"))
        Outer("outer", pulumi.ResourceOptions(transforms=[mark("G")]))

    resources = by_name(run(program))
    bucket = resources["outer-inner-bucket"]
    # own (O), parent (P), grandparent (G), then the stack transform (S)
    assert bucket.inputs["tags"]["order"] == "OPGS"
    assert bucket.parent == resources["outer-inner"].urn
    assert resources["outer-inner"].parent == resources["outer"].urn


def test_transforms_receive_wire_names():
    seen = {}

    def spy(args):
        if args.type_ == "aws:ec2/launchTemplate:LaunchTemplate":
            seen.update(args.props)
        return None

    def program():
        pulumi.runtime.register_resource_transform(spy)
        aws.ec2.LaunchTemplate(
            "lt",
            aws.ec2.LaunchTemplateArgs(
                instance_type="g5.xlarge",
                metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(http_tokens="required"),
            ),
        )

    run(program)
    assert seen["instanceType"] == "g5.xlarge"
    assert seen["metadataOptions"] == {"httpTokens": "required"}


def test_urns_ids_outputs_and_invokes_are_deterministic():
    def program():
        bucket = aws.s3.Bucket("b")
        pulumi.export("arn", bucket.arn)
        pulumi.export("zones", aws.get_availability_zones().names)

    first, second = run(program), run(program)
    assert [r.urn for r in first.resources] == ["urn:pulumi:test::finops::aws:s3/bucket:Bucket::b"]
    assert first.resources[0].id == second.resources[0].id
    assert first.invokes == ["aws:index/getAvailabilityZones:getAvailabilityZones"]


def test_unknown_data_source_is_a_clear_error():
    def program():
        aws.ec2.get_instance_type(instance_type="g5.xlarge")

    with pytest.raises(
        EngineError, match="no answer for data source 'aws:ec2/getInstanceType:getInstanceType'"
    ):
        run(program)


def test_program_errors_name_the_stack():
    def program():
        raise ValueError("fleet 'x': nodes.max must be >= 1")

    with pytest.raises(EngineError, match=r"stack 'test'.*nodes.max"):
        run(program)


def test_logs_are_captured():
    def program():
        pulumi.log.info("cheaper option: ml.inf2.xlarge")

    assert ("info", "cheaper option: ml.inf2.xlarge") in run(program).messages


def test_a_run_does_not_wait_for_tasks_an_earlier_failed_run_left():
    """A run that fails leaves its unfinished output tasks in the SDK's process-wide set; the
    next run must not wait for tasks of a loop that is closed (it hung the suite)."""
    import asyncio
    import threading

    stale_loop = asyncio.new_event_loop()
    stale = stale_loop.create_task(asyncio.sleep(3600))  # never runs: its loop never does
    pulumi.runtime.settings.SETTINGS.outputs.add(stale)
    finished: list[object] = []

    def program() -> None:
        raise ValueError("nodes.max must be >= 1")

    def body() -> None:
        with pytest.raises(EngineError, match=r"nodes\.max"):
            run(program)
        finished.append(True)

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(timeout=60)
    stale.cancel()
    stale_loop.run_until_complete(asyncio.gather(stale, return_exceptions=True))
    stale_loop.close()
    assert finished, "the run waited for a task of an earlier, closed loop"


def test_aliases_are_dropped_offline_and_change_nothing_else():
    """With no state an alias matches nothing; azure-native's ~45 per resource, each turned
    into a URN by the SDK (`Resource._aliases`), made Azure previews 3.5x slower. The inputs
    are what the program gave."""
    import pulumi_azure_native as azure_native

    created = {}

    def program():
        created["renamed"] = aws.s3.Bucket(
            "renamed", bucket="b1", opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")])
        )
        created["rg"] = azure_native.resources.ResourceGroup("rg", location="eastus")

    resources = by_name(run(program))
    assert resources["renamed"].inputs["bucket"] == "b1"
    assert resources["rg"].inputs["location"] == "eastus"
    assert created["renamed"]._aliases == []
    assert created["rg"]._aliases == []
