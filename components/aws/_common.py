"""What the AWS components share: name and tag checks, tags, IAM documents, Lambda packaging
(arguments are read by components/_args.py, as on every cloud)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from aifinops import catalog
from aifinops import tags as tag_schema
from aifinops.components import _args

LAMBDA_DIR = Path(__file__).parent / "lambdas"
LAMBDA_RUNTIME = "python3.12"
LOG_RETENTION_DAYS = 30


def catalog_region(region: str | None) -> str:
    """The region whose prices and types the plan uses: `region`, else the provider's
    (`aws:region`), else the catalog's default."""
    return region or pulumi.Config("aws").get("region") or catalog.default_region("aws")


_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
MAX_NAME = 40


def check_name(name: str) -> None:
    """A component name every derived AWS name accepts: children are auto-named
    `<name>-<role>-<7 hex>` and IAM roles, Lambda functions and SageMaker resources stop at
    63-64 characters; SageMaker allows only letters, digits and inner hyphens."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.match(name):
        raise _args.invalid(
            "name",
            name,
            f"allowed: 1-{MAX_NAME} letters, digits and inner hyphens "
            "(AWS names derived from it stop at 64 characters)",
        )


SAGEMAKER_NAME_MAX = 63
_SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")


def stack_scoped_name(name: str, limit: int = SAGEMAKER_NAME_MAX) -> str:
    """`<name>-<stack>`, for names that must differ between the stacks of one account and
    region, in what SageMaker names allow (letters, digits, inner hyphens: the strictest AWS
    rule). A stack name with other characters (`prod_eu.1`), or one too long for `limit`, gives
    a cleaned, cut name ending in six hex digits of the whole."""
    raw = f"{name}-{pulumi.get_stack()}"
    if len(raw) <= limit and _SAGEMAKER_NAME.match(raw):
        return raw
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", raw).strip("-")
    digest = hashlib.sha256(raw.encode()).hexdigest()[:6]
    return f"{slug[: limit - len(digest) - 1].rstrip('-')}-{digest}"


def resource_tags(
    stack_tags: Mapping[str, str] | None, model_version: str | None, **extra: str
) -> dict[str, str]:
    """The tags every child carries: the stack's, `ModelVersion` for workloads, then `extra`."""
    merged = {str(k): str(v) for k, v in (stack_tags or {}).items()}
    if model_version:
        merged["ModelVersion"] = model_version
    merged.update(extra)
    return merged


def check_tags(stack_tags: Mapping[str, str] | None, workload: bool) -> None:
    """The stack tags must carry the required keys (the schema in aifinops.tags)."""
    missing = tag_schema.missing_keys(stack_tags or {}, "aws", workload=False)
    if missing:
        raise _args.invalid(
            "tags",
            dict(stack_tags or {}),
            f"missing {', '.join(missing)}; required: "
            f"{', '.join(tag_schema.required_keys(workload=False))}",
        )
    problems = tag_schema.invalid_values(stack_tags or {}, "aws")
    if problems:
        raise _args.invalid("tags", dict(stack_tags or {}), "; ".join(problems))


def assume_role_policy(service: str) -> str:
    """Trust policy letting one AWS service assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def policy_document(statements: list[dict[str, Any]]) -> pulumi.Output[str]:
    """An IAM policy document from statements that may hold Outputs."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})


def lambda_function(
    name: str,
    module: str,
    *,
    description: str,
    role_statements: list[dict[str, Any]],
    environment: Mapping[str, pulumi.Input[str]],
    tags: Mapping[str, str],
    parent: pulumi.Resource,
    region: str | None = None,
    timeout_seconds: int = 60,
) -> tuple[aws.lambda_.Function, aws.iam.Role]:
    """A Lambda function from `lambdas/<module>.py` with its own role, log group and policy.

    The role gets `role_statements` plus writing to its own log group, nothing else (no
    AWSLambdaBasicExecutionRole, which allows every log group in the account).
    """
    opts = pulumi.ResourceOptions(parent=parent)
    log_group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        aws.cloudwatch.LogGroupArgs(
            # one per stack: the same fleet name may exist in dev and prod of one account
            name=f"/finops/lambda/{pulumi.get_project()}-{pulumi.get_stack()}/{name}",
            retention_in_days=LOG_RETENTION_DAYS,
            region=region,
            tags=dict(tags),
        ),
        opts=opts,
    )
    role = aws.iam.Role(
        f"{name}-role",
        aws.iam.RoleArgs(
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"),
            description=f"finops {module} Lambda for {name}",
            tags=dict(tags),
        ),
        opts=opts,
    )
    logs_statement = {
        "Sid": "OwnLogGroup",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": log_group.arn.apply(lambda arn: f"{arn}:*"),
    }
    policy = aws.iam.RolePolicy(
        f"{name}-policy",
        aws.iam.RolePolicyArgs(
            role=role.id, policy=policy_document([*role_statements, logs_statement])
        ),
        opts=opts,
    )
    source = LAMBDA_DIR / f"{module}.py"
    function = aws.lambda_.Function(
        name,  # auto-named from this: Lambda names stop at 64 characters
        aws.lambda_.FunctionArgs(
            description=description,
            runtime=LAMBDA_RUNTIME,
            architectures=["arm64"],
            handler=f"{module}.handler",
            code=pulumi.AssetArchive({f"{module}.py": pulumi.FileAsset(str(source))}),
            role=role.arn,
            timeout=timeout_seconds,
            memory_size=256,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(environment)),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=log_group.name
            ),
            region=region,
            tags=dict(tags),
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[policy, log_group]),
    )
    return function, role


def invoke_on_rule(
    rule_name: str,
    rule: aws.cloudwatch.EventRule,
    function: aws.lambda_.Function,
    *,
    parent: pulumi.Resource,
    region: str | None = None,
) -> None:
    """Let the EventBridge rule `rule` (created as `rule_name`) run `function`: its target
    `<rule_name>-target` and the Lambda permission `<rule_name>-invoke` for that rule only."""
    opts = pulumi.ResourceOptions(parent=parent)
    aws.cloudwatch.EventTarget(
        f"{rule_name}-target",
        aws.cloudwatch.EventTargetArgs(rule=rule.name, arn=function.arn, region=region),
        opts=opts,
    )
    aws.lambda_.Permission(
        f"{rule_name}-invoke",
        aws.lambda_.PermissionArgs(
            action="lambda:InvokeFunction",
            function=function.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            region=region,
        ),
        opts=opts,
    )
