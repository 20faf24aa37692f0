"""`finops report` as a user runs it (a subprocess): --top, the untagged line, unknown
values as one-line errors with suggestions (issue 13), the anomaly exit code."""

from __future__ import annotations

import subprocess
import sys

from focus_oracle import SAMPLE

ALIASES = ["--alias", "Project=application", "--alias", "Team=business_unit"]


def finops(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aifinops", "report", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _table_rows(markdown: str, title_start: str) -> list[str]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {title_start}"))
    rows = []
    for line in lines[start + 4 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip())
    return rows


def test_markdown_honours_top_and_keeps_the_untagged_line():
    result = finops(
        str(SAMPLE), *ALIASES, "--format", "markdown", "--top", "3", "--cost", "BilledCost"
    )
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout, "Project:")
    # 3 named values, the rest folded, and the untagged line (not in the top 3) shown apart
    assert len(rows) == 5
    assert rows[3].startswith("... ") and rows[3].endswith(" more")
    assert rows[4] == "(untagged)"
    assert _table_rows(result.stdout, "By service")[-1].startswith("... ")


def test_table_output_keeps_the_untagged_line_beyond_top():
    result = finops(str(SAMPLE), *ALIASES, "--format", "table", "--top", "2", "--by", "Project")
    assert result.returncode == 0, result.stderr
    project = result.stdout.split("Project:")[1].split("By service")[0]
    assert "(untagged)" in project
    assert "more" in project


def test_unknown_month_is_an_error_with_the_months_covered():
    result = finops(str(SAMPLE), "--month", "Sept")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --month 'Sept': expected YYYY-MM, e.g. 2024-09 (the export covers 2024-09)"
    )
    result = finops(str(SAMPLE), "--month", "2024-10")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --month 2024-10: no charges in that month (the export covers 2024-09)"
    )
    assert "Traceback" not in result.stderr


def test_unknown_key_and_bad_options_are_one_line_errors():
    result = finops(str(SAMPLE), "--by", "Projct")
    assert result.returncode == 2
    assert "did you mean Project?" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = finops(str(SAMPLE), "--chargeback", "evn")
    assert result.returncode == 2
    assert "did you mean even?" in result.stderr
    result = finops(str(SAMPLE), "--top", "0")
    assert (result.returncode, result.stderr.strip()) == (2, "error: --top 0: must be 1 or more")


def test_fail_on_anomaly_exit_code(tmp_path):
    """A project doubling its EC2 spend on the last day, after five quiet weeks: exit 1."""
    header = "ChargePeriodStart,ProviderName,ServiceName,Tags,EffectiveCost,BilledCost"
    lines = [header]
    import datetime as dt

    first = dt.date(2026, 1, 1)
    for offset in range(36):
        day = first + dt.timedelta(days=offset)
        cost = 1000 if offset == 35 else 100
        lines.append(f'{day}T00:00:00Z,AWS,EC2,"{{""Project"": ""vision""}}",{cost},{cost}')
    path = tmp_path / "spike.csv"
    path.write_text("\n".join(lines) + "\n")
    quiet = finops(str(path), "--format", "json", "--month", "2026-01", "--fail-on-anomaly")
    assert quiet.returncode == 0, quiet.stderr
    result = finops(str(path), "--format", "markdown", "--fail-on-anomaly")
    assert result.returncode == 1
    assert "anomaly: 1 open on 2026-02-05 (vision/EC2)" in result.stderr
    assert "(open)" in result.stdout


def test_sql_for_other_engines_uses_the_exports_tag_keys():
    result = finops(
        str(SAMPLE), "--alias", "Project=application", "--by", "Project", "--sql", "spark"
    )
    assert result.returncode == 0, result.stderr
    assert "GET_JSON_OBJECT(tags, '$.application')" in result.stdout
    assert "CREATE TABLE daily AS" in result.stdout and "json_extract_string" not in result.stdout


def test_gzipped_csv_reads_like_the_csv(tmp_path):
    import gzip
    import json

    packed = tmp_path / "focus.csv.gz"
    packed.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    plain = json.loads(finops(str(SAMPLE), "--format", "json").stdout)
    zipped = json.loads(finops(str(packed), "--format", "json").stdout)
    assert zipped["total"] == plain["total"] and zipped["rows"] == plain["rows"] == 1000


def test_table_shows_tag_values_literally(tmp_path):
    """Tag values are data: `[/oops]` must neither style the table nor crash rich."""
    path = tmp_path / "odd.csv"
    path.write_text(
        "ChargePeriodStart,ProviderName,ServiceName,Tags,EffectiveCost,BilledCost\n"
        '2026-10-01,AWS,EC2,"{""Project"": ""[/oops]""}",3,3\n'
        '2026-10-01,AWS,EC2,"{""Project"": ""[bold]loud[/bold]""}",2,2\n'
    )
    result = finops(str(path), "--format", "table", "--by", "Project")
    assert result.returncode == 0, result.stderr
    assert "[/oops]" in result.stdout and "[bold]loud[/bold]" in result.stdout
    progress = finops(str(path), "--format", "json")
    assert "Traceback" not in progress.stderr
