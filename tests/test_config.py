import pytest

from aifinops import config
from aifinops.errors import ConfigError

TAGS = {"Project": "vision", "Team": "ml", "Environment": "dev"}
FLEET = {
    "name": "train",
    "cloud": "aws",
    "instanceTypes": ["g5.xlarge"],
    "nodes": {"min": 0, "max": 4, "desired": 2},
    "modelVersion": "v1",
}


def parse(**overrides):
    raw = {"finops:tags": TAGS, "finops:trainingFleets": [FLEET], "aws:region": "us-east-1"}
    raw.update(overrides)
    return config.parse(raw, source="Pulumi.dev.yaml")


def error_lines(**overrides):
    with pytest.raises(ConfigError) as caught:
        parse(**overrides)
    return str(caught.value).splitlines()


def test_valid_config_and_json_strings_as_the_cli_passes_them():
    import json

    parsed = config.parse(
        {"finops:tags": json.dumps(TAGS), "finops:trainingFleets": json.dumps([FLEET])}
    )
    assert parsed.training_fleets[0].nodes.desired == 2
    assert parsed.training_fleets[0].capacity == config.Capacity.SPOT_WITH_FALLBACK
    assert parsed.region("aws") == "us-east-1"


def test_unknown_instance_type_names_the_key_and_suggests():
    lines = error_lines(**{"finops:trainingFleets": [{**FLEET, "instanceTypes": ["g5.xlarg"]}]})
    assert lines == [
        "Pulumi.dev.yaml: finops:trainingFleets[0].instanceTypes[0]: unknown instance type 'g5.xlarg' "
        + lines[0].split("unknown instance type 'g5.xlarg' ", 1)[1]
    ]
    assert "did you mean g5.xlarge" in lines[0]


def test_negative_node_count():
    assert error_lines(
        **{"finops:trainingFleets": [{**FLEET, "nodes": {"min": -1, "max": 4, "desired": 2}}]}
    ) == [
        "Pulumi.dev.yaml: finops:trainingFleets[0].nodes.min: Input should be greater than or equal to 0 (got -1)"
    ]


def test_missing_tag():
    assert error_lines(**{"finops:tags": {"Project": "vision", "Environment": "dev"}}) == [
        "Pulumi.dev.yaml: finops:tags.Team: required key is missing"
    ]


def test_unknown_cloud():
    assert error_lines(**{"finops:trainingFleets": [{**FLEET, "cloud": "oracle"}]}) == [
        "Pulumi.dev.yaml: finops:trainingFleets[0].cloud: Input should be 'aws', 'gcp' or 'azure' (got 'oracle')"
    ]


def test_bad_environment_and_unknown_keys_each_get_a_line():
    lines = error_lines(
        **{
            "finops:tags": {**TAGS, "Environment": "qa"},
            "finops:trainingFleets": [{**FLEET, "nodez": 1}],
        }
    )
    assert (
        lines[0]
        == "Pulumi.dev.yaml: finops:tags.Environment: Input should be 'dev', 'staging' or 'prod' (got 'qa')"
    )
    assert lines[1].startswith(
        "Pulumi.dev.yaml: finops:trainingFleets[0].nodez: unknown key (did you mean nodes?)"
    )


def test_unknown_top_level_key_suggests():
    assert error_lines(**{"finops:budget": []}) == [
        "Pulumi.dev.yaml: finops:budget: unknown key (did you mean budgets?); allowed: finops:tags, "
        "finops:trainingFleets, finops:inferenceEndpoints, finops:budgets, finops:costCeilingUsd, "
        "finops:gcpBillingAccount, finops:azureSshPublicKey, finops:agent"
    ]


def test_desired_outside_min_max():
    lines = error_lines(
        **{"finops:trainingFleets": [{**FLEET, "nodes": {"min": 2, "max": 4, "desired": 5}}]}
    )
    assert lines == [
        "Pulumi.dev.yaml: finops:trainingFleets[0].nodes: must satisfy min <= desired <= max (got min=2, desired=5, max=4)"
    ]


def test_hardware_must_be_given_exactly_once():
    lines = error_lines(**{"finops:trainingFleets": [{**FLEET, "accelerator": "A10G"}]})
    assert "give exactly one of instanceTypes or accelerator" in lines[0]


