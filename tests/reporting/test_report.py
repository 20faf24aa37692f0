"""Showback on the real FOCUS 1.0 sample, checked against an independent csv + Decimal sum.

Amounts are compared exactly (DuckDB sums DECIMAL(38,18); the sample has 11 decimals), which
is stricter than "to the cent".
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from focus_oracle import SAMPLE, UNTAGGED, costs_by, costs_by_column, rows, tags_of, value_of

from aifinops.cli import main
from aifinops.reporting import ReportError, build_report

ALIASES = {"Project": ["application"], "Team": ["business_unit"], "Environment": ["env"]}


@pytest.fixture(scope="module")
def sample_report():
    return build_report([SAMPLE], aliases=ALIASES)


def test_totals_per_tag_equal_an_independent_sum_exactly(sample_report):
    for breakdown in sample_report.by_key:
        expected = costs_by(breakdown.key, ALIASES.get(breakdown.key, ()))
        assert {line.value: line.cost for line in breakdown.lines} == expected, breakdown.key
    billed = costs_by("Project", ["application"], column="BilledCost")
    project = next(b for b in sample_report.by_key if b.key == "Project")
    assert {line.value: line.billed for line in project.lines} == billed
    assert sample_report.total.cost == sum(costs_by("Project").values())
    assert sample_report.row_count == 1000
    # the sample's Project values come from both `Project` and the alias `application`
    assert project.matched_keys == ["Project", "application"]
    assert next(b for b in sample_report.by_key if b.key == "Environment").matched_keys == [
        "environment",
        "env",
    ]


def test_untagged_share_is_exact(sample_report):
    for breakdown in sample_report.by_key:
        positive = costs_by(breakdown.key, ALIASES.get(breakdown.key, ()), positive_only=True)
        expected = positive.get(UNTAGGED, Decimal(0)) / sum(positive.values())
        assert breakdown.untagged_share == expected, breakdown.key
    assert next(b for b in sample_report.by_key if b.key == "ModelVersion").untagged_share == 1


def test_effective_and_billed_per_service_day_and_month(sample_report):
    for column, attribute in (("EffectiveCost", "effective"), ("BilledCost", "billed")):
        expected = costs_by_column("ServiceName", column)
        assert {
            line.value: getattr(line, attribute) for line in sample_report.by_service
        } == expected
    by_day: dict[str, Decimal] = {}
    for row in rows():
        day = row["ChargePeriodStart"][:10]
        by_day[day] = by_day.get(day, Decimal(0)) + Decimal(row["EffectiveCost"])
    assert {line.value: line.cost for line in sample_report.by_day} == by_day
    assert [(m.value, m.cost) for m in sample_report.by_month] == [
        ("2024-09", sum(by_day.values()))
    ]
    # amortised and billed differ in the sample (commitments, credits): both are reported
    assert sample_report.total.billed != sample_report.total.effective


def _write_with_bad_rows(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    """The sample with rows made malformed in place, a quoted field spanning two lines
    before them, and the physical line number of each bad row."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    header = lines[0].strip().split(",")
    cost = header.index('"EffectiveCost"')

    def replace_field(line: str, index: int, value: str) -> str:
        import csv
        import io

        fields = next(csv.reader(io.StringIO(line)))
        fields[index] = value
        out = io.StringIO()
        csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerow(fields)
        return out.getvalue()

    description = header.index('"ChargeDescription"')
    lines[5] = replace_field(lines[5], description, "spans\ntwo lines")  # data row, line 6-7
    bad = {
        11: ("EffectiveCost", "twelve"),
        21: ("ChargePeriodStart", "yesterday"),
        31: ("Tags", "{not json"),
        41: ("EffectiveCost", ""),
    }
    expected: dict[int, str] = {}
    for index, (column, value) in bad.items():
        position = header.index(f'"{column}"')
        lines[index] = replace_field(lines[index], position, value)
        expected[index + 2] = column  # +1: 1-based, +1: the two-line field above
    lines[51] = lines[51].rstrip("\n") + ",extra\n"
    expected[53] = "too many columns"
    assert cost >= 0
    path = tmp_path / "focus_bad.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path, expected


def test_malformed_rows_are_reported_with_their_line_and_nothing_else_is_dropped(tmp_path):
    path, expected = _write_with_bad_rows(tmp_path)
    report = build_report([path], aliases=ALIASES)
    assert report.malformed_count == 5
    found = {m.line: m.problem for m in report.malformed}
    assert sorted(found) == sorted(expected)
    for line, column in expected.items():
        assert found[line].startswith(column), (line, found[line])
    assert "twelve is not a number" in found[13]
    # every other row is counted, exactly once
    bad_lines = set(expected)
    good = Decimal(0)
    import csv

    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        line = reader.line_num + 1
        for record in reader:
            if line not in bad_lines:
                good += Decimal(record[header.index("EffectiveCost")])
            line = reader.line_num + 1
    assert report.row_count == 995
    assert report.total.cost == good


