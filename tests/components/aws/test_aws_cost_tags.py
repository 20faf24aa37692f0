"""Cost-allocation tag activation (lambdas/cost_allocation_tags.py), on botocore's Stubber
(moto has no Cost Explorer tag API): a first deploy never fails on keys billing has not seen,
nothing is ever deactivated, and the daily retry stops once every key is active."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from aifinops.components.aws.lambdas import cost_allocation_tags as step

KEYS = ["Project", "Team", "Environment", "ModelVersion"]
RULE = "vision-budget-cost-tags-daily-1a2b3c4"


@pytest.fixture
def clients():
    ce = boto3.client("ce", region_name="us-east-1")
    events = boto3.client("events", region_name="us-east-1")
    with Stubber(ce) as ce_stub, Stubber(events) as events_stub:
        yield ce, ce_stub, events, events_stub
        ce_stub.assert_no_pending_responses()
        events_stub.assert_no_pending_responses()


def listed(*tags: tuple[str, str], token: str | None = None) -> dict:
    answer: dict = {
        "CostAllocationTags": [
            {"TagKey": key, "Type": "UserDefined", "Status": status} for key, status in tags
        ]
    }
    if token:
        answer["NextToken"] = token
    return answer


def test_first_deploy_activates_what_billing_has_seen_and_waits_for_the_rest(clients) -> None:
    ce, ce_stub, events, _ = clients
    ce_stub.add_response(
        "list_cost_allocation_tags",
        listed(("Project", "Inactive"), ("Team", "Active")),
        {"TagKeys": KEYS, "Type": "UserDefined"},
    )
    ce_stub.add_response(
        "update_cost_allocation_tags_status",
        {"Errors": []},
        {"CostAllocationTagsStatus": [{"TagKey": "Project", "Status": "Active"}]},
    )
    report = step.run(ce, events, KEYS, RULE)
    assert report == {
        "status": "ok",
        "active": ["Project", "Team"],
        "activated": ["Project"],
        "pending": ["Environment", "ModelVersion"],
        "errors": [],
    }  # no disable_rule: the daily run tries the pending keys again


def test_all_active_changes_nothing_and_stops_the_daily_run(clients) -> None:
    ce, ce_stub, events, events_stub = clients
    ce_stub.add_response(
        "list_cost_allocation_tags",
        listed(*[(k, "Active") for k in KEYS[:2]], token="page-2"),
        {"TagKeys": KEYS, "Type": "UserDefined"},
    )
    ce_stub.add_response(
        "list_cost_allocation_tags",
        listed(*[(k, "Active") for k in KEYS[2:]]),
        {"TagKeys": KEYS, "Type": "UserDefined", "NextToken": "page-2"},
    )
    events_stub.add_response("disable_rule", {}, {"Name": RULE})
    report = step.run(ce, events, KEYS, RULE)
    assert report["active"] == KEYS and report["activated"] == [] and report["pending"] == []
    assert report["schedule"] == "disabled"


def test_refused_keys_are_reported_not_raised(clients) -> None:
    ce, ce_stub, events, _ = clients
    ce_stub.add_response(
        "list_cost_allocation_tags",
        listed(("Project", "Inactive"), ("Team", "Inactive")),
        {"TagKeys": ["Project", "Team"], "Type": "UserDefined"},
    )
    ce_stub.add_response(
        "update_cost_allocation_tags_status",
        {"Errors": [{"TagKey": "Team", "Code": "TagKeysNotFoundException", "Message": "no"}]},
        {
            "CostAllocationTagsStatus": [
                {"TagKey": "Project", "Status": "Active"},
                {"TagKey": "Team", "Status": "Active"},
            ]
        },
    )
    report = step.run(ce, events, ["Project", "Team"], RULE)
    assert report["activated"] == ["Project"] and report["pending"] == ["Team"]
    assert report["errors"][0]["Code"] == "TagKeysNotFoundException"


def test_a_member_account_is_told_to_use_the_management_account(clients) -> None:
    ce, ce_stub, events, _ = clients
    ce_stub.add_client_error(
        "list_cost_allocation_tags",
        service_error_code="AccessDeniedException",
        http_status_code=400,
    )
    report = step.run(ce, events, KEYS, RULE)
    assert report["status"] == "management-account-required"
    assert "management account" in report["message"] and report["pending"] == KEYS


def test_an_unexpected_error_is_reported_and_retried_daily(clients) -> None:
    ce, ce_stub, events, _ = clients
    ce_stub.add_client_error("list_cost_allocation_tags", service_error_code="ThrottlingException")
    report = step.run(ce, events, KEYS, RULE)
    assert (report["status"], report["code"]) == ("error", "ThrottlingException")


def test_more_than_twenty_inactive_keys_go_in_batches(clients) -> None:
    ce, ce_stub, events, events_stub = clients
    keys = [f"Key{i}" for i in range(25)]
    ce_stub.add_response(
        "list_cost_allocation_tags",
        listed(*[(k, "Inactive") for k in keys]),
        {"TagKeys": keys, "Type": "UserDefined"},
    )
    for batch in (keys[:20], keys[20:]):
        ce_stub.add_response(
            "update_cost_allocation_tags_status",
            {"Errors": []},
            {"CostAllocationTagsStatus": [{"TagKey": k, "Status": "Active"} for k in batch]},
        )
    events_stub.add_response("disable_rule", {}, {"Name": RULE})
    assert step.run(ce, events, keys, RULE)["activated"] == keys


def test_the_step_can_only_ever_activate() -> None:
    """Nothing in the function can deactivate a key: every status it sends is Active."""
    from pathlib import Path

    source = Path(step.__file__).read_text()
    assert source.count("update_cost_allocation_tags_status(") == 1
    assert '"Status": "Active"' in source and '"Status": "Inactive"' not in source