def test_stack_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "Pulumi.nope.yaml"
    with pytest.raises(ConfigError, match=r"Pulumi\.nope\.yaml: stack file not found"):
        config.load(missing)
    bad = tmp_path / "Pulumi.bad.yaml"
    bad.write_text("config: [unclosed\n")
    with pytest.raises(ConfigError, match=r"Pulumi.bad.yaml(:\d+)?: not valid YAML"):
        config.load(bad)


def test_stack_names_and_paths():
    from pathlib import Path

    assert config.resolve_stack_file("dev", Path("/p")) == Path("/p/Pulumi.dev.yaml")
    assert config.resolve_stack_file("x/Pulumi.qa.yaml", Path("/p")) == Path("x/Pulumi.qa.yaml")
    assert config.stack_name_of(Path("x/Pulumi.multi.cloud.yaml")) == "multi.cloud"


def test_cloud_account_keys_are_plain_strings_and_may_be_secrets():
    parsed = parse(
        **{
            "finops:gcpBillingAccount": "0A1B2C-3D4E5F-6A7B8C",
            "finops:azureSshPublicKey": {"secure": "AAEAA..."},
        }
    )
    assert parsed.gcp_billing_account == "0A1B2C-3D4E5F-6A7B8C"
    assert parsed.azure_ssh_public_key is None  # encrypted: only the Pulumi CLI can read it
    assert error_lines(**{"finops:gcpBillingAccount": "billing-1"})[0].startswith(
        "Pulumi.dev.yaml: finops:gcpBillingAccount: String should match pattern"
    )


def test_every_problem_at_once_schema_tags_and_catalog():
    lines = error_lines(
        **{
            "finops:tags": {"project": "vision", "Team": "ml", "Environment": "dev"},
            "finops:trainingFleets": [
                {**FLEET, "instanceTypes": ["g5.xlarg"], "nodez": 1},
                {**FLEET, "name": "other", "accelerator": "B9000", "instanceTypes": None},
            ],
            "finops:budget": [],
        }
    )
    assert [line.split(": ")[1] for line in lines] == [
        "finops:budget",
        "finops:tags.project",
        "finops:trainingFleets[0].nodez",
        "finops:trainingFleets[0].instanceTypes[0]",
        "finops:trainingFleets[1].accelerator",
    ]
    assert "did you mean Project?" in lines[1]


def test_a_tag_key_close_to_a_required_one_is_named():
    lines = error_lines(**{"finops:tags": {"Project": "v", "Team": "ml", "Enviroment": "dev"}})
    assert lines == [
        "Pulumi.dev.yaml: finops:tags.Enviroment: did you mean Environment? (tag keys are "
        "case-sensitive; Environment is required)"
    ]


def test_no_tags_at_all_says_which_are_required():
    with pytest.raises(ConfigError) as caught:
        config.parse({"aws:region": "us-east-1"}, source="Pulumi.dev.yaml")
    assert str(caught.value) == (
        "Pulumi.dev.yaml: finops:tags: required key is missing (Project, Team, Environment)"
    )


def test_an_accelerator_fleet_in_a_region_missing_from_the_catalog():
    fleet = {**FLEET, "cloud": "azure", "accelerator": "T4", "instanceTypes": None}
    lines = error_lines(**{"finops:trainingFleets": [{**fleet, "region": "westus9"}]})
    assert lines == [
        "Pulumi.dev.yaml: finops:trainingFleets[0].accelerator: region 'westus9' is not in the "
        + lines[0].split("region 'westus9' is not in the ", 1)[1]
    ]
    lines = error_lines(**{"finops:trainingFleets": [{**fleet, "accelerator": "TPU-v5e"}]})
    assert "the catalog has no azure-vm type with 1 x TPU-v5e in eastus" in lines[0]
    # "A100" as people write it: NC A100 v4 (80 GB) qualifies
    parse(**{"finops:trainingFleets": [{**fleet, "accelerator": "A100"}]})


def budget(**overrides):
    return {
        "project": "vision",
        "cloud": "aws",
        "monthlyLimitUsd": 3000,
        "notify": ["ml@example.com"],
        **overrides,
    }


