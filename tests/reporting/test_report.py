"""`finops report` against the real FOCUS 1.0 sample, checked with an independent csv sum."""

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from finops.cli import main
from finops.reporting import UNTAGGED, ReportError, build_report

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "focus" / "focus_1.0_sample.csv"
ALIASES = {"Project": ["application"], "Team": ["business_unit"], "Environment": ["env"]}


def expected_by(names: set[str], column: str = "EffectiveCost") -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    with SAMPLE.open() as handle:
        for row in csv.DictReader(handle):
            tags = json.loads(row["Tags"]) if row["Tags"] not in ("", "NULL") else {}
            value = next(
                (
                    str(v).strip()
                    for k, v in sorted(tags.items())
                    if k.strip().lower() in names and str(v).strip()
                ),
                UNTAGGED,
            )
            totals[value] += float(row[column])
    return dict(totals)


def test_totals_by_key_match_an_independent_sum():
    report = build_report(SAMPLE, aliases=ALIASES)
    project = {v: c for v, c in report.by_key[0].rows}
    expected = expected_by({"project", "application"})
    assert project.keys() == expected.keys()
    for value, cost in expected.items():
        assert project[value] == pytest.approx(cost, abs=1e-9)
    assert report.total == pytest.approx(sum(expected.values()))
    assert report.row_count == 1000
    assert dict(report.by_provider).keys() == {"AWS", "Microsoft", "Oracle"}


def test_keys_match_case_insensitively_and_in_gcp_spelling(tmp_path):
    path = tmp_path / "mini.csv"
    header = "ChargePeriodStart,ProviderName,ServiceName,Tags,EffectiveCost,BilledCost"
    rows = [
        '2026-10-01,AWS,EC2,"{""ModelVersion"": ""v1""}",10,10',
        '2026-10-01,Google Cloud,Compute,"{""model-version"": ""v1""}",5,5',
        '2026-10-01,Microsoft,VM,"{""modelversion"": ""v2""}",2,2',
        "2026-10-01,AWS,S3,NULL,1,1",
        '2026-11-01,AWS,EC2,"{""ModelVersion"": ""v3""}",100,100',
    ]
    path.write_text("\n".join([header, *rows]) + "\n")
    report = build_report(path, keys=["ModelVersion"], month="2026-10")
    breakdown = report.by_key[0]
    assert dict(breakdown.rows) == {"v1": 15.0, "v2": 2.0, UNTAGGED: 1.0}
    assert breakdown.tagged_share == pytest.approx(17 / 18)
    assert report.total == 18.0


def test_not_focus_names_the_missing_columns(tmp_path):
    path = tmp_path / "cur.csv"
    path.write_text("line_item_unblended_cost,resource_tags\n1,{}\n")
    with pytest.raises(
        ReportError, match=r"cur.csv: not a FOCUS 1.0 export: missing column\(s\) ChargePeriodStart"
    ):
        build_report(path)
    with pytest.raises(ReportError, match="billing export not found"):
        build_report(tmp_path / "nope.csv")


def test_cli_json_and_bad_alias(capsys):
    assert (
        main(
            [
                "report",
                str(SAMPLE),
                "--format",
                "json",
                "--alias",
                "Project=application",
                "--by",
                "Project",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["byTag"][0]["matchedKeys"] == ["Project", "application"]
    assert main(["report", str(SAMPLE), "--alias", "Project"]) == 2
    assert "expected KEY=name" in capsys.readouterr().err
