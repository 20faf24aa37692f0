"""`finops catalog list|show` through `aifinops.cli.main`: exit codes and what is printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aifinops import catalog
from aifinops.cli import main


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


def _finops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aifinops", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FINOPS_CATALOG_OVERLAY": ""},
    )


def test_list_in_an_unknown_region_is_an_error_with_suggestions() -> None:
    done = _finops("catalog", "list", "--region", "us-eats-1")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(
        "error: region 'us-eats-1' is not in the catalog (did you mean us-east-1, "
    )
    assert "(finops catalog regions lists them)" in done.stderr
    done = _finops("catalog", "list", "--cloud", "azure", "--region", "us-east-1")
    assert done.returncode == 2
    assert done.stderr.startswith("error: region 'us-east-1' is in aws, not azure; ")


def test_an_empty_match_says_so_and_where_to_look() -> None:
    done = _finops(
        "catalog", "list", "--cloud", "aws", "--accelerator", "TPU-v5p", "--format", "json"
    )
    assert done.returncode == 0
    assert json.loads(done.stdout) == []
    assert done.stderr == (
        "note: no instance type in the catalog matches --cloud aws --accelerator TPU-v5p; "
        "--all-regions searches every region\n"
    )


def test_regions_lists_every_region_with_prices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "regions", "--format", "json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_cloud: dict[str, set[str]] = {}
    for row in listing:
        by_cloud.setdefault(row["cloud"], set()).add(row["region"])
        assert row["types"] > 0
    for cloud in ("aws", "gcp", "azure"):
        assert by_cloud[cloud] == set(catalog.cloud_regions(cloud))


def test_list_a100_shows_both_memory_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["catalog", "list", "--accelerator", "A100", "--all-regions", "--format", "json"]) == 0
    )
    models = {row["accelerator"] for row in json.loads(capsys.readouterr().out)}
    assert models == {"A100", "A100-80GB"}


def test_refresh_of_a_region_missing_from_the_catalog_is_refused_before_any_call() -> None:
    done = _finops("catalog", "refresh", "--region", "us-esat-1")
    assert done.returncode == 2
    assert done.stderr.startswith("error: region 'us-esat-1' is not in the catalog (did you mean ")
    assert "us-east-1" in done.stderr.splitlines()[0]