def test_the_most_common_aws_budget_is_accepted():
    """[50, 80, 100] was refused: each threshold made an ACTUAL and a FORECASTED notification."""
    parsed = parse(**{"finops:budgets": [budget(thresholdsPercent=[100, 50, 80], enforce=True)]})
    assert parsed.budgets[0].thresholds_percent == [50.0, 80.0, 100.0]
    assert config.budget_notifications([50.0, 80.0, 100.0], True) == [
        ("ACTUAL", 50.0),
        ("ACTUAL", 80.0),
        ("ACTUAL", 100.0),
        ("FORECASTED", 100.0),
    ]


def test_too_many_aws_thresholds_is_one_error_naming_the_key():
    ten = [float(t) for t in range(10, 101, 10)]
    assert error_lines(**{"finops:budgets": [budget(), budget(thresholdsPercent=ten)]}) == [
        "Pulumi.dev.yaml: finops:budgets[1].thresholdsPercent: 10 thresholds make 11 "
        "notifications (ACTUAL at each, FORECASTED once); an AWS budget allows 10: give at "
        "most 9 thresholds"
    ]
    # GCP has no small per-budget limit
    assert parse(**{"finops:budgets": [budget(cloud="gcp", thresholdsPercent=ten)]})


def test_agent_source_keys():
    pinned = "aifinops[agent]==0.1.0 --hash=sha256:" + "ab" * 32
    parsed = parse(
        **{
            "finops:agent": {
                "requirements": [pinned],
                "indexUrl": "https://pypi.corp.example/simple",
            }
        }
    )
    assert parsed.agent.requirements == [pinned]
    assert error_lines(**{"finops:agent": {"requirements": ["aifinops[agent]"]}}) == [
        "Pulumi.dev.yaml: finops:agent.requirements[0]: 'aifinops[agent]' is not pinned with a "
        "hash; write it as `name==version --hash=sha256:<64 hex digits>` (pip-compile "
        "--generate-hashes)"
    ]
    assert error_lines(
        **{
            "finops:agent": {
                "wheel": "a.whl",
                "requirements": [pinned],
                "indexUrl": "https://x.example",
            }
        }
    ) == [
        "Pulumi.dev.yaml: finops:agent: give wheel (bundled) or requirements (private index), "
        "not both"
    ]


def test_network_keys():
    given = {**FLEET, "vpcId": "vpc-0abc1234", "subnetIds": ["subnet-0abc1234"]}
    assert parse(**{"finops:trainingFleets": [given]}).training_fleets[0].subnet_ids
    assert error_lines(**{"finops:trainingFleets": [{**FLEET, "subnetIds": ["subnet-1"]}]}) == [
        "Pulumi.dev.yaml: finops:trainingFleets[0]: subnetIds and vpcId go together on AWS"
    ]
    lines = error_lines(**{"finops:trainingFleets": [{**FLEET, "egress": "nat"}]})
    assert lines[0].startswith("Pulumi.dev.yaml: finops:trainingFleets[0].egress: Input should be")


ENDPOINT = {
    "name": "serve",
    "cloud": "aws",
    "instanceType": "ml.inf2.xlarge",
    "replicas": {"min": 1, "max": 2},
    "modelVersion": "v1",
}


@pytest.mark.parametrize(
    ("entry", "line"),
    [
        (
            {"serving": "model-archive"},
            "finops:inferenceEndpoints[0].modelDataUrl: required with serving: model-archive",
        ),
        ({"serving": "llm"}, "finops:inferenceEndpoints[0].modelId: required with serving: llm"),
        ({}, "finops:inferenceEndpoints[0].serving: required on AWS: llm"),
        (
            {"serving": "model-archive", "modelDataUrl": "gs://b/m.tar.gz"},
            "finops:inferenceEndpoints[0].modelDataUrl: 'gs://b/m.tar.gz': an s3://",
        ),
        (
            {"serving": "llm", "modelId": "a/b", "env": {"1BAD": "x"}},
            "finops:inferenceEndpoints[0].env: '1BAD' is not a container variable name",
        ),
    ],
)
def test_what_a_serving_container_needs_is_a_schema_error_naming_the_key(entry, line):
    lines = error_lines(**{"finops:inferenceEndpoints": [{**ENDPOINT, **entry}]})
    assert len(lines) == 1 and lines[0].startswith(f"Pulumi.dev.yaml: {line}"), lines


