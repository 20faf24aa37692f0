"""The AWS audit of one region: read-only API calls in, priced `Finding`s out.

Checks (each can be chosen with `AuditSettings.checks`; a check that fails, for example on
AccessDenied, is reported in `ScanResult.errors` and the others still run):

- idle-gpu: running accelerator instances (the catalog's EC2 types) older than the window,
  judged by `aifinops.audit.idle`;
- volumes: EBS volumes `available` (unattached) for the window, and volumes of instances
  stopped for `stopped_days`;
- endpoints: SageMaker endpoints InService for `endpoint_idle_days` with no invocations;
- snapshots: own EBS snapshots older than `snapshot_retention_days` that no own AMI uses;
- checkpoints: objects under `checkpoints/` of fleet checkpoint buckets (tag `finops:fleet`,
  or named) older than the bucket's lifecycle expiry (or `checkpoint_retention_days`);
- tags: every resource the Resource Groups Tagging API returns, and every resource read
  above, against the tag schema, through the taggability registry.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aifinops import catalog
from aifinops.audit import findings as f
from aifinops.audit import idle, tagcheck
from aifinops.audit.clients import AwsClients
from aifinops.catalog import storage
from aifinops.errors import CatalogError

CHECKS = ("idle-gpu", "volumes", "endpoints", "snapshots", "checkpoints", "tags")
FLEET_TAG = "finops:fleet"
CHECKPOINT_PREFIX = "checkpoints/"
"""Where the training fleet components write checkpoints in their bucket."""
DEFAULT_CHECKPOINT_RETENTION_DAYS = 14.0
"""The fleets' default `checkpointRetentionDays`, used when a bucket has no expiry rule."""
ASG_TAG = "aws:autoscaling:groupName"
GIB = 1024.0**3
_STOPPED_AT = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")


@dataclass(frozen=True)
class AuditSettings:
    idle_hours: int = 24
    """A GPU instance is idle when idle in each of the last this many hours."""
    endpoint_idle_days: float = 7.0
    stopped_days: float = 7.0
    """Volumes of instances stopped at least this long are reported."""
    snapshot_retention_days: float = 90.0
    checkpoint_retention_days: float | None = None
    """None: each bucket's own lifecycle expiry for `checkpoints/`, else 14 days."""
    checkpoint_buckets: tuple[str, ...] = ()
    """Buckets to check besides those tagged `finops:fleet`."""
    metrics: str = "cloudwatch"
    """"cloudwatch" or "prometheus:URL" for GPU utilisation (CloudWatch CPU as fallback)."""
    checks: tuple[str, ...] = CHECKS
    now: float | None = None
    """Unix seconds the audit is judged at (default: the wall clock)."""

    def at(self) -> float:
        return time.time() if self.now is None else self.now


@dataclass
class ScanResult:
    findings: list[f.Finding] = field(default_factory=list)
    unjudged: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def _tags(items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _age_seconds(when: dt.datetime | None, now: float) -> float:
    return float("inf") if when is None else now - when.timestamp()


def stopped_since(instance: Mapping[str, Any]) -> dt.datetime | None:
    """When a stopped instance stopped, from `StateTransitionReason` ("User initiated
    (2024-05-01 10:00:00 GMT)"); None when the reason carries no time."""
    match = _STOPPED_AT.search(str(instance.get("StateTransitionReason") or ""))
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)


