"""The HTML report opened in Debian's headless Chromium, over the DevTools protocol: no
console error, no request beyond the file itself, every chart drawn (its marks present and
its screenshot area not blank).

Skipped with the reason when chromium is absent (./dev setup installs it).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from aifinops.reporting import build_report
from aifinops.reporting.anomalies import AnomalySettings
from aifinops.reporting.chargeback import parse_rule
from aifinops.reporting.html import to_html
from scripts.chromium_cdp import chromium_binary, visit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from focus_synth import write_focus, write_gpu_demo

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        chromium_binary() is None,
        reason="chromium not installed (./dev setup: apt-get install chromium)",
    ),
]
CHARTS = {"trend", "untagged", "movers", "anomaly", "idle-gpu"}


@pytest.fixture(scope="module")
def demo_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    write_focus(folder / "billing.parquet", rows=20_000)
    write_gpu_demo(folder / "gpu.csv", folder / "windows.jsonl")
    report = build_report(
        [folder / "billing.parquet", folder / "gpu.csv"],
        chargeback=parse_rule("proportional", "Team", ["platform"]),
        anomalies=AnomalySettings(),
        agent_windows=[folder / "windows.jsonl"],
    )
    page = folder / "report.html"
    page.write_text(to_html(report), encoding="utf-8")
    return page


def non_blank_share(png: bytes, box: dict[str, float]) -> tuple[float, int]:
    """Share of a box's pixels that are not the white background, and its colour count."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    crop = image.crop(
        (int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"]))
    )
    pixels = list(crop.getdata())
    inked = sum(1 for r, g, b in pixels if min(r, g, b) < 235)
    return inked / max(len(pixels), 1), len(set(pixels))


def test_report_opens_offline_without_errors_and_draws_every_chart(demo_html: Path) -> None:
    seen = visit(demo_html)
    assert seen.errors == []
    assert seen.requests == [demo_html.resolve().as_uri()]
    names = {box["name"] for box in seen.boxes}
    assert names == CHARTS
    for box in seen.boxes:
        assert box["width"] > 100 and box["height"] > 50, box
        assert box["marks"] >= 2, box
        inked, colours = non_blank_share(seen.screenshot_png, box)
        assert inked > 0.02, (box["name"], inked)
        assert colours >= 3, (box["name"], colours)
    text = demo_html.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text and "<script" not in text


def test_the_harness_sees_errors_and_requests(demo_html: Path, tmp_path: Path) -> None:
    """A page that fetches an image and runs a script: the CSP refuses both, loudly."""
    page = tmp_path / "broken.html"
    page.write_text(
        demo_html.read_text().replace(
            "<body>", '<body><img src="https://example.invalid/x.png"><script>oops()</script>', 1
        )
    )
    seen = visit(page)
    assert any("Content Security Policy" in e for e in seen.errors), seen.errors


def test_the_real_sample_renders_too(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[1] / "fixtures" / "focus" / "focus_1.0_sample.csv"
    report = build_report(
        [sample],
        aliases={"Project": ["application"], "Team": ["business_unit"]},
        cost_column="BilledCost",
        anomalies=AnomalySettings(min_usd=0.05),
    )
    page = tmp_path / "sample.html"
    page.write_text(to_html(report), encoding="utf-8")
    seen = visit(page)
    assert seen.errors == []
    assert {"trend", "untagged", "movers"} <= {box["name"] for box in seen.boxes}