def test_serving_env_numbers_are_kept_as_text():
    parsed = parse(
        **{
            "finops:inferenceEndpoints": [
                {
                    **ENDPOINT,
                    "serving": "model-archive",
                    "modelDataUrl": "s3://b/m.tar.gz",
                    "env": {"W": 2},
                }
            ]
        }
    )
    assert parsed.inference_endpoints[0].env == {"W": "2"}


QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:train-jobs"


def test_scale_on_takes_an_sqs_queue_on_aws_and_a_subscription_on_gcp():
    fleet = parse(
        **{"finops:trainingFleets": [{**FLEET, "scaleOn": {"queue": QUEUE_ARN, "jobsPerNode": 2}}]}
    ).training_fleets[0]
    assert fleet.scale_on == config.QueueScaling(queue=QUEUE_ARN, jobs_per_node=2)
    gcp = {**FLEET, "cloud": "gcp", "instanceTypes": ["g2-standard-8"]}
    for queue in ("projects/ml-proj-1/subscriptions/train-jobs", "train-jobs"):
        entry = {**gcp, "scaleOn": {"queue": queue, "jobsPerNode": 1}}
        parsed = parse(**{"finops:trainingFleets": [entry], "gcp:region": "us-central1"})
        assert parsed.training_fleets[0].scale_on.queue == queue


@pytest.mark.parametrize(
    ("cloud", "scale_on", "expected"),
    [
        (
            "aws",
            {"queue": "train-jobs", "jobsPerNode": 1},
            "scaleOn.queue: 'train-jobs' is not an SQS queue",
        ),
        (
            "aws",
            {"queue": QUEUE_ARN, "jobsPerNode": 0},
            "scaleOn.jobsPerNode: Input should be greater",
        ),
        (
            "aws",
            {"queue": QUEUE_ARN, "jobsPerNod": 1},
            "scaleOn.jobsPerNod: unknown key (did you mean jobsPerNode?)",
        ),
        ("gcp", {"queue": QUEUE_ARN, "jobsPerNode": 1}, "is not a Pub/Sub subscription"),
        (
            "azure",
            {"queue": "q", "jobsPerNode": 1},
            "scaleOn is built for cloud aws (SQS) and gcp (Pub/Sub)",
        ),
    ],
)
def test_scale_on_errors_name_the_key(cloud, scale_on, expected):
    types = {"aws": "g5.xlarge", "gcp": "g2-standard-8", "azure": "Standard_NC4as_T4_v3"}[cloud]
    entry = {**FLEET, "cloud": cloud, "instanceTypes": [types], "scaleOn": scale_on}
    lines = error_lines(**{"finops:trainingFleets": [entry]})
    assert any(
        line.startswith("Pulumi.dev.yaml: finops:trainingFleets[0]") and expected in line
        for line in lines
    ), lines


def test_sqs_queue_arn_and_url_convert_both_ways():
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/train-jobs"
    assert config.sqs_queue_arn(url) == QUEUE_ARN and config.sqs_queue_url(QUEUE_ARN) == url
    assert config.sqs_queue_arn(QUEUE_ARN) == QUEUE_ARN and config.sqs_queue_url(url) == url
    fifo = "arn:aws:sqs:eu-west-1:123456789012:jobs.fifo"
    assert config.sqs_queue_arn(config.sqs_queue_url(fifo)) == fifo
    assert config.sqs_queue_arn("train-jobs") is None
    assert config.sqs_queue_url("arn:aws:sns:us-east-1:123456789012:topic") is None


GCP_ENDPOINT = {
    "name": "serve",
    "cloud": "gcp",
    "instanceType": "v5litepod-4",
    "replicas": {"min": 1, "max": 3},
    "modelVersion": "v1",
    "serving": "llm",
    "modelId": "Qwen/Qwen2.5-7B-Instruct",
}


