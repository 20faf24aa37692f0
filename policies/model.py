"""The normalised resource every rule reads, and the finding a rule returns.

Adapters (the Pulumi normaliser, the Terraform and CloudFormation ones behind the checkov
checks) build a `Resource` from whatever their tool hands them; rules never see Pulumi wire
names, Terraform's wrapped values or CloudFormation intrinsics. A field an adapter cannot read
(a value unknown during preview, a `Ref`) is named in `unknown` and left at its empty value,
so a rule can say "cannot tell yet" instead of guessing.

Standard library and finops' stdlib-only core: the checkov checks import this inside checkov's
own virtualenv.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from aifinops.tags import spell_key

_spelled = lru_cache(maxsize=1024)(spell_key)  # a handful of keys, asked for per resource

# Resource kinds the rules distinguish.
INSTANCE = "instance"  # one VM (aws_instance, google_compute_instance)
LAUNCH_TEMPLATE = "launch-template"  # what a fleet launches (EC2 launch template, GCE template)
FLEET = "fleet"  # a group that scales (ASG, MIG, VMSS)
ENDPOINT = "endpoint"  # a hosted inference endpoint (SageMaker endpoint configuration)
TPU = "tpu"  # a Cloud TPU VM
BUDGET = "budget"  # a cloud budget
OTHER = "other"

TRAINING = "training"
INFERENCE = "inference"

PULUMI = "pulumi"
TERRAFORM = "terraform"
CLOUDFORMATION = "cloudformation"


@dataclass(frozen=True)
class Resource:
    """One resource as the rules see it (units in the names; None = absent or not applicable).

    `tags` are as the cloud stores them (GCP labels in their lower-case spelling).
    `instance_types` are catalog names (GCP N1 + GPUs as `n1-standard-8+nvidia-tesla-t4:1`).
    """

    name: str
    type: str
    """The source's own type: Pulumi type token, Terraform type or CloudFormation type."""
    cloud: str | None
    kind: str = OTHER
    urn: str = ""
    taggable: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    launch_tags: Mapping[str, Mapping[str, str]] | None = None
    """Launch templates: tags per launched resource type ("instance", "volume", ...)."""
    instance_types: tuple[str, ...] = ()
    region: str | None = None
    workload: str | None = None
    """"training", "inference" or None when the resource runs no accelerator workload."""
    nodes_max: int | None = None
    """Fleets: the most nodes it may scale to; endpoints: instances per variant."""
    nodes_desired: int | None = None
    on_demand_base: int | None = None
    on_demand_percent_above_base: float | None = None
    """Share of capacity above the base bought on demand, percent (100 = all on demand)."""
    http_tokens: str | None = None
    """EC2 instance metadata: "required" (IMDSv2 only) or "optional"."""
    budget_projects: tuple[str, ...] | None = None
    """Budgets: the Project values the budget's filter covers; () = the whole account."""
    budget_limit_usd: float | None = None
    monthly_usd: float | None = None
    """Estimated cost, USD per month, when the adapter priced the resource."""
    unknown: frozenset[str] = frozenset()
    """Fields the adapter could not read (unknown during preview, an intrinsic function)."""
    component: str = ""
    """The enclosing component's type (Pulumi), e.g. `finops:aws:GpuTrainingFleet`."""
    source: str = PULUMI
    """Where the resource was read: "pulumi", "terraform" or "cloudformation"."""
    location: str = ""
    """Terraform and CloudFormation: `file:line` of the resource's block."""
    tags_complete: bool = True
    """False when `tags` lists only some keys for sure (Terraform `merge(var.tags, {...})`
    with `var.tags` unknown): a required key not listed may still be there."""
    tag_key_prefixes: tuple[str, ...] | None = None
    """When `tags_complete` is False: the keys that could not be read all start with one of
    these (`kubernetes.io/cluster/`); None = they may be any key."""
    unknown_reasons: Mapping[str, str] = field(default_factory=dict)
    """Field name -> why it cannot be read (`instance_type = var.instance_type`); fields in
    `unknown` without an entry are unknown until apply (a Pulumi preview)."""
    max_vcpus: int | None = None
    """Fleets sized in vCPUs (AWS Batch compute environments): the most vCPUs they may run."""
    node_counts: tuple[tuple[str, int], ...] | None = None
    """Fleets with a node count per instance type (SageMaker HyperPod instance groups)."""
    created: bool | None = True
    """None when it exists only if a `count`/`for_each`/condition that cannot be read says so."""

    def why_unknown(self, field_name: str) -> str:
        """Why `field_name` cannot be read, as the source would put it."""
        return self.unknown_reasons.get(field_name) or "unknown until apply"

    def tag(self, key: str) -> str | None:
        """A tag by canonical key (`Environment`), in this resource's cloud spelling."""
        value = self.tags.get(_spelled(key, self.cloud or "aws"))
        return str(value) if value not in (None, "") else None


@dataclass(frozen=True)
class Finding:
    """One problem a rule found. `unknown=True`: the rule could not decide (preview, intrinsic)."""

    policy: str
    resource: str
    message: str
    urn: str = ""
    unknown: bool = False
