import pulumi_aws as aws
import pytest

from aifinops import catalog
from aifinops.config import parse
from aifinops.cost import canonical_tags, estimate, price_resource
from aifinops.engine import run_program

REGION = "us-east-1"


def spot(t):
    return catalog.lookup(t, REGION).spot_usd_per_hour


def od(t):
    return catalog.lookup(t, REGION).on_demand_usd_per_hour


def asg(desired, base, percent, types, strategy=None):
    distribution = {"onDemandBaseCapacity": base, "onDemandPercentageAboveBaseCapacity": percent}
    if strategy:
        distribution["onDemandAllocationStrategy"] = strategy
    return {
        "desiredCapacity": desired,
        "mixedInstancesPolicy": {
            "instancesDistribution": distribution,
            "launchTemplate": {"overrides": [{"instanceType": t} for t in types]},
        },
    }


def test_asg_blends_every_override_and_the_spot_on_demand_split():
    types = ["g5.xlarge", "g6.xlarge", "g5.2xlarge"]
    priced = price_resource("aws:autoscaling/group:Group", asg(4, 1, 0, types), region=REGION)
    mean_spot = sum(spot(t) for t in types) / 3
    assert priced.hourly_usd == pytest.approx(3 * mean_spot + od("g5.xlarge"))
    assert priced.monthly_usd == pytest.approx(priced.hourly_usd * 730)
    assert priced.spot_share == pytest.approx(0.75)


def test_asg_percentage_above_base_and_lowest_price_on_demand():
    types = ["g5.2xlarge", "g5.xlarge"]
    priced = price_resource(
        "aws:autoscaling/group:Group", asg(5, 1, 50, types, "lowest-price"), region=REGION
    )
    mean_spot = sum(spot(t) for t in types) / 2
    # 1 base + 50% of the 4 above it = 3 on-demand at the cheapest override, 2 spot
    assert priced.hourly_usd == pytest.approx(2 * mean_spot + 3 * od("g5.xlarge"))


def test_aws_default_on_demand_percentage_is_100():
    priced = price_resource(
        "aws:autoscaling/group:Group",
        {
            "desiredCapacity": 2,
            "mixedInstancesPolicy": {
                "launchTemplate": {"overrides": [{"instanceType": "g5.xlarge"}]}
            },
        },
        region=REGION,
    )
    assert priced.hourly_usd == pytest.approx(2 * od("g5.xlarge"))


def test_fallback_group_at_zero_costs_nothing():
    priced = price_resource(
        "aws:autoscaling/group:Group", asg(0, 0, 100, ["g5.xlarge"]), region=REGION
    )
    assert priced.monthly_usd == 0
    assert "0 nodes at steady state" in priced.basis


def test_hours_per_month_scale_the_month():
    priced = price_resource(
        "aws:ec2/instance:Instance",
        {"instanceType": "p3.2xlarge"},
        region=REGION,
        hours_per_month=200,
    )
    assert priced.monthly_usd == pytest.approx(200 * od("p3.2xlarge"))


def test_sagemaker_endpoint_configuration():
    priced = price_resource(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        {"productionVariants": [{"instanceType": "ml.inf2.xlarge", "initialInstanceCount": 2}]},
        region=REGION,
    )
    assert priced.hourly_usd == pytest.approx(
        2 * catalog.lookup("ml.inf2.xlarge", REGION).on_demand_usd_per_hour
    )


def test_gcp_tpu_spot_and_azure_priority_mix():
    tpu = price_resource(
        "gcp:tpu/v2Vm:V2Vm",
        {"acceleratorType": "v5litepod-8", "schedulingConfig": {"spot": True}},
        region="us-central1",
    )
    assert tpu.hourly_usd == pytest.approx(
        catalog.lookup("v5litepod-8", "us-central1").spot_usd_per_hour
    )
    tpu_config = price_resource(
        "gcp:tpu/v2Vm:V2Vm",
        {"acceleratorConfig": {"type": "V5LITE_POD", "topology": "2x4"}},
        region="us-central1",
    )
    assert tpu_config.hourly_usd == pytest.approx(
        catalog.lookup("v5litepod-8", "us-central1").on_demand_usd_per_hour
    )
    size = "Standard_NC4as_T4_v3"
    info = catalog.lookup(size, "eastus")
    vmss = price_resource(
        "azure-native:compute:VirtualMachineScaleSet",
        {
            "sku": {"name": size, "capacity": 5},
            "virtualMachineProfile": {"priority": "Spot"},
            "priorityMixPolicy": {
                "baseRegularPriorityCount": 1,
                "regularPriorityPercentageAboveBase": 25,
            },
        },
        region="eastus",
    )
    assert vmss.hourly_usd == pytest.approx(
        2 * info.on_demand_usd_per_hour + 3 * info.spot_usd_per_hour
    )