@pytest.mark.parametrize(
    ("entry", "line"),
    [
        ({"serving": None}, "serving: llm is required on GCP"),
        ({"serving": "model-archive"}, "serving: llm is required on GCP"),
        ({"modelId": None}, "modelId: required on GCP"),
        ({"modelDataUrl": "gs://b/m"}, "modelDataUrl: not read on GCP"),
        ({"replicas": {"min": 0, "max": 2}}, "replicas.min must be >= 1 on GCP"),
        ({"env": {"X": "1"}}, "env needs image on GCP"),
        ({"image": "us-docker.pkg.dev/p/r/i:1", "env": {"AIP_HTTP_PORT": 80}}, "env.AIP_HTTP_PORT"),
        ({"env": {"1BAD": "x"}}, "'1BAD' is not a container variable name"),
        ({"targetDutyCyclePercent": 0}, "targetDutyCyclePercent: Input should be greater than"),
    ],
)
def test_a_gcp_endpoint_says_what_its_container_needs(entry, line):
    endpoint = {k: v for k, v in {**GCP_ENDPOINT, **entry}.items() if v is not None}
    lines = error_lines(**{"finops:inferenceEndpoints": [endpoint]})
    assert len(lines) == 1 and line in lines[0], lines
    assert lines[0].startswith("Pulumi.dev.yaml: finops:inferenceEndpoints[0]")


def test_a_gcp_endpoint_with_its_contract_parses_and_spot_is_gcp_only():
    parsed = parse(**{"finops:inferenceEndpoints": [{**GCP_ENDPOINT, "spot": True}]})
    endpoint = parsed.inference_endpoints[0]
    assert (endpoint.serving, endpoint.model_id, endpoint.spot) == (
        config.ServingKind.LLM,
        "Qwen/Qwen2.5-7B-Instruct",
        True,
    )
    assert endpoint.target_duty_cycle_percent == 60
    aws = {**GCP_ENDPOINT, "cloud": "aws", "instanceType": "ml.inf2.xlarge", "spot": True}
    assert "spot applies to GCP endpoints" in error_lines(**{"finops:inferenceEndpoints": [aws]})[0]


GKE_ENDPOINT = {
    **GCP_ENDPOINT,
    "hosting": "gke",
    "zone": "us-central1-a",
    "image": "us-docker.pkg.dev/p/r/vllm-tpu@sha256:" + "0" * 64,
}


@pytest.mark.parametrize(
    ("entry", "line"),
    [
        ({"image": None}, "image is required with hosting: gke"),
        ({"image": "us-docker.pkg.dev/p/r/vllm-tpu:v1"}, "pinned by digest"),
        ({"zone": None}, "zone is required with hosting: gke"),
        ({"spot": True}, "spot: not with hosting: gke"),
        ({"replicas": {"min": 0, "max": 2}}, "replicas.min must be >= 1 on GCP"),
        ({"cloud": "aws", "instanceType": "ml.inf2.xlarge"}, "hosting: gke is for cloud: gcp"),
        ({"hosting": "provisioned"}, "zone: only with hosting: gke"),
        ({"targetQueueLength": 0}, "targetQueueLength: Input should be greater than"),
    ],
)
def test_a_gke_endpoint_says_what_it_needs(entry, line):
    endpoint = {k: v for k, v in {**GKE_ENDPOINT, **entry}.items() if v is not None}
    lines = error_lines(**{"finops:inferenceEndpoints": [endpoint]})
    assert len(lines) == 1 and line in lines[0], lines
    assert lines[0].startswith("Pulumi.dev.yaml: finops:inferenceEndpoints[0]")


def test_a_gke_endpoint_parses_with_its_keys():
    entry = {**GKE_ENDPOINT, "targetQueueLength": 4, "maxModelLen": 8192,
             "huggingFaceTokenSecret": "hf-token", "env": {"VLLM_LOGGING_LEVEL": "INFO"}}  # fmt: skip
    endpoint = parse(**{"finops:inferenceEndpoints": [entry]}).inference_endpoints[0]
    assert endpoint.hosting == config.Hosting.GKE
    assert (endpoint.zone, endpoint.target_queue_length, endpoint.max_model_len) == (
        "us-central1-a",
        4,
        8192,
    )
    assert endpoint.hugging_face_token_secret == "hf-token"