def test_parquet_export_gives_the_same_figures_and_row_numbers(tmp_path):
    import duckdb

    parquet = tmp_path / "focus.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * REPLACE (CASE WHEN Id = 11472 THEN NULL ELSE EffectiveCost END AS "
        f"EffectiveCost) FROM read_csv('{SAMPLE}', header=true, nullstr='NULL', sample_size=-1)) "
        f"TO '{parquet}' (FORMAT parquet)"
    )
    con.close()
    report = build_report([parquet], aliases=ALIASES)
    assert [(m.line, m.problem) for m in report.malformed] == [(1, "EffectiveCost is empty")]
    expected = costs_by("Project", ["application"])
    first = next(rows())
    expected[value_of(tags_of(first), "Project", ["application"]) or UNTAGGED] -= Decimal(
        first["EffectiveCost"]
    )
    project = next(b for b in report.by_key if b.key == "Project")
    assert {line.value: line.cost for line in project.lines} == expected


def test_keys_match_across_clouds_and_aws_prefixes(tmp_path):
    path = tmp_path / "mini.csv"
    header = "ChargePeriodStart,ProviderName,ServiceName,Tags,EffectiveCost,BilledCost"
    lines = [
        '2026-10-01,AWS,EC2,"{""user:ModelVersion"": ""v1""}",10,10',
        '2026-10-01,Google Cloud,Compute,"{""model-version"": ""v1""}",5,5',
        '2026-10-01,Microsoft,VM,"{""modelversion"": "" v2 ""}",2,2',
        "2026-10-01,AWS,S3,NULL,1,1",
        '2026-10-02,AWS,EC2,"{""ModelVersion"": """"}",3,3',
        '2026-11-01,AWS,EC2,"{""ModelVersion"": ""v3""}",100,100',
    ]
    path.write_text("\n".join([header, *lines]) + "\n")
    report = build_report([path], keys=["ModelVersion"], month="2026-10")
    breakdown = report.by_key[0]
    assert {line.value: line.cost for line in breakdown.lines} == {
        "v1": 15,
        "v2": 2,
        UNTAGGED: 4,
    }
    assert breakdown.untagged_share == Decimal(4) / Decimal(21)
    assert report.total.cost == 21
    assert (report.first_day.isoformat(), report.last_day.isoformat()) == (
        "2026-10-01",
        "2026-10-31",
    )


def test_not_focus_and_mixed_currency_are_one_line_errors(tmp_path):
    path = tmp_path / "cur.csv"
    path.write_text("line_item_unblended_cost,resource_tags\n1,{}\n")
    with pytest.raises(ReportError, match=r"cur.csv: not a FOCUS 1.0 export: missing column\(s\)"):
        build_report([path])
    with pytest.raises(ReportError, match="billing export not found"):
        build_report([tmp_path / "nope.csv"])
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(
        "ChargePeriodStart,ProviderName,ServiceName,EffectiveCost,BilledCost,BillingCurrency\n"
        "2026-10-01,AWS,EC2,1,1,USD\n2026-10-01,Microsoft,VM,1,1,EUR\n"
    )
    with pytest.raises(ReportError, match="mixes currencies EUR, USD"):
        build_report([mixed])


def test_cli_json_and_bad_alias(capsys):
    code = main(
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
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["byTag"][0]["matchedKeys"] == ["Project", "application"]
    assert main(["report", str(SAMPLE), "--alias", "Project"]) == 2
    assert "expected KEY=name" in capsys.readouterr().err


def test_two_exports_add_up(tmp_path):
    copy = tmp_path / "copy.csv"
    shutil.copy(SAMPLE, copy)
    report = build_report([SAMPLE, copy], aliases=ALIASES)
    assert report.total.cost == 2 * sum(costs_by("Project").values())
    assert report.row_count == 2000


def test_a_line_that_is_not_utf8_is_one_malformed_row(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(
        b"ChargePeriodStart,ProviderName,ServiceName,Tags,EffectiveCost,BilledCost\n"
        b"2026-10-01,AWS,EC2,NULL,1,1\n"
        b"2026-10-02,AWS,E\xff\xfeC2,NULL,2,2\n"
        b"2026-10-03,AWS,EC2,NULL,x,3\n"
        b"2026-10-04,AWS,EC2,NULL,4,4\n"
    )
    report = build_report([path], keys=["Project"])
    assert [(m.line, m.problem.split(":")[0]) for m in report.malformed] == [
        (3, "invalid encoding"),
        (4, "EffectiveCost x is not a number"),
    ]
    assert report.total.cost == 5
