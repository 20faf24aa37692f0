"""Each cloud's rules for the names of the resources finops creates, and the names the
providers will actually send.

A resource's physical name is the input that holds it, or, when the program gives none, what
the provider makes of the logical name:

- pulumi-aws and pulumi-gcp (the Terraform bridge, `tfbridge.AutoName`): `<name>-` plus 7
  random characters; `name_prefix`/`bucket_prefix` inputs get Terraform's 26-character unique
  suffix (`id.PrefixedUniqueId`).
- pulumi-aws-native (`getDefaultName`): `<name>-` plus 7 random hex characters.
- pulumi-azure-native (`getDefaultName`, strategy random): `<name>` plus 8 random hex
  characters, no separator.

Every rule names its source. AWS rules come from botocore's operation models (the `min`,
`max` and `pattern` of the API member that takes the name) where the model has them, else
from the AWS API reference; GCP and Azure rules from their API references. A resource type
no rule covers is itself a failure: whoever adds one adds its rule (or `NO_NAME`, for
resources the cloud names, with the reason).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import botocore.session

TF_RANDOM = 7  # tfbridge AutoName: "-" + 7 characters
TF_PREFIX_SUFFIX = 26  # terraform-plugin-sdk id.PrefixedUniqueId: timestamp + counter
AZURE_RANDOM = 8  # azure-native getDefaultName (random): 8 hex characters, no separator


@dataclass(frozen=True)
class NameRule:
    """Where a resource's physical name is and what its cloud allows."""

    prop: str | None
    """Input holding the name (wire spelling); None: the cloud names it (NO_NAME)."""
    max_len: int = 0
    pattern: str = ""
    """Regular expression the whole name must match."""
    autonamed: bool = True
    """The provider derives the name from the logical name when no input gives it."""
    prefix_prop: str | None = None
    """Input holding a name prefix, to which the provider appends a 26-character suffix."""
    min_len: int = 1
    source: str = ""

    def physical(self, type_token: str, logical: str, inputs: dict[str, object]) -> str | None:
        """The name the provider would send; None when the cloud names the resource or the
        name is unknown until deploy (an output)."""
        if self.prop is None:
            return None
        value: object = inputs
        for key in self.prop.split("."):  # nested: a Kubernetes object's metadata.name
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
        prefix = inputs.get(self.prefix_prop) if self.prefix_prop else None
        if isinstance(prefix, str):
            return prefix + "0" * TF_PREFIX_SUFFIX
        if self.prop in inputs or (self.prefix_prop and self.prefix_prop in inputs):
            return None  # given, but unknown during a preview
        if not self.autonamed:
            return None
        if type_token.startswith("azure-native:"):
            return logical + "0" * AZURE_RANDOM
        return f"{logical}-{'0' * TF_RANDOM}"

    def problems(self, name: str) -> list[str]:
        found = []
        if self.max_len and len(name) > self.max_len:
            found.append(f"{len(name)} characters, more than {self.max_len}")
        if len(name) < self.min_len:
            found.append(f"{len(name)} characters, fewer than {self.min_len}")
        if self.pattern and not re.fullmatch(self.pattern, name):
            found.append(f"does not match {self.pattern}")
        return found


NO_NAME = NameRule(prop=None)


@cache
def _botocore_member(service: str, operation: str, *path: str) -> dict[str, object]:
    shape = botocore.session.get_session().get_service_model(service).operation_model(operation)
    member = shape.input_shape
    for name in path:
        member = member.members[name]
    return dict(member.metadata)


def python_pattern(java: str) -> str:
    """A botocore (Java-flavoured) pattern as Python `re` reads it: `\\p{Print}` is printable
    ASCII, and the surrogate-pair range (astral characters) is dropped: names here are BMP."""
    pattern = java.replace(r"\p{Print}", r"\x20-\x7E" if "[" in java else r"[\x20-\x7E]")
    pattern = pattern.replace(r"\uD800\uDC00-\uDBFF\uDFFF", "")
    re.compile(pattern)  # a pattern Python cannot read fails here, loudly
    return pattern


