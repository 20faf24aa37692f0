"""What a fleet's egress costs, in the preview: public IPv4 addresses per node, NAT gateways by
the hour, Cloud NAT per VM behind it; prices from the catalog's network table."""

import pytest

from aifinops import catalog
from aifinops.catalog import network_price
from aifinops.cost import price_resource
from aifinops.errors import CatalogError

REGION = "us-east-1"
ASG = "aws:autoscaling/group:Group"
LT = "aws:ec2/launchTemplate:LaunchTemplate"


def group(desired: int) -> dict:
    return {
        "desiredCapacity": desired,
        "mixedInstancesPolicy": {
            "instancesDistribution": {"onDemandBaseCapacity": 0},
            "launchTemplate": {
                "launchTemplateSpecification": {"launchTemplateId": "lt-1"},
                "overrides": [{"instanceType": "g5.xlarge"}],
            },
        },
    }


def template(public: bool) -> dict:
    return {"networkInterfaces": [{"associatePublicIpAddress": str(public).lower()}]}


@pytest.mark.parametrize("desired", [0, 3])
def test_public_addresses_are_priced_per_node(desired: int) -> None:
    without = price_resource(
        ASG, group(desired), region=REGION, related={"lt-1": (LT, template(False))}
    )
    with_ip = price_resource(
        ASG, group(desired), region=REGION, related={"lt-1": (LT, template(True))}
    )
    assert with_ip.hourly_usd == pytest.approx(without.hourly_usd + desired * 0.005)
    assert with_ip.monthly_usd == pytest.approx(with_ip.hourly_usd * 730)
    assert f"+ {desired} public IPv4 at $0.005/h" in with_ip.basis


def test_nat_gateway_and_its_address_by_the_hour() -> None:
    nat = price_resource("aws:ec2/natGateway:NatGateway", {}, region="us-east-1")
    assert nat.monthly_usd == pytest.approx(0.045 * 730)  # $32.85
    assert "+ $0.045/GB processed, not estimated" in nat.basis
    tokyo = price_resource("aws:ec2/natGateway:NatGateway", {}, region="ap-northeast-1")
    assert tokyo.hourly_usd == pytest.approx(0.062)
    eip = price_resource("aws:ec2/eip:Eip", {}, region="us-east-1")
    assert eip.monthly_usd == pytest.approx(3.65)


def test_a_region_without_a_nat_price_is_unpriced_loudly() -> None:
    priced = price_resource("aws:ec2/natGateway:NatGateway", {}, region="sa-east-1")
    assert priced.monthly_usd == 0
    assert priced.unpriced_reason and "no aws nat-gateway price for region 'sa-east-1'" in (
        priced.unpriced_reason
    )


def test_cloud_nat_is_priced_per_vm_it_serves() -> None:
    subnet = ("gcp:compute/subnetwork:Subnetwork", {"ipCidrRange": "10.42.0.0/20"})
    other = ("gcp:compute/subnetwork:Subnetwork", {"ipCidrRange": "10.9.0.0/20"})
    t1 = (
        "gcp:compute/instanceTemplate:InstanceTemplate",
        {"networkInterfaces": [{"subnetwork": "sl/a"}]},
    )
    t2 = (
        "gcp:compute/instanceTemplate:InstanceTemplate",
        {"networkInterfaces": [{"subnetwork": "sl/b"}]},
    )
    mig = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
    related = {
        "id/a": subnet,
        "sl/a": subnet,  # the same subnetwork under its id and its self link
        "sl/b": other,
        "tpl1": t1,
        "tpl2": t2,
        "spot": (mig, {"targetSize": 3, "versions": [{"instanceTemplate": "tpl1"}]}),
        "od": (mig, {"targetSize": 1, "versions": [{"instanceTemplate": "tpl1"}]}),
        "elsewhere": (mig, {"targetSize": 7, "versions": [{"instanceTemplate": "tpl2"}]}),
    }
    priced = price_resource(
        "gcp:compute/routerNat:RouterNat",
        {"subnetworks": [{"name": "id/a"}]},
        region="us-central1",
        related=related,
    )
    assert priced.nodes == 4  # not the 7 VMs on another subnetwork
    assert priced.hourly_usd == pytest.approx(4 * 0.0014 + 0.005)
    assert "Cloud NAT for 4 VMs" in priced.basis


def test_cloud_nat_per_vm_charge_stops_at_its_cap() -> None:
    mig = "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager"
    subnet = ("gcp:compute/subnetwork:Subnetwork", {})
    related = {
        "s": subnet,
        "t": (
            "gcp:compute/instanceTemplate:InstanceTemplate",
            {"networkInterfaces": [{"subnetwork": "s"}]},
        ),
        "g": (mig, {"targetSize": 100, "versions": [{"instanceTemplate": "t"}]}),
    }
    priced = price_resource(
        "gcp:compute/routerNat:RouterNat",
        {"subnetworks": [{"name": "s"}]},
        region="us-central1",
        related=related,
    )
    assert priced.hourly_usd == pytest.approx(0.044 + 0.005)


def test_azure_scale_set_public_ips_and_nat_gateway() -> None:
    vmss = {
        "sku": {"name": "Standard_NC4as_T4_v3", "capacity": 2},
        "virtualMachineProfile": {
            "priority": "Regular",
            "networkProfile": {
                "networkInterfaceConfigurations": [
                    {"ipConfigurations": [{"publicIPAddressConfiguration": {"name": "pip"}}]}
                ]
            },
        },
    }
    od = catalog.lookup("Standard_NC4as_T4_v3", "eastus", cloud="azure").on_demand_usd_per_hour
    priced = price_resource("azure-native:compute:VirtualMachineScaleSet", vmss, region="eastus")
    assert priced.hourly_usd == pytest.approx(2 * od + 2 * 0.005)
    nat = price_resource("azure-native:network:NatGateway", {}, region="eastus")
    assert nat.monthly_usd == pytest.approx(32.85)


def test_network_prices_carry_their_basis_and_date() -> None:
    price = network_price("aws", "nat-gateway", "us-east-2")
    assert (price.usd, price.unit, price.basis, price.snapshot) == (
        0.045,
        "hour",
        "focus-sample",
        "2024-09",
    )
    with pytest.raises(CatalogError, match="no gcp network price named 'nat-gateway'"):
        network_price("gcp", "nat-gateway", "us-central1")
