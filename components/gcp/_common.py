"""What the GCP components share: labels in GCP spelling, region and project defaults, the
catalog lookups that turn a fleet's or endpoint's hardware into a machine, and the
least-privilege service account."""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from aifinops import catalog
from aifinops import tags as tag_schema
from aifinops.catalog import InstanceInfo
from aifinops.errors import CatalogError

DEFAULT_REGION = "us-central1"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_ACCOUNT_ID = re.compile(r"[^a-z0-9-]+")


def labels(tags: Mapping[str, str] | None, model_version: str | None) -> dict[str, str]:
    """Canonical tags plus ModelVersion, spelled as GCP labels (`model-version`, lower case)."""
    canonical = {str(k): str(v) for k, v in (tags or {}).items()}
    if model_version:
        canonical["ModelVersion"] = model_version
    return tag_schema.spell(canonical, "gcp")


def region_of(region: str | None) -> str:
    """The component's region: its own, else the stack's `gcp:region`, else us-central1."""
    return region or pulumi.Config("gcp").get("region") or DEFAULT_REGION


def project_of(project: str | None) -> pulumi.Input[str]:
    """The project id: given, else the stack's `gcp:project`, else the provider's project."""
    if project:
        return project
    configured = pulumi.Config("gcp").get("project")
    if configured:
        return configured
    return gcp.organizations.get_project_output().project_id


ACCOUNT_ID = re.compile(r"^[a-z](?:[-a-z0-9]{4,28}[a-z0-9])$")
"""A service account id (IAM `projects.serviceAccounts.create`: 6-30 characters)."""
ROLE_ID = re.compile(r"^[a-zA-Z0-9_.]{3,64}$")
"""A custom role id (IAM `projects.roles.create`)."""
_SCOPE_DIGITS = 6


def stack_scope(*parts: str) -> str:
    """Six hex digits naming this Pulumi project and stack plus `parts`: project-wide ids
    (service accounts, custom roles) differ between two stacks that share a GCP project and
    stay the same from one `pulumi up` to the next."""
    key = "\0".join([pulumi.get_project(), pulumi.get_stack(), *parts])
    return hashlib.sha256(key.encode()).hexdigest()[:_SCOPE_DIGITS]


AUTONAME_SUFFIX = 8  # the provider auto-names `<logical name>-` + 7 random characters
RESOURCE_NAME_MAX = 63  # Compute Engine resources, buckets, functions, TPU VMs


def child_name(name: str, role: str, limit: int = RESOURCE_NAME_MAX) -> str:
    """The logical name of component `name`'s child `role`: `<name>-<role>` when the name the
    provider makes of it (plus `-` and 7 characters) fits `limit`; else `name` cut, with six
    hex digits of it, so that the longest fleet names still make valid GCP names."""
    full = f"{name}-{role}"
    if len(full) + AUTONAME_SUFFIX <= limit:
        return full
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    keep = limit - AUTONAME_SUFFIX - len(role) - len(digest) - 2
    return f"{name[:keep].rstrip('-')}-{digest}-{role}"


def account_id(name: str, role: str) -> str:
    """The service account id of component `name`'s `role` in this stack: readable
    `<name>-<role>` cut to fit, then the stack scope (6-30 of a-z0-9-, a letter first)."""
    scope = stack_scope(name, role)
    readable = _ACCOUNT_ID.sub("-", f"{name}-{role}".lower()).strip("-")
    if not readable[:1].isalpha():
        readable = "f-" + readable
    readable = readable[: 30 - len(scope) - 1].rstrip("-")
    account = f"{readable}-{scope}"
    assert ACCOUNT_ID.match(account), account
    return account


def role_id(name: str, role: str) -> str:
    """The custom role id of component `name`'s `role` in this stack (3-64 of
    a-zA-Z0-9_.): `finops_<name>_<role>` cut to fit, then the stack scope."""
    scope = stack_scope(name, role)
    readable = re.sub(r"[^a-zA-Z0-9_.]", "_", f"finops_{name}_{role}")
    readable = readable[: 64 - len(scope) - 1]
    custom = f"{readable}_{scope}"
    assert ROLE_ID.match(custom), custom
    return custom


