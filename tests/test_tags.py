from aifinops import tags


def test_gcp_keys_are_lower_kebab_and_values_sanitised():
    assert tags.spell({"ModelVersion": "V1.2/Prod", "Project": "Vision"}, "gcp") == {
        "model-version": "v1-2-prod",
        "project": "vision",
    }


def test_gcp_values_are_cut_at_63_characters():
    assert len(tags.gcp_label_value("x" * 100)) == 63


def test_aws_and_azure_keep_keys_as_given():
    given = {"ModelVersion": "V1.2", "CostCenter": "cc-1"}
    assert tags.spell(given, "aws") == given
    assert tags.spell(given, "azure") == given


def test_missing_keys_use_the_cloud_spelling():
    present = {"project": "p", "team": "t", "environment": "dev"}
    assert tags.missing_keys(present, "gcp", workload=False) == []
    assert tags.missing_keys(present, "gcp", workload=True) == ["ModelVersion"]
    assert tags.missing_keys(present, "aws", workload=False) == ["Project", "Team", "Environment"]


def test_empty_values_count_as_missing():
    assert tags.missing_keys({"Project": " ", "Team": "t", "Environment": "dev"}, "aws", False) == [
        "Project"
    ]


def test_invalid_environment_and_gcp_label_values():
    assert tags.invalid_values({"Environment": "qa"}, "aws") == [
        "Environment='qa' is not one of dev, staging, prod"
    ]
    assert tags.invalid_values({"project": "Vision"}, "gcp")
    assert tags.invalid_values({"project": "vision"}, "gcp") == []


def test_cloud_of_type_tokens():
    assert tags.cloud_of("aws:ec2/instance:Instance") == "aws"
    assert tags.cloud_of("aws-native:sagemaker:InferenceComponent") == "aws"
    assert tags.cloud_of("gcp:tpu/v2Vm:V2Vm") == "gcp"
    assert tags.cloud_of("azure-native:compute:VirtualMachineScaleSet") == "azure"
    assert tags.cloud_of("finops:aws:GpuTrainingFleet") is None


def test_billing_spellings_cover_every_cloud_and_aws_prefixes():
    assert tags.billing_spellings("ModelVersion") == ("modelversion", "model-version")
    assert tags.billing_spellings("Project") == ("project",)
    assert tags.billing_key_form(" user:Project ") == "project"
    assert tags.billing_key_form("resourceTags/user:Team") == "team"
    assert tags.billing_key_form("aws:createdBy") == "aws:createdby"  # not a prefix
    assert "Stage" in tags.ALL_KEYS
