from aifinops.tagging import apply_tags

STACK = {"Project": "vision", "Team": "ml", "Environment": "dev"}


def test_map_tags_are_merged_and_resource_keys_win():
    props = apply_tags(
        "aws:s3/bucket:Bucket", {"tags": {"Project": "other", "ModelVersion": "v1"}}, STACK
    )
    assert props["tags"] == {
        "Project": "other",
        "Team": "ml",
        "Environment": "dev",
        "ModelVersion": "v1",
    }


def test_asg_tags_are_a_list_propagated_at_launch():
    props = apply_tags(
        "aws:autoscaling/group:Group",
        {"tags": [{"key": "Team", "value": "x", "propagateAtLaunch": True}]},
        STACK,
    )
    assert props["tags"] == [
        {"key": "Team", "value": "x", "propagateAtLaunch": True},
        {"key": "Project", "value": "vision", "propagateAtLaunch": True},
        {"key": "Environment", "value": "dev", "propagateAtLaunch": True},
    ]


def test_launch_templates_tag_instances_volumes_and_interfaces():
    props = apply_tags(
        "aws:ec2/launchTemplate:LaunchTemplate",
        {"tagSpecifications": [{"resourceType": "instance", "tags": {"ModelVersion": "v2"}}]},
        STACK,
    )
    specs = {spec["resourceType"]: spec["tags"] for spec in props["tagSpecifications"]}
    assert set(specs) == {"instance", "volume", "network-interface"}
    assert specs["instance"] == {**STACK, "ModelVersion": "v2"}
    assert specs["volume"] == STACK


def test_gcp_gets_labels_in_its_spelling():
    props = apply_tags("gcp:tpu/v2Vm:V2Vm", {}, {**STACK, "ModelVersion": "V1.2"})
    assert props["labels"] == {
        "project": "vision",
        "team": "ml",
        "environment": "dev",
        "model-version": "v1-2",
    }


def test_untaggable_types_are_left_alone():
    assert apply_tags("aws:iam/rolePolicy:RolePolicy", {"policy": "{}"}, STACK) is None


def test_gke_labels_go_where_gke_bills_them():
    """A cluster's `resourceLabels`; a node pool's nested `nodeConfig.resourceLabels`, the
    rest of its node config kept (before, both types were untaggable and left alone)."""
    cluster = apply_tags("gcp:container/cluster:Cluster", {"location": "us-central1-a"}, STACK)
    assert cluster is not None
    assert cluster["resourceLabels"] == {"project": "vision", "team": "ml", "environment": "dev"}
    pool = apply_tags(
        "gcp:container/nodePool:NodePool",
        {"nodeConfig": {"machineType": "ct5lp-hightpu-4t", "resourceLabels": {"team": "serve"}}},
        STACK,
    )
    assert pool is not None
    assert pool["nodeConfig"] == {
        "machineType": "ct5lp-hightpu-4t",
        "resourceLabels": {"project": "vision", "team": "serve", "environment": "dev"},
    }
    bare = apply_tags("gcp:container/nodePool:NodePool", {"nodeCount": 1}, STACK)
    assert bare is not None and bare["nodeConfig"]["resourceLabels"]["project"] == "vision"
