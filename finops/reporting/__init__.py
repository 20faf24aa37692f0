"""FinOps reporting and governance over FOCUS 1.0 billing exports.

- `focus`: reads exports (CSV, CSV.gz, Parquet) in place with DuckDB, row by row checked;
- `queries`: the report's SQL, once, transpiled to Spark SQL, Athena (Trino) and BigQuery;
- `report`: showback by tag, service, day and month, top movers, and what follows;
- `chargeback`: shared and untagged cost on owners, to the cent;
- `anomalies`: per project and service, against a same-weekday baseline;
- `idle_gpu`: the agent's windows joined to billing lines: what idle GPUs cost;
- `markdown`, `html`: renderings (the HTML is one self-contained file with SVG charts);
- `gate`: a deploy gate for training pipelines (gain per dollar).

Tag keys are the tag schema's (`aifinops.tags`): a canonical key matches its spellings on
every cloud and the aliases given (`--alias Project=application`).
"""

from aifinops.reporting.focus import COST_COLUMNS, Malformed, ReportError
from aifinops.reporting.queries import UNTAGGED
from aifinops.reporting.report import DEFAULT_KEYS, KeyBreakdown, Line, Report, build_report

__all__ = [
    "COST_COLUMNS",
    "DEFAULT_KEYS",
    "UNTAGGED",
    "KeyBreakdown",
    "Line",
    "Malformed",
    "Report",
    "ReportError",
    "build_report",
]