def test_unknown_types_are_unpriced_with_the_reason_never_a_crash():
    priced = price_resource(
        "aws:ec2/instance:Instance", {"instanceType": "g5.xlarg"}, region=REGION
    )
    assert priced.monthly_usd == 0
    assert "did you mean g5.xlarge" in priced.unpriced_reason
    assert price_resource("aws:iam/role:Role", {}, region=REGION) is None


def _train_fleet_config(**fleet: object):
    """A stack config with one AWS fleet `train` of 2 x g5.xlarge, plus `fleet`'s keys."""
    return parse(
        {
            "finops:tags": {"Project": "vision", "Team": "ml", "Environment": "dev"},
            "finops:trainingFleets": [
                {
                    "name": "train",
                    "cloud": "aws",
                    "instanceTypes": ["g5.xlarge"],
                    "nodes": {"min": 0, "max": 2, "desired": 2},
                    "modelVersion": "v1",
                    **fleet,
                }
            ],
        }
    )


def test_estimate_resolves_launch_templates_and_totals_by_tag():
    config = _train_fleet_config(hoursPerMonth=100)

    import pulumi

    class Fleet(pulumi.ComponentResource):
        def __init__(self, name):
            super().__init__("test:index:Fleet", name, None)
            lt = aws.ec2.LaunchTemplate(
                f"{name}-lt", instance_type="g5.xlarge", opts=pulumi.ResourceOptions(parent=self)
            )
            aws.autoscaling.Group(
                f"{name}-asg",
                desired_capacity=2,
                max_size=2,
                min_size=0,
                launch_template=aws.autoscaling.GroupLaunchTemplateArgs(id=lt.id),
                tags=[
                    aws.autoscaling.GroupTagArgs(
                        key="Project", value="vision", propagate_at_launch=True
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.register_outputs({})

    run = run_program(lambda: Fleet("train"), "dev", {}, {"aws": REGION})
    report = estimate(run, config)
    asg_cost = next(c for c in report.resources if c.type == "aws:autoscaling/group:Group")
    assert asg_cost.component == "train"
    assert asg_cost.monthly_usd == pytest.approx(
        2 * od("g5.xlarge") * 100
    )  # hoursPerMonth of the fleet
    assert report.total_monthly_usd == pytest.approx(asg_cost.monthly_usd)
    assert report.by_tag["Project"] == {"vision": pytest.approx(asg_cost.monthly_usd)}
    assert report.by_tag["Team"] == {"(untagged)": pytest.approx(asg_cost.monthly_usd)}
    # the reversion trade-off, priced: 15 min of on-demand premium per return of 2 nodes,
    # against half a 30-min checkpoint interval of the whole 2-node job
    (line,) = [a for a in report.assumptions if a.startswith("fleet train:")]
    premium = 2 * (od("g5.xlarge") - spot("g5.xlarge")) * 15 / 60
    assert f"up to ${premium:,.2f} per return of 2 node(s) on g5.xlarge" in line
    assert f"against ${2 * od('g5.xlarge') * 0.25:,.2f} of work" in line
    assert "after 15 min of stable spot" in line and "900 s to checkpoint" in line


def test_reversion_trade_off_is_unknown_without_a_price():
    from aifinops.cost import reversion_assumptions

    config = _train_fleet_config(spotStableMinutes=30)
    (line,) = reversion_assumptions([], config)
    assert "after 30 min of stable spot" in line and "UNKNOWN cost" in line


def test_canonical_tags_map_gcp_spelling_back():
    assert canonical_tags(
        "gcp:tpu/v2Vm:V2Vm", {"labels": {"model-version": "v1", "project": "p"}}
    ) == {
        "ModelVersion": "v1",
        "Project": "p",
    }


def test_gcp_instance_groups_report_their_templates_labels():
    import pulumi_gcp as gcp

    config = parse(
        {
            "finops:tags": {"Project": "vision", "Team": "ml", "Environment": "dev"},
            "gcp:region": "us-central1",
        }
    )

    def program():
        template = gcp.compute.InstanceTemplate(
            "tpl",
            machine_type="g2-standard-8",
            disks=[gcp.compute.InstanceTemplateDiskArgs(source_image="debian-12", boot=True)],
            scheduling=gcp.compute.InstanceTemplateSchedulingArgs(
                provisioning_model="SPOT", preemptible=True, automatic_restart=False
            ),
            labels={"project": "vision", "model-version": "v7"},
        )
        gcp.compute.RegionInstanceGroupManager(
            "mig",
            base_instance_name="train",
            region="us-central1",
            target_size=3,
            versions=[
                gcp.compute.RegionInstanceGroupManagerVersionArgs(
                    instance_template=template.self_link
                )
            ],
        )

    report = estimate(run_program(program, "dev", {}, {"gcp": "us-central1"}), config)
    group = next(c for c in report.resources if c.name == "mig")
    assert group.tags == {"Project": "vision", "ModelVersion": "v7"}
    assert group.monthly_usd == pytest.approx(
        3 * catalog.lookup("g2-standard-8", "us-central1").spot_usd_per_hour * 730
    )
    assert report.by_tag["ModelVersion"] == {"v7": pytest.approx(group.monthly_usd)}


def test_scale_to_zero_endpoints_cost_nothing_at_rest():
    variant = {
        "instanceType": "ml.inf2.xlarge",
        "initialInstanceCount": 1,
        "managedInstanceScaling": {
            "status": "ENABLED",
            "minInstanceCount": 0,
            "maxInstanceCount": 2,
        },
    }
    priced = price_resource(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        {"productionVariants": [variant]},
        region=REGION,
    )
    assert priced.monthly_usd == 0
    assert "managed scaling floor" in priced.basis
    variant["managedInstanceScaling"]["minInstanceCount"] = 1
    priced = price_resource(
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
        {"productionVariants": [variant]},
        region=REGION,
    )
    assert priced.hourly_usd == pytest.approx(
        catalog.lookup("ml.inf2.xlarge", REGION).on_demand_usd_per_hour
    )


def test_flat_priced_resources():
    assert price_resource("aws:kms/key:Key", {}, region=REGION).monthly_usd == 1.00
    assert (
        price_resource("aws:cloudwatch/metricAlarm:MetricAlarm", {}, region=REGION).monthly_usd
        == 0.10
    )


def _vertex_inputs(**resources: object) -> dict[str, object]:
    machine = {"machineType": "ct5lp-hightpu-4t", "tpuTopology": "2x2"}
    return {
        "location": "us-central1",
        "deployConfig": {"dedicatedResources": {"machineSpec": machine, **resources}},
    }


def test_vertex_tpu_endpoint_priced_at_its_floor_showing_its_maximum():
    from aifinops.cost import VERTEX_DEPLOYMENT

    chip = catalog.lookup("v5litepod-4", "us-central1")
    priced = price_resource(
        VERTEX_DEPLOYMENT,
        _vertex_inputs(minReplicaCount=1, maxReplicaCount=3),
        region="eu-west-9",  # the resource's own location wins
    )
    assert priced.hourly_usd == pytest.approx(chip.on_demand_usd_per_hour)
    assert priced.instance_types == ("v5litepod-4",) and priced.nodes == 1
    most = 3 * chip.on_demand_usd_per_hour * 730
    assert f"at maxReplicaCount 3: ${most:,.2f}/month" in priced.basis
    spot = price_resource(
        VERTEX_DEPLOYMENT, _vertex_inputs(minReplicaCount=2, spot=True), region="us-central1"
    )
    assert spot.hourly_usd == pytest.approx(2 * chip.spot_usd_per_hour)
    other = price_resource(
        VERTEX_DEPLOYMENT,
        {"deployConfig": {"dedicatedResources": {"machineSpec": {"machineType": "g2-standard-8"}}}},
        region="us-central1",
    )
    assert other.unpriced_reason and "g2-standard-8 is not a TPU type" in other.unpriced_reason


def test_serverless_is_priced_from_the_stated_traffic_or_unpriced_never_zero():
    from aifinops.cost import price_resource

    config_inputs = {
        "productionVariants": [
            {"variantName": "primary", "modelName": "m",
             "serverlessConfig": {"memorySizeInMb": 4096, "maxConcurrency": 5}}
        ]
    }  # fmt: skip
    token = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
    unstated = price_resource(token, config_inputs, region="us-east-1")
    assert unstated is not None and unstated.unpriced_reason is not None
    assert "state requestsPerMonth and meanDurationMs" in unstated.unpriced_reason
    # 250,000 x 1.2 s x 4 GB x $0.00002 = $24.00
    priced = price_resource(token, config_inputs, region="us-east-1", traffic=(250_000, 1200))
    assert priced is not None and priced.monthly_usd == pytest.approx(24.0)
    elsewhere = price_resource(token, config_inputs, region="eu-west-1", traffic=(1, 1))
    assert elsewhere is not None and "priced in: us-east-1, us-west-2" in str(
        elsewhere.unpriced_reason
    )
    service = {
        "template": {
            "containers": [{"image": "i", "resources": {"limits": {"cpu": "2000m",
                                                                   "memory": "4Gi"}}}],
            "scaling": {"minInstanceCount": 0, "maxInstanceCount": 3},
        }
    }  # fmt: skip
    # 100,000 x 0.8 s x (2 x 0.000024 + 4 x 0.0000025) + 0.1 M x 0.40 = $4.68
    run = price_resource(
        "gcp:cloudrunv2/service:Service", service, region="us-central1", traffic=(100_000, 800)
    )
    assert run is not None and run.monthly_usd == pytest.approx(4.68)


def _pool(machine: str, **inputs: object) -> dict[str, object]:
    return {"location": "us-central1-a", "nodeConfig": {"machineType": machine}, **inputs}


def test_gke_node_pools_at_their_floor_showing_the_autoscalers_maximum():
    chip = catalog.lookup("v5litepod-4", "us-central1")
    pool = "gcp:container/nodePool:NodePool"
    fixed = price_resource(pool, _pool("ct5lp-hightpu-4t", nodeCount=2), region="eu-west-9")
    assert fixed.hourly_usd == pytest.approx(2 * chip.on_demand_usd_per_hour)  # zone -> region
    assert fixed.instance_types == ("v5litepod-4",) and fixed.nodes == 2
    spot = price_resource(
        pool,
        {
            **_pool("ct5lp-hightpu-4t"),
            "nodeConfig": {"machineType": "ct5lp-hightpu-4t", "spot": True},
            "autoscaling": {"minNodeCount": 0, "maxNodeCount": 2},
        },
        region="us-central1",
    )
    assert spot.monthly_usd == 0 and spot.spot_share == 1.0
    most = 2 * chip.spot_usd_per_hour * 730
    assert f"at the autoscaler's maximum 2: ${most:,.2f}/month" in spot.basis
    system = price_resource(pool, _pool("n1-standard-2", nodeCount=1), region="us-central1")
    assert system.hourly_usd == pytest.approx(0.095)
    regional = price_resource(
        pool, {**_pool("n1-standard-2", nodeCount=1), "location": "us-central1"}, region="x"
    )
    assert regional.nodes == 3  # GKE's three zones of a regional pool without nodeLocations
    unknown = price_resource(pool, _pool("e2-micro", nodeCount=1), region="us-central1")
    assert unknown.unpriced_reason and "e2-micro" in unknown.unpriced_reason


def test_gke_cluster_fee_with_the_free_tier_said_not_subtracted():
    fee = price_resource(
        "gcp:container/cluster:Cluster", {"location": "us-central1-a"}, region="us-central1"
    )
    assert fee.monthly_usd == pytest.approx(73.0)
    assert "free tier" in fee.basis
    nowhere = price_resource(
        "gcp:container/cluster:Cluster", {"location": "asia-south1"}, region="x"
    )
    assert nowhere.unpriced_reason and "asia-south1" in nowhere.unpriced_reason