class AwsAudit:
    """Runs the checks of one region and collects their findings."""

    def __init__(
        self,
        clients: AwsClients,
        region: str,
        settings: AuditSettings,
        progress: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.clients = clients
        self.region = region
        self.settings = settings
        self.progress = progress
        self.now = settings.at()
        self.result = ScanResult()
        self._account: str | None = None
        # resources read by the checks, for the tag check: (arn, tags, workload, monthly, basis)
        self._seen: dict[str, tuple[str, dict[str, str], bool, float | None, str, str]] = {}

    def client(self, service: str) -> Any:
        return self.clients.client(service, self.region)

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = str(self.client("sts").get_caller_identity()["Account"])
        return self._account

    def run(self) -> ScanResult:
        from botocore.exceptions import BotoCoreError, ClientError

        steps: list[tuple[str, Callable[[], None]]] = [
            ("idle-gpu", self.idle_gpu_instances),
            ("volumes", self.volumes),
            ("endpoints", self.endpoints),
            ("snapshots", self.snapshots),
            ("checkpoints", self.checkpoints),
            ("tags", self.tags),
        ]
        for name, step in steps:
            if name not in self.settings.checks:
                continue
            self.progress(f"{self.region}: {name}")
            try:
                step()
            except (BotoCoreError, ClientError) as exc:
                self.result.errors.append(f"{self.region} {name}: {exc}")
            except CatalogError as exc:
                self.result.errors.append(f"{self.region} {name}: {exc}")
        return self.result

    # ----------------------------------------------------------------- instances

    def _instances(self) -> list[dict[str, Any]]:
        if not hasattr(self, "_instance_cache"):
            found = []
            pages = (
                self.client("ec2")
                .get_paginator("describe_instances")
                .paginate(
                    Filters=[{"Name": "instance-state-name", "Values": ["running", "stopped"]}]
                )
            )
            for page in pages:
                for reservation in page["Reservations"]:
                    for instance in reservation["Instances"]:
                        instance["_owner_account"] = reservation.get("OwnerId", "")
                        found.append(instance)
            self._instance_cache = found
        return self._instance_cache

    def _instance_arn(self, instance: Mapping[str, Any]) -> str:
        account = instance.get("_owner_account") or self.account
        return f"arn:aws:ec2:{self.region}:{account}:instance/{instance['InstanceId']}"

    def _instance_price(self, instance_type: str, spot: bool) -> tuple[float | None, str]:
        try:
            info = catalog.lookup(instance_type, self.region, cloud="aws")
        except CatalogError as exc:
            return None, f"not priced: {exc}"
        if spot and info.spot_usd_per_hour is not None:
            return f.per_month(info.spot_usd_per_hour), (
                f"spot ${info.spot_usd_per_hour:.4g}/h (Spot Advisor saving) x 730 h"
            )
        return f.per_month(info.on_demand_usd_per_hour), (
            f"on-demand ${info.on_demand_usd_per_hour:.4g}/h x 730 h (catalog {catalog.SNAPSHOT_DATE})"
        )

    def idle_gpu_instances(self) -> None:
        accelerated = set(catalog.instance_types(cloud="aws", service="ec2"))
        hours = self.settings.idle_hours
        candidates = [
            i
            for i in self._instances()
            if i["State"]["Name"] == "running"
            and i["InstanceType"] in accelerated
            and _age_seconds(i.get("LaunchTime"), self.now) >= hours * 3600
        ]
        self._remember_instances()
        if not candidates:
            return
        verdicts: dict[str, idle.IdleVerdict] = {}
        metrics = self.settings.metrics
        if metrics.startswith("prometheus:"):
            verdicts = idle.prometheus_verdicts(metrics.partition(":")[2], hours, self.now)
        rest = [c for c in candidates if c["InstanceId"] not in verdicts]
        hosts = [idle.HostFacts(c["InstanceId"], self._vcpus(c)) for c in rest]
        verdicts.update(idle.cloudwatch_verdicts(self.client("cloudwatch"), hosts, hours, self.now))
        for instance in candidates:
            verdict = verdicts[instance["InstanceId"]]
            if verdict.state == idle.BUSY:
                continue
            self._idle_finding(instance, verdict)

    def _vcpus(self, instance: Mapping[str, Any]) -> int:
        cpu = instance.get("CpuOptions") or {}
        if cpu.get("CoreCount"):
            return int(cpu["CoreCount"]) * int(cpu.get("ThreadsPerCore", 1))
        try:
            return catalog.lookup(instance["InstanceType"], self.region, cloud="aws").vcpus
        except CatalogError:
            return 1

    def _idle_finding(self, instance: Mapping[str, Any], verdict: idle.IdleVerdict) -> None:
        tags = _tags(instance.get("Tags"))
        spot = instance.get("InstanceLifecycle") == "spot"
        monthly, basis = self._instance_price(instance["InstanceType"], spot)
        plan = None
        reason = ""
        if verdict.state != idle.IDLE:
            reason = "not judged idle"
        elif tags.get(ASG_TAG):
            reason = (
                f"member of Auto Scaling group {tags[ASG_TAG]}: lower its desired capacity "
                "(a stopped member would be replaced)"
            )
        elif spot:
            reason = "spot instance: stop works only for persistent requests; terminate it or scale its group"
        elif instance.get("RootDeviceType") == "instance-store":
            reason = "instance-store root device: cannot be stopped"
        else:
            plan = f.ActionPlan(
                "stop-instance",
                {"instance_id": instance["InstanceId"]},
                monthly,
                reversible=True,
            )
        self.result.findings.append(
            f.Finding(
                kind=f.IDLE_GPU_INSTANCE,
                status=f.WASTE if verdict.state == idle.IDLE else f.UNKNOWN,
                cloud="aws",
                region=self.region,
                resource_id=instance["InstanceId"],
                resource_type=instance["InstanceType"] + (" spot" if spot else ""),
                monthly_usd=monthly,
                price_basis=basis,
                owner=f.owner_of(tags),
                evidence=verdict.evidence,
                tags=tags,
                arn=self._instance_arn(instance),
                plan=plan,
                no_action_reason=reason,
            )
        )

    # ------------------------------------------------------------------- volumes

    def volumes(self) -> None:
        ec2 = self.client("ec2")
        min_age = self.settings.idle_hours * 3600
        for page in ec2.get_paginator("describe_volumes").paginate(
            Filters=[{"Name": "status", "Values": ["available"]}]
        ):
            for volume in page["Volumes"]:
                if _age_seconds(volume.get("CreateTime"), self.now) < min_age:
                    continue
                self._volume_finding(volume, None)
        stopped: dict[str, tuple[Mapping[str, Any], str, str]] = {}
        for instance in self._instances():
            if instance["State"]["Name"] != "stopped":
                continue
            since = stopped_since(instance)
            if (
                since is not None
                and _age_seconds(since, self.now) < self.settings.stopped_days * 86400
            ):
                continue
            when = since.strftime("%Y-%m-%d") if since else "an unknown time"
            for mapping in instance.get("BlockDeviceMappings", []):
                if "Ebs" in mapping:
                    stopped[mapping["Ebs"]["VolumeId"]] = (instance, mapping["DeviceName"], when)
        ids = sorted(stopped)
        for first in range(0, len(ids), 200):
            for page in ec2.get_paginator("describe_volumes").paginate(
                VolumeIds=ids[first : first + 200]
            ):
                for volume in page["Volumes"]:
                    self._volume_finding(volume, stopped[volume["VolumeId"]])

    def _volume_finding(
        self, volume: Mapping[str, Any], attached: tuple[Mapping[str, Any], str, str] | None
    ) -> None:
        tags = _tags(volume.get("Tags"))
        vtype, size = volume["VolumeType"], volume["Size"]
        monthly = storage.ebs_volume_usd_per_month(
            self.region, vtype, size, volume.get("Iops"), volume.get("Throughput")
        )
        snapshot_price = storage.usd_per_month(self.region, "ebs-snapshot-gb")
        basis = (
            f"EBS {vtype} {size} GiB list price ({storage.STORAGE_SNAPSHOT_DATE})"
            if monthly is not None
            else f"not priced: no EBS {vtype} price for {self.region} in the catalog"
        )
        backup = None if snapshot_price is None else size * snapshot_price
        saving = None if monthly is None or backup is None else max(0.0, monthly - backup)
        params: dict[str, Any] = {
            "volume_id": volume["VolumeId"],
            "availability_zone": volume["AvailabilityZone"],
            "volume_type": vtype,
            "size_gib": size,
            "iops": volume.get("Iops"),
            "throughput": volume.get("Throughput"),
            "encrypted": bool(volume.get("Encrypted")),
            "kms_key_id": volume.get("KmsKeyId"),
            "tags": tags,
        }
        plan = None
        reason = ""
        if attached is None:
            kind = f.UNATTACHED_VOLUME
            evidence = f"unattached since at least {self.settings.idle_hours} h (state available)"
            plan = f.ActionPlan("snapshot-delete-volume", params, saving, reversible=True)
        else:
            instance, device, when = attached
            kind = f.VOLUME_OF_STOPPED_INSTANCE
            evidence = f"attached as {device} to {instance['InstanceId']}, stopped since {when}"
            if device == instance.get("RootDeviceName"):
                reason = f"root volume of {instance['InstanceId']}: terminate the instance if it is no longer needed"
            else:
                params = {**params, "instance_id": instance["InstanceId"], "device": device}
                plan = f.ActionPlan("snapshot-delete-volume", params, saving, reversible=True)
        if plan is not None and backup is not None:
            evidence += f"; a backup snapshot costs at most ${backup:,.2f}/month"
        arn = f"arn:aws:ec2:{self.region}:{self.account}:volume/{volume['VolumeId']}"
        self._remember(volume["VolumeId"], arn, tags, False, monthly, basis, f"{vtype} volume")
        self.result.findings.append(
            f.Finding(
                kind=kind,
                status=f.WASTE,
                cloud="aws",
                region=self.region,
                resource_id=volume["VolumeId"],
                resource_type=f"EBS {vtype} {size} GiB",
                monthly_usd=monthly,
                price_basis=basis,
                owner=f.owner_of(tags),
                evidence=evidence,
                tags=tags,
                arn=arn,
                plan=plan,
                no_action_reason=reason,
            )
        )

    # ----------------------------------------------------------------- endpoints

    def endpoints(self) -> None:
        sm = self.client("sagemaker")
        min_age = self.settings.endpoint_idle_days * 86400
        candidates = []
        for page in sm.get_paginator("list_endpoints").paginate(StatusEquals="InService"):
            for summary in page["Endpoints"]:
                description = sm.describe_endpoint(EndpointName=summary["EndpointName"])
                config = sm.describe_endpoint_config(
                    EndpointConfigName=description["EndpointConfigName"]
                )
                tags: dict[str, str] = {}
                for tag_page in sm.get_paginator("list_tags").paginate(
                    ResourceArn=description["EndpointArn"]
                ):
                    tags.update(_tags(tag_page["Tags"]))
                monthly, basis, variants = self._endpoint_price(description, config)
                self._remember(
                    description["EndpointArn"],
                    description["EndpointArn"],
                    tags,
                    True,
                    monthly,
                    basis,
                    "SageMaker endpoint",
                )
                if not any(v["count"] for v in variants):
                    continue  # serverless, or already scaled to zero: nothing billed at rest
                if _age_seconds(summary.get("CreationTime"), self.now) < min_age:
                    continue
                candidates.append((description, tags, monthly, basis, variants))
        if not candidates:
            return
        days = self.settings.endpoint_idle_days
        end = int(self.now // 3600) * 3600
        queries = []
        for n, (description, _, _, _, variants) in enumerate(candidates):
            for m, variant in enumerate(variants):
                queries.append(
                    {
                        "Id": f"e{n}v{m}",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SageMaker",
                                "MetricName": "Invocations",
                                "Dimensions": [
                                    {"Name": "EndpointName", "Value": description["EndpointName"]},
                                    {"Name": "VariantName", "Value": variant["name"]},
                                ],
                            },
                            "Period": 86400,
                            "Stat": "Sum",
                        },
                        "ReturnData": True,
                    }
                )
        sums: Counter[str] = Counter()
        cloudwatch = self.client("cloudwatch")
        for first in range(0, len(queries), idle.MAX_QUERIES):
            request: dict[str, Any] = {
                "MetricDataQueries": queries[first : first + idle.MAX_QUERIES],
                "StartTime": dt.datetime.fromtimestamp(end - days * 86400, dt.UTC),
                "EndTime": dt.datetime.fromtimestamp(end, dt.UTC),
            }
            while True:
                answer = cloudwatch.get_metric_data(**request)
                for result in answer["MetricDataResults"]:
                    sums[result["Id"].split("v")[0]] += sum(result["Values"])
                if not answer.get("NextToken"):
                    break
                request["NextToken"] = answer["NextToken"]
        for n, (description, tags, monthly, basis, variants) in enumerate(candidates):
            if sums[f"e{n}"] > 0:
                continue
            self._endpoint_finding(description, tags, monthly, basis, variants)

    def _endpoint_price(
        self, description: Mapping[str, Any], config: Mapping[str, Any]
    ) -> tuple[float | None, str, list[dict[str, Any]]]:
        """Monthly price of the endpoint's instance-backed variants and their facts."""
        configured = {v["VariantName"]: v for v in config.get("ProductionVariants", [])}
        variants = []
        monthly: float | None = 0.0
        parts = []
        for summary in description.get("ProductionVariants", []):
            spec = configured.get(summary["VariantName"], {})
            instance_type = spec.get("InstanceType")
            if not instance_type:
                continue  # serverless: costs nothing while idle
            count = int(summary.get("CurrentInstanceCount", spec.get("InitialInstanceCount", 1)))
            scaling = spec.get("ManagedInstanceScaling") or {}
            floor = (
                0
                if scaling.get("Status") == "ENABLED" and scaling.get("MinInstanceCount") == 0
                else 1
            )
            try:
                hourly = catalog.lookup(
                    instance_type, self.region, cloud="aws"
                ).on_demand_usd_per_hour
            except CatalogError:
                hourly = None
            variants.append(
                {
                    "name": summary["VariantName"],
                    "instance_type": instance_type,
                    "count": count,
                    "floor": floor,
                    "usd_per_hour": hourly,
                }
            )
            if hourly is None or monthly is None:
                monthly = None
            else:
                monthly += f.per_month(hourly * count)
            parts.append(
                f"{count} x {instance_type}" + (f" at ${hourly:.4g}/h" if hourly else " (no price)")
            )
        basis = (
            ", ".join(parts) + " x 730 h"
            if monthly is not None
            else "not priced: " + ", ".join(parts)
        )
        return monthly, basis, variants

    def _endpoint_finding(
        self,
        description: Mapping[str, Any],
        tags: dict[str, str],
        monthly: float | None,
        basis: str,
        variants: list[dict[str, Any]],
    ) -> None:
        name = description["EndpointName"]
        lower = [v for v in variants if v["count"] > v["floor"]]
        plan = None
        reason = ""
        if lower:
            saving: float | None = 0.0
            for v in lower:
                if v["usd_per_hour"] is None or saving is None:
                    saving = None
                else:
                    saving += f.per_month(v["usd_per_hour"] * (v["count"] - v["floor"]))
            plan = f.ActionPlan(
                "scale-endpoint-down",
                {
                    "endpoint_name": name,
                    "variants": [
                        {"name": v["name"], "from": v["count"], "to": v["floor"]} for v in lower
                    ],
                },
                saving,
                reversible=True,
            )
        else:
            reason = "already at its minimum instance count; delete the endpoint (its configuration stays) if it is no longer needed"
        days = self.settings.endpoint_idle_days
        self.result.findings.append(
            f.Finding(
                kind=f.IDLE_ENDPOINT,
                status=f.WASTE,
                cloud="aws",
                region=self.region,
                resource_id=name,
                resource_type="SageMaker endpoint "
                + ", ".join(f"{v['count']} x {v['instance_type']}" for v in variants),
                monthly_usd=monthly,
                price_basis=basis,
                owner=f.owner_of(tags),
                evidence=f"no invocations in {days:g} days (AWS/SageMaker Invocations)",
                tags=tags,
                arn=description["EndpointArn"],
                plan=plan,
                no_action_reason=reason,
            )
        )

    # ----------------------------------------------------------------- snapshots

    def snapshots(self) -> None:
        ec2 = self.client("ec2")
        in_use = set()
        for page in ec2.get_paginator("describe_images").paginate(Owners=["self"]):
            for image in page["Images"]:
                for mapping in image.get("BlockDeviceMappings", []):
                    snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
                    if snapshot_id:
                        in_use.add(snapshot_id)
        retention = self.settings.snapshot_retention_days
        for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
            for snapshot in page["Snapshots"]:
                if snapshot["SnapshotId"] in in_use or snapshot.get("State") != "completed":
                    continue
                if _age_seconds(snapshot.get("StartTime"), self.now) < retention * 86400:
                    continue
                self._snapshot_finding(snapshot, retention)

    def _snapshot_finding(self, snapshot: Mapping[str, Any], retention: float) -> None:
        tags = _tags(snapshot.get("Tags"))
        archive = snapshot.get("StorageTier") == "archive"
        item = "ebs-snapshot-archive-gb" if archive else "ebs-snapshot-gb"
        price = storage.usd_per_month(self.region, item)
        size = snapshot.get("VolumeSize") or 0
        monthly = None if price is None else size * price
        basis = (
            f"at most: source volume {size} GiB x ${price}/GB-month ({item}); a snapshot bills "
            "only the blocks it holds"
            if price is not None
            else f"not priced: no {item} price for {self.region} in the catalog"
        )
        started = snapshot["StartTime"].strftime("%Y-%m-%d")
        arn = f"arn:aws:ec2:{self.region}::snapshot/{snapshot['SnapshotId']}"
        self._remember(snapshot["SnapshotId"], arn, tags, False, monthly, basis, "EBS snapshot")
        self.result.findings.append(
            f.Finding(
                kind=f.OLD_SNAPSHOT,
                status=f.WASTE,
                cloud="aws",
                region=self.region,
                resource_id=snapshot["SnapshotId"],
                resource_type=f"EBS snapshot of {size} GiB" + (" (archive)" if archive else ""),
                monthly_usd=monthly,
                price_basis=basis,
                owner=f.owner_of(tags),
                evidence=f"taken {started}, older than {retention:g} days, used by no own AMI",
                tags=tags,
                arn=arn,
                plan=f.ActionPlan(
                    "delete-snapshot",
                    {
                        "snapshot_id": snapshot["SnapshotId"],
                        "volume_id": snapshot.get("VolumeId"),
                        "tags": tags,
                    },
                    monthly,
                    reversible=False,
                ),
            )
        )

    # --------------------------------------------------------------- checkpoints

    def _fleet_buckets(self) -> dict[str, dict[str, str]]:
        buckets: dict[str, dict[str, str]] = {}
        tagging = self.client("resourcegroupstaggingapi")
        for page in tagging.get_paginator("get_resources").paginate(
            ResourceTypeFilters=["s3"], TagFilters=[{"Key": FLEET_TAG}]
        ):
            for mapping in page["ResourceTagMappingList"]:
                name = mapping["ResourceARN"].rsplit(":", 1)[-1]
                buckets[name] = _tags(mapping.get("Tags"))
        s3 = self.client("s3")
        for name in self.settings.checkpoint_buckets:
            if name in buckets:
                continue
            location = s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1"
            if location == self.region:
                buckets[name] = {}
        return buckets

    def _retention(self, bucket: str) -> tuple[float, str]:
        from botocore.exceptions import ClientError

        if self.settings.checkpoint_retention_days is not None:
            days = self.settings.checkpoint_retention_days
            return days, f"--checkpoint-retention-days {days:g}"
        try:
            rules = self.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        for rule in rules:
            flt = rule.get("Filter") or {}
            prefix = flt.get("Prefix", flt.get("And", {}).get("Prefix", rule.get("Prefix")))
            days = rule.get("Expiration", {}).get("Days")
            if (
                rule.get("Status") == "Enabled"
                and days
                and CHECKPOINT_PREFIX.startswith(prefix or "")
            ):
                return float(
                    days
                ), f"the bucket's lifecycle rule {rule.get('ID', '')!r} ({days} days)"
        days = DEFAULT_CHECKPOINT_RETENTION_DAYS
        return days, f"no expiry rule for {CHECKPOINT_PREFIX}: the fleets' default {days:g} days"

    def checkpoints(self) -> None:
        s3 = self.client("s3")
        for bucket, tags in sorted(self._fleet_buckets().items()):
            retention, why = self._retention(bucket)
            versioned = s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
            cutoff = self.now - retention * 86400
            keys, size = [], 0
            for page in s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=CHECKPOINT_PREFIX
            ):
                for item in page.get("Contents", []):
                    if item["LastModified"].timestamp() < cutoff:
                        keys.append(item["Key"])
                        size += int(item.get("Size", 0))
            arn = f"arn:aws:s3:::{bucket}"
            self._remember(bucket, arn, tags, False, None, "not priced (bucket)", "S3 bucket")
            if not keys:
                continue
            price = storage.usd_per_month(self.region, "s3-standard-gb")
            gib = size / GIB
            monthly = None if price is None else gib * price
            basis = (
                f"{gib:,.2f} GiB x ${price}/GB-month S3 Standard ({storage.STORAGE_SNAPSHOT_DATE})"
                if price is not None
                else f"not priced: no S3 price for {self.region} in the catalog"
            )
            self.result.findings.append(
                f.Finding(
                    kind=f.EXPIRED_CHECKPOINTS,
                    status=f.WASTE,
                    cloud="aws",
                    region=self.region,
                    resource_id=f"s3://{bucket}/{CHECKPOINT_PREFIX}",
                    resource_type=f"{len(keys)} checkpoint objects",
                    monthly_usd=monthly,
                    price_basis=basis,
                    owner=f.owner_of(tags),
                    evidence=f"{len(keys)} objects ({gib:,.2f} GiB) older than {retention:g} days; retention from {why}",
                    tags=tags,
                    arn=arn,
                    plan=f.ActionPlan(
                        "delete-checkpoints",
                        {"bucket": bucket, "keys": keys, "versioned": versioned},
                        monthly,
                        reversible=versioned,
                    ),
                    no_action_reason=""
                    if versioned
                    else "bucket not versioned: deletion cannot be undone",
                )
            )

    # ---------------------------------------------------------------------- tags

    def _remember(
        self,
        resource_id: str,
        arn: str,
        tags: dict[str, str],
        workload: bool,
        monthly: float | None,
        basis: str,
        label: str,
    ) -> None:
        self._seen[resource_id] = (arn, tags, workload, monthly, basis, label)

    def tags(self) -> None:
        self._remember_instances()
        tagging = self.client("resourcegroupstaggingapi")
        for page in tagging.get_paginator("get_resources").paginate(ResourcesPerPage=100):
            for mapping in page["ResourceTagMappingList"]:
                arn = mapping["ResourceARN"]
                parsed = tagcheck.parse_arn(arn)
                resource_id = parsed.resource_id if parsed else arn
                if resource_id in self._seen or arn in self._seen:
                    continue
                self._seen[resource_id] = (
                    arn,
                    _tags(mapping.get("Tags")),
                    False,
                    None,
                    "not priced",
                    "",
                )
        for resource_id, (arn, tags, workload, monthly, basis, label) in sorted(self._seen.items()):
            verdict = tagcheck.judge(arn, tags, workload)
            if not verdict.judged:
                self.result.unjudged[verdict.type_label] += 1
                continue
            if not verdict.taggable or not (verdict.missing or verdict.problems):
                continue
            problems = []
            if verdict.missing:
                problems.append("missing " + ", ".join(verdict.missing))
            problems += verdict.problems
            self.result.findings.append(
                f.Finding(
                    kind=f.MISSING_TAGS,
                    status=f.UNTAGGED,
                    cloud="aws",
                    region=self.region,
                    resource_id=resource_id,
                    resource_type=label or verdict.type_label,
                    monthly_usd=monthly,
                    price_basis=basis,
                    owner=f.owner_of(tags),
                    evidence="; ".join(problems),
                    tags=tags,
                    arn=arn,
                    no_action_reason="tags need an owner's answer: set them in the stack (finops:tags) or on the resource",
                )
            )

    def _remember_instances(self) -> None:
        """Every running or stopped instance, for the tag check (priced when running on an
        accelerator type of the catalog)."""
        accelerated = set(catalog.instance_types(cloud="aws", service="ec2"))
        for instance in self._instances():
            if instance["InstanceId"] in self._seen:
                continue
            spot = instance.get("InstanceLifecycle") == "spot"
            running = instance["State"]["Name"] == "running"
            monthly, basis = (
                self._instance_price(instance["InstanceType"], spot)
                if running and instance["InstanceType"] in accelerated
                else (None, "not priced" if running else "stopped: compute not billed")
            )
            self._remember(
                instance["InstanceId"],
                self._instance_arn(instance),
                _tags(instance.get("Tags")),
                instance["InstanceType"] in accelerated,
                monthly,
                basis,
                instance["InstanceType"],
            )