def aws_api(prop: str, service: str, operation: str, *path: str, **extra: object) -> NameRule:
    """A rule whose length and pattern are botocore's for `operation`'s member `path`."""
    meta = _botocore_member(service, operation, *path)
    assert "max" in meta, f"botocore has no max for {service}.{operation}.{'.'.join(path)}"
    return NameRule(
        prop=prop,
        max_len=int(meta["max"]),  # type: ignore[call-overload]
        min_len=max(1, int(meta.get("min", 1))),  # type: ignore[call-overload]
        pattern=python_pattern(str(meta.get("pattern", ""))),
        source=f"botocore {service}.{operation}.{'.'.join(path)}",
        **extra,  # type: ignore[arg-type]
    )


# RFC 1035 labels: a lower-case letter, then lower-case letters, digits and inner hyphens
# (Compute Engine resource names, Cloud Run services, Kubernetes DNS-1035 names)
RFC1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
COMPUTE_ENGINE_NAME = NameRule(
    "name", 63, RFC1035_LABEL, source="Compute Engine resource names (RFC 1035, 63)"
)

RULES: dict[str, NameRule] = {
    # --- AWS ---------------------------------------------------------------------------
    "aws:iam/role:Role": aws_api("name", "iam", "CreateRole", "RoleName"),
    "aws:iam/instanceProfile:InstanceProfile": aws_api(
        "name", "iam", "CreateInstanceProfile", "InstanceProfileName"
    ),
    "aws:iam/rolePolicy:RolePolicy": aws_api("name", "iam", "PutRolePolicy", "PolicyName"),
    "aws:lambda/function:Function": NameRule(
        "name", 64, r"[a-zA-Z0-9-_]+", source="Lambda CreateFunction: FunctionName, 64 for a name"
    ),
    "aws:lambda/permission:Permission": NO_NAME,  # statement id generated by the provider
    "aws:cloudwatch/logGroup:LogGroup": aws_api("name", "logs", "CreateLogGroup", "logGroupName"),
    "aws:cloudwatch/eventRule:EventRule": aws_api("name", "events", "PutRule", "Name"),
    "aws:cloudwatch/eventTarget:EventTarget": NO_NAME,  # target id generated by the provider
    "aws:cloudwatch/metricAlarm:MetricAlarm": aws_api(
        "name", "cloudwatch", "PutMetricAlarm", "AlarmName"
    ),
    "aws:autoscaling/group:Group": aws_api(
        "name", "autoscaling", "CreateAutoScalingGroup", "AutoScalingGroupName"
    ),
    "aws:autoscaling/lifecycleHook:LifecycleHook": aws_api(
        "name", "autoscaling", "PutLifecycleHook", "LifecycleHookName"
    ),
    "aws:ec2/launchTemplate:LaunchTemplate": NameRule(
        "name",
        128,
        r"[a-zA-Z0-9\(\)\.\-/_]+",
        prefix_prop="namePrefix",
        min_len=3,
        source="EC2 CreateLaunchTemplate: LaunchTemplateName 3-128",
    ),
    "aws:ec2/securityGroup:SecurityGroup": NameRule(
        "name",
        255,
        r"(?!sg-)[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+",
        source="EC2 CreateSecurityGroup: GroupName 255, not sg-",
    ),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": NO_NAME,
    "aws:s3/bucket:Bucket": NameRule(
        "bucket",
        63,
        r"(?!xn--|sthree-|amzn-s3-demo-)[a-z0-9][a-z0-9.-]*[a-z0-9](?<!-s3alias)(?<!--ol-s3)",
        prefix_prop="bucketPrefix",
        min_len=3,
        source="S3 general purpose bucket naming rules",
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": NO_NAME,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": NO_NAME,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": NO_NAME,
    "aws:s3/bucketVersioning:BucketVersioning": NO_NAME,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": NO_NAME,
    "aws:s3/bucketPolicy:BucketPolicy": NO_NAME,
    "aws:sns/topic:Topic": NameRule(
        "name", 256, r"[A-Za-z0-9_-]+", source="SNS CreateTopic: Name 1-256 of A-Za-z0-9_-"
    ),
    "aws:sns/topicPolicy:TopicPolicy": NO_NAME,
    "aws:sns/topicSubscription:TopicSubscription": NO_NAME,
    "aws:kms/key:Key": NO_NAME,  # key id generated by KMS
    "aws:budgets/budget:Budget": NameRule(
        "name",
        100,
        r"[^:\\]+",
        source="botocore budgets BudgetName (1-100, no ':' or '\\')",
    ),
    "aws:costexplorer/anomalyMonitor:AnomalyMonitor": NameRule(
        "name", 1024, source="botocore ce AnomalyMonitor.MonitorName"
    ),
    "aws:costexplorer/anomalySubscription:AnomalySubscription": NameRule(
        "name", 1024, source="botocore ce AnomalySubscription.SubscriptionName"
    ),
    "aws:costexplorer/costAllocationTag:CostAllocationTag": NO_NAME,  # names a tag key
    "aws:sagemaker/model:Model": aws_api("name", "sagemaker", "CreateModel", "ModelName"),
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": aws_api(
        "name", "sagemaker", "CreateEndpointConfig", "EndpointConfigName"
    ),
    "aws:sagemaker/endpoint:Endpoint": aws_api(
        "name", "sagemaker", "CreateEndpoint", "EndpointName"
    ),
    "aws-native:sagemaker:InferenceComponent": aws_api(
        "inferenceComponentName", "sagemaker", "CreateInferenceComponent", "InferenceComponentName"
    ),
    "aws:appautoscaling/target:Target": NO_NAME,
    "aws:appautoscaling/policy:Policy": aws_api(
        "name", "application-autoscaling", "PutScalingPolicy", "PolicyName"
    ),
    # the fleets' network (components/aws/network.py): EC2 names these by id; `Name` is a tag
    "aws:ec2/vpc:Vpc": NO_NAME,
    "aws:ec2/subnet:Subnet": NO_NAME,
    "aws:ec2/internetGateway:InternetGateway": NO_NAME,
    "aws:ec2/routeTable:RouteTable": NO_NAME,
    "aws:ec2/route:Route": NO_NAME,
    "aws:ec2/routeTableAssociation:RouteTableAssociation": NO_NAME,
    "aws:ec2/vpcEndpoint:VpcEndpoint": NO_NAME,
    "aws:ec2/eip:Eip": NO_NAME,
    "aws:ec2/natGateway:NatGateway": NO_NAME,
    "aws:s3/bucketObjectv2:BucketObjectv2": NameRule(
        "key", 1024, autonamed=False, source="S3 object keys: up to 1024 bytes of UTF-8"
    ),
    "aws:lambda/invocation:Invocation": NO_NAME,  # an invocation, not a named resource
    "pulumi:providers:aws": NO_NAME,
    "pulumi:providers:aws-native": NO_NAME,
    # --- GCP ---------------------------------------------------------------------------
    "gcp:storage/bucket:Bucket": NameRule(
        "name",
        63,
        r"[a-z0-9][a-z0-9_.-]*[a-z0-9]",
        min_len=3,
        source="Cloud Storage bucket names: 3-63 of a-z0-9_.- (no dots here)",
    ),
    "gcp:storage/bucketObject:BucketObject": NameRule(
        "name", 1024, autonamed=False, source="Cloud Storage object names: up to 1024 bytes"
    ),
    "gcp:storage/bucketIAMMember:BucketIAMMember": NO_NAME,
    "gcp:serviceaccount/account:Account": NameRule(
        "accountId",
        30,
        r"[a-z](?:[-a-z0-9]{4,28}[a-z0-9])",
        autonamed=False,
        min_len=6,
        source="IAM projects.serviceAccounts.create accountId",
    ),
    "gcp:projects/iAMMember:IAMMember": NO_NAME,
    "gcp:projects/iAMCustomRole:IAMCustomRole": NameRule(
        "roleId",
        64,
        r"[a-zA-Z0-9_\.]{3,64}",
        autonamed=False,
        min_len=3,
        source="IAM projects.roles.create roleId",
    ),
    "gcp:compute/instanceTemplate:InstanceTemplate": COMPUTE_ENGINE_NAME,
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": COMPUTE_ENGINE_NAME,
    "gcp:cloudfunctionsv2/function:Function": NameRule(
        "name", 63, RFC1035_LABEL, source="Cloud Run functions: name 63 of a-z0-9-"
    ),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": NO_NAME,
    "gcp:cloudscheduler/job:Job": NameRule(
        "name", 500, r"[a-zA-Z\d_-]+", source="Cloud Scheduler jobs.create: [a-zA-Z\\d_-]{1,500}"
    ),
    "gcp:pubsub/topic:Topic": NameRule(
        "name",
        255,
        r"(?!goog)[a-zA-Z][\w.~+%-]*",
        min_len=3,
        source="Pub/Sub resource names: 3-255, a letter first, not goog",
    ),
    "gcp:monitoring/notificationChannel:NotificationChannel": NO_NAME,  # named by the API
    "gcp:billing/budget:Budget": NameRule(
        "displayName", 60, autonamed=False, source="Billing Budgets displayName: 60"
    ),
    "gcp:cloudrunv2/service:Service": NameRule(
        "name",
        49,
        RFC1035_LABEL,
        source="Cloud Run service names: lower-case letters, digits and dashes, a letter first, "
        "no dash last, at most 49 characters",
    ),
    "gcp:tpu/v2Vm:V2Vm": NameRule(
        "name", 63, RFC1035_LABEL, source="Cloud TPU node ids (RFC 1035, 63)"
    ),
    # the fleets' network (components/gcp/network.py)
    "gcp:compute/network:Network": COMPUTE_ENGINE_NAME,
    "gcp:compute/subnetwork:Subnetwork": COMPUTE_ENGINE_NAME,
    "gcp:compute/firewall:Firewall": COMPUTE_ENGINE_NAME,
    "gcp:compute/router:Router": COMPUTE_ENGINE_NAME,
    "gcp:compute/routerNat:RouterNat": NameRule(
        "name", 63, RFC1035_LABEL, source="Cloud NAT gateway names (RFC 1035, 63)"
    ),
    # named by Vertex AI (numeric ids); its display names (<name>-<modelVersion>, at most
    # 40 + 1 + 63 characters) are within Vertex AI's 128 (Endpoint/Model displayName)
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": NO_NAME,
    "gcp:vertex/aiEndpointIamMember:AiEndpointIamMember": NO_NAME,
    "pulumi:providers:gcp": NO_NAME,
    # the GKE TPU endpoint (components/gcp/gke_tpu_endpoint.py)
    "gcp:container/cluster:Cluster": NameRule(
        "name",
        40,
        RFC1035_LABEL,
        source="GKE projects.locations.clusters.create: a lower-case letter, then up to 39 "
        "lower-case letters, digits or hyphens, not a hyphen last",
    ),
    "gcp:container/nodePool:NodePool": NameRule(
        "name", 40, RFC1035_LABEL, source="GKE node pool names: as cluster names, 40"
    ),
    "pulumi:providers:kubernetes": NO_NAME,
    # named by the component (metadata.name): DNS-1035 labels, the rule of Service names and
    # the strictest of the five (Kubernetes object names and IDs)
    **{
        f"kubernetes:{kind}": NameRule(
            "metadata.name",
            63,
            RFC1035_LABEL,
            autonamed=False,
            source="Kubernetes DNS-1035 label names, 63",
        )
        for kind in (
            "core/v1:Namespace",
            "apps/v1:Deployment",
            "core/v1:Service",
            "autoscaling/v2:HorizontalPodAutoscaler",
            "monitoring.googleapis.com/v1:PodMonitoring",
        )
    },
    # --- Azure -------------------------------------------------------------------------
    "azure-native:resources:ResourceGroup": NameRule(
        "resourceGroupName", 90, r"[-\w._()]*[-\w_()]", source="Microsoft.Resources naming rules"
    ),
    "azure-native:network:NetworkSecurityGroup": NameRule(
        "networkSecurityGroupName",
        80,
        r"[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9_]",
        source="Microsoft.Network/networkSecurityGroups naming rules",
    ),
    "azure-native:network:VirtualNetwork": NameRule(
        "virtualNetworkName",
        64,
        r"[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9_]",
        min_len=2,
        source="Microsoft.Network/virtualNetworks naming rules",
    ),
    "azure-native:network:Subnet": NameRule(
        "subnetName",
        80,
        r"[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9_])?",
        source="Microsoft.Network/virtualNetworks/subnets naming rules",
    ),
    "azure-native:compute:VirtualMachineScaleSet": NameRule(
        "vmScaleSetName",
        64,
        r"[a-zA-Z0-9_]([a-zA-Z0-9_.-]*[a-zA-Z0-9_])?",
        source="Microsoft.Compute/virtualMachineScaleSets naming rules (Linux: 1-64)",
    ),
    "azure-native:network:NatGateway": NameRule(
        "natGatewayName",
        80,
        r"[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9_]",
        source="Microsoft.Network/natGateways naming rules",
    ),
    "azure-native:network:PublicIPAddress": NameRule(
        "publicIpAddressName",
        80,
        r"[a-zA-Z0-9][a-zA-Z0-9_.-]*[a-zA-Z0-9_]",
        source="Microsoft.Network/publicIPAddresses naming rules",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": NameRule(
        "resourceName",
        128,
        r"[a-zA-Z0-9][a-zA-Z0-9_-]*",
        min_len=3,
        source="Microsoft.ManagedIdentity/userAssignedIdentities naming rules (3-128)",
    ),
    "azure-native:storage:StorageAccount": NameRule(
        "accountName",
        24,
        r"[a-z0-9]+",
        min_len=3,
        autonamed=False,
        source="Microsoft.Storage/storageAccounts naming rules (3-24, lower-case letters and digits)",
    ),
    "azure-native:storage:BlobContainer": NameRule(
        "containerName",
        63,
        r"[a-z0-9](?!.*--)[a-z0-9-]*[a-z0-9]",
        min_len=3,
        source="Blob container names (3-63, lower case, no double hyphen)",
    ),
    "azure-native:storage:Blob": NameRule(
        "blobName", 1024, autonamed=False, source="Blob names: up to 1024 characters"
    ),
    "azure-native:authorization:RoleAssignment": NO_NAME,  # a GUID the provider generates
    "azure-native:consumption:Budget": NameRule(
        "budgetName",
        63,
        r"[a-zA-Z0-9_-]+",
        source="Microsoft.Consumption/budgets names: 1-63 of letters, digits, _ and -",
    ),
    "pulumi:providers:azure-native": NO_NAME,
}

# Names inside a resource's inputs that the cloud checks too: (type, key path, rule).
NESTED: list[tuple[str, tuple[str, ...], NameRule]] = [
    (
        "azure-native:compute:VirtualMachineScaleSet",
        ("virtualMachineProfile", "osProfile", "computerNamePrefix"),
        NameRule(
            "computerNamePrefix",
            15,
            r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?",
            autonamed=False,
            source="Flexible scale sets: computerNamePrefix, hostname of at most 15 before the "
            "platform's suffix (Linux host names: letters, digits, inner hyphens)",
        ),
    ),
    (
        "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager",
        ("baseInstanceName",),
        NameRule(
            "baseInstanceName",
            58,
            RFC1035_LABEL,
            autonamed=False,
            source="MIG baseInstanceName: instance names are base + '-' + 4 characters (63)",
        ),
    ),
]