@dataclass(frozen=True)
class GceMachine:
    """A GCE machine as a template spells it: A2/A3/G2 carry their GPUs, N1 attaches them."""

    info: InstanceInfo
    machine_type: str
    attached_accelerator: str | None
    attached_count: int

    @property
    def catalog_type(self) -> str:
        return self.info.instance_type


def _split_attached(name: str) -> tuple[str, str | None, int]:
    """`n1-standard-8+nvidia-tesla-t4:1` -> ("n1-standard-8", "nvidia-tesla-t4", 1)."""
    if "+" not in name:
        return name, None, 0
    machine, attached = name.split("+", 1)
    accelerator, count = attached.rsplit(":", 1)
    return machine, accelerator, int(count)


def gce_machine(
    component: str,
    region: str,
    *,
    instance_type: str | None,
    accelerator: str | None,
    accelerators_per_node: int,
    spot: bool,
) -> GceMachine:
    """The machine a fleet runs: `instance_type` validated against the catalog, or the
    cheapest GCE type in `region` with exactly (else at least) `accelerators_per_node`
    `accelerator`s, priced at spot when `spot`."""
    if bool(instance_type) == bool(accelerator):
        raise ValueError(
            f"{component}: give exactly one of instance_type or accelerator "
            f"(got instance_type={instance_type!r}, accelerator={accelerator!r})"
        )
    if instance_type:
        try:
            info = catalog.lookup(instance_type, region, cloud="gcp")
        except CatalogError as exc:
            raise ValueError(f"{component}: instance_type {instance_type!r}: {exc}") from None
        if info.service != "gce":
            raise ValueError(
                f"{component}: instance_type {instance_type!r} is a {info.service} type; "
                "training fleets run on GCE GPU machines, e.g. 'g2-standard-8', "
                "'a2-highgpu-1g' or 'n1-standard-8+nvidia-tesla-t4:1'"
            )
    else:
        assert accelerator is not None
        try:
            offers = catalog.cheapest(
                accelerator,
                accelerators_per_node,
                spot=spot,
                cloud="gcp",
                region=region,
                service="gce",
            )
        except CatalogError as exc:
            raise ValueError(f"{component}: accelerator {accelerator!r}: {exc}") from None
        if not offers:
            elsewhere = sorted(
                {
                    i.region
                    for i in catalog.cheapest(
                        accelerator, accelerators_per_node, cloud="gcp", service="gce"
                    )
                }
            )
            raise ValueError(
                f"{component}: no GCE machine with {accelerators_per_node} x {accelerator} "
                f"in {region}; offered in: {', '.join(elsewhere) or 'no region'}"
            )
        exact = [i for i in offers if i.accelerator_count == accelerators_per_node]
        info = (exact or offers)[0]
    machine, attached, count = _split_attached(info.instance_type)
    return GceMachine(
        info=info, machine_type=machine, attached_accelerator=attached, attached_count=count
    )


def member(account: gcp.serviceaccount.Account) -> pulumi.Output[str]:
    """`serviceAccount:<email>`: `account` as the member of an IAM grant."""
    return account.email.apply(lambda email: f"serviceAccount:{email}")


def service_account(
    component: str,
    name: str,
    role: str,
    project: pulumi.Input[str],
    parent: pulumi.Resource,
    project_roles: tuple[str, ...] = ("roles/monitoring.metricWriter",),
) -> gcp.serviceaccount.Account:
    """A dedicated service account with only `project_roles` on the project; bucket access is
    granted on the bucket itself by the caller."""
    account = gcp.serviceaccount.Account(
        f"{name}-sa",
        account_id=account_id(name, role),
        display_name=f"finops {component} {name}",
        description=f"{component} {name}: least privilege ({', '.join(project_roles)})",
        project=project,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    account_member = member(account)
    for project_role in project_roles:
        gcp.projects.IAMMember(
            f"{name}-{role_name(project_role)}",
            project=project,
            role=project_role,
            member=account_member,
            opts=pulumi.ResourceOptions(parent=parent),
        )
    return account


def role_name(role: str) -> str:
    """`roles/monitoring.metricWriter` -> `metric-writer`, for child resource names."""
    short = role.rsplit("/", 1)[-1].split(".")[-1]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", short).lower()