SERVERLESS = {
    "name": "faq",
    "cloud": "aws",
    "hosting": "serverless",
    "serving": "model-archive",
    "memoryMb": 3072,
    "requestsPerMonth": 100000,
    "meanDurationMs": 800,
    "modelVersion": "v1",
    "modelDataUrl": "s3://b/m.tar.gz",
}
CLOUD_RUN = {
    **{k: v for k, v in SERVERLESS.items() if k != "modelDataUrl"},  # Cloud Run runs image
    "name": "chat",
    "cloud": "gcp",
    "serving": None,
    "accelerator": "L4",
    "cpu": 4,
    "memoryMb": 16384,
    "replicas": {"min": 0, "max": 2},
}


def test_serverless_endpoints_parse_without_replicas_or_hardware():
    parsed = parse(**{"finops:inferenceEndpoints": [SERVERLESS, CLOUD_RUN]})
    faq, chat = parsed.inference_endpoints
    assert (faq.hosting, faq.replicas, faq.memory_mb, faq.traffic) == (
        config.Hosting.SERVERLESS, None, 3072, (100000.0, 800.0)
    )  # fmt: skip
    assert (chat.accelerator, chat.cpu, chat.replicas.min) == ("L4", 4, 0)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**SERVERLESS, "memoryMb": 1536}, "memoryMb 1536: SageMaker serverless allows 1024, "
         "2048, 3072, 4096, 5120, 6144 (1 GB steps)"),
        ({**SERVERLESS, "maxConcurrency": 201}, "maxConcurrency 201: allowed 1 to 200"),
        ({**SERVERLESS, "maxConcurrency": 4, "provisionedConcurrency": 5},
         "provisionedConcurrency 5 must be <= maxConcurrency (4)"),
        ({**SERVERLESS, "accelerator": "T4"}, "accelerator: SageMaker Serverless Inference has "
         "no GPU or Inferentia"),
        ({**SERVERLESS, "modelMemoryGib": 8}, "modelMemoryGib 8: SageMaker serverless has at "
         "most 6144 MB; use hosting: provisioned"),
        ({**SERVERLESS, "meanDurationMs": 90000}, "meanDurationMs 90000: a SageMaker "
         "serverless invocation stops at 60000 ms"),
        ({k: v for k, v in SERVERLESS.items() if k != "meanDurationMs"},
         "give requestsPerMonth and meanDurationMs together"),
        ({**CLOUD_RUN, "accelerator": "A100"}, "accelerator 'A100': Cloud Run offers L4"),
        ({**CLOUD_RUN, "cpu": 2}, "cpu 2: a Cloud Run L4 needs at least 4 vCPU"),
        ({**CLOUD_RUN, "memoryMb": 8192}, "memoryMb 8192: a Cloud Run L4 needs at least 16384"),
        ({**CLOUD_RUN, "provisionedConcurrency": 1}, "provisionedConcurrency: SageMaker only"),
        ({**SERVERLESS, "hosting": "provisioned", "instanceType": "ml.inf2.xlarge",
          "replicas": {"min": 1, "max": 1}}, "memoryMb: only with hosting: serverless"),
        ({**SERVERLESS, "serving": "llm", "modelId": "a/b"}, "serving: llm (a TGI server) needs "
         "a GPU or Inferentia, which SageMaker Serverless Inference has not"),
    ],
)  # fmt: skip
def test_serverless_limits_name_the_key_and_the_allowed_values(entry, message):
    (line,) = error_lines(**{"finops:inferenceEndpoints": [entry]})
    assert line.startswith("Pulumi.dev.yaml: finops:inferenceEndpoints[0]: ")
    assert message in line


def test_account_budgets_without_project():
    budgets = [
        {"cloud": "aws", "monthlyLimitUsd": 100, "notify": ["a@b.co"]},
        {"cloud": "azure", "monthlyLimitUsd": 100, "notify": ["a@b.co"]},
    ]
    aws, azure = parse(**{"finops:budgets": budgets}).budgets
    assert (aws.component_name, aws.export_prefix, aws.scope) == (
        "aws-account-budget", "aws-account", "account"
    )  # fmt: skip
    assert azure.component_name == "azure-account-budget"
    (line,) = error_lines(**{"finops:budgets": [{**budgets[0], "enforce": True}]})
    assert "finops:budgets[0]: enforce needs project" in line
    assert parse(**{"finops:budgets": [{**budgets[1], "project": "vision"}]}).budgets[0].project
