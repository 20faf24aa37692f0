"""`finops catalog list|show` through `finops.cli.main`: exit codes and what is printed."""

from __future__ import annotations

import json

import pytest

from finops import catalog
from finops.cli import main


def test_list_json_one_row_per_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "list", "--cloud", "azure", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(row["instance_type"] for row in rows) == catalog.instance_types("azure")
    assert all(row["region"] == catalog.default_region("azure") for row in rows)
    assert all(row["cloud"] == "azure" for row in rows)


def test_list_by_accelerator_and_region(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "catalog",
                "list",
                "--accelerator",
                "h100",
                "--region",
                "us-west-2",
                "--format",
                "json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert rows
    assert {row["accelerator"] for row in rows} == {"H100"}
    assert {row["region"] for row in rows} == {"us-west-2"}


def test_list_type_not_in_default_region_uses_its_first_region(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["catalog", "list", "--cloud", "gcp", "--service", "tpu", "--format", "json"]) == 0
    by_type = {row["instance_type"]: row for row in json.loads(capsys.readouterr().out)}
    assert by_type["v5p-8"]["region"] == catalog.regions("v5p-8")[0]
    assert by_type["v5litepod-1"]["region"] == "us-central1"


def test_list_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "list", "--cloud", "aws", "--accelerator", "A10G"]) == 0
    out = capsys.readouterr().out
    for name in ("g5.xlarge", "g5.48xlarge", "ml.g5.xlarge"):
        assert name in out
    assert "g4dn.xlarge" not in out


def test_show_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "show", "g5.xlarge", "--region", "us-west-2"]) == 0
    out = capsys.readouterr().out
    info = catalog.lookup("g5.xlarge", "us-west-2")
    assert "g5.xlarge in us-west-2" in out
    assert f"{info.on_demand_usd_per_hour:.4f}" in out
    assert "A10G" in out


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "show", "n1-standard-8+nvidia-tesla-t4:1", "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["accelerator_info"]["model"] == "T4"
    assert record["regions"] == catalog.regions("n1-standard-8+nvidia-tesla-t4:1")


def test_show_miss_is_one_line_with_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "show", "g5.2xlarg"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown instance type 'g5.2xlarg' (did you mean g5.2xlarge")
    assert "Traceback" not in err
