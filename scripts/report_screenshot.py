"""Make docs/report.png: the HTML report of the synthetic demo billing, as headless
Chromium draws it (the same harness as tests/reporting/test_html_report.py).

    .venv/bin/python scripts/report_screenshot.py [--html out.html] [--height 1700]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from chromium_cdp import visit  # noqa: E402
from focus_synth import write_focus, write_gpu_demo  # noqa: E402

from aifinops.reporting import build_report  # noqa: E402
from aifinops.reporting.anomalies import AnomalySettings  # noqa: E402
from aifinops.reporting.chargeback import parse_rule  # noqa: E402
from aifinops.reporting.html import to_html  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--html", type=Path, help="also keep the HTML report here")
    parser.add_argument("--height", type=int, default=1700, help="pixels kept from the top")
    args = parser.parse_args()
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        write_focus(base / "billing.parquet", rows=200_000)
        write_gpu_demo(base / "gpu.csv", base / "windows.jsonl")
        report = build_report(
            [base / "billing.parquet", base / "gpu.csv"],
            chargeback=parse_rule("proportional", "Team", ["platform"]),
            anomalies=AnomalySettings(),
            agent_windows=[base / "windows.jsonl"],
        )
        page = args.html or base / "report.html"
        page.write_text(to_html(report, top=8), encoding="utf-8")
        seen = visit(page)
    if seen.errors:
        print("console errors:", *seen.errors, sep="\n  ")
        return 1
    full = Image.open(io.BytesIO(seen.screenshot_png))
    image = full.crop((0, 0, full.width, min(args.height, full.height)))
    image.save(args.out, optimize=True)
    print(f"wrote {args.out} ({image.width}x{image.height})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
