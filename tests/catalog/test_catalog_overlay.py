"""The refresh overlay: where it is found, how it merges, and how it fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aifinops import catalog
from aifinops.catalog.overlay import OVERLAY_ENV, OVERLAY_FORMAT, default_overlay_path, overlay_path
from aifinops.errors import CatalogError


def _write(path: Path, prices: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"format": OVERLAY_FORMAT, "prices": prices}), encoding="utf-8")
    return path


def _use(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    monkeypatch.setenv(OVERLAY_ENV, str(path))
    catalog.reload()


def test_overlay_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(OVERLAY_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert overlay_path() == default_overlay_path() == tmp_path / "finops" / "catalog-overlay.json"
    for off in ("", "none", "OFF"):
        monkeypatch.setenv(OVERLAY_ENV, off)
        assert overlay_path() is None
    monkeypatch.setenv(OVERLAY_ENV, str(tmp_path / "x.json"))
    assert overlay_path() == tmp_path / "x.json"


def test_tests_see_no_user_overlay() -> None:
    assert overlay_path() is None


def test_overlay_replaces_prices(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = catalog.lookup("g5.xlarge")
    _use(
        monkeypatch,
        _write(
            tmp_path / "o.json",
            [
                {
                    "cloud": "aws",
                    "service": "ec2",
                    "instance_type": "g5.xlarge",
                    "region": "us-east-1",
                    "on_demand_usd_per_hour": 2.0,
                    "spot_usd_per_hour": 0.5,
                },
            ],
        ),
    )
    after = catalog.lookup("g5.xlarge")
    assert (after.on_demand_usd_per_hour, after.spot_usd_per_hour) == (2.0, 0.5)
    assert after.spot_savings_percent == 75.0
    assert after.interruption_range == before.interruption_range
    assert catalog.lookup("g5.xlarge", "us-west-2") == catalog.lookup("g5.xlarge", "us-west-2")


def test_new_on_demand_moves_an_advisor_spot_price(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = catalog.lookup("g5.xlarge")
    assert before.spot_savings_percent is not None
    _use(
        monkeypatch,
        _write(
            tmp_path / "o.json",
            [
                {
                    "instance_type": "g5.xlarge",
                    "region": "us-east-1",
                    "on_demand_usd_per_hour": 2.0,
                    "spot_usd_per_hour": None,
                },
            ],
        ),
    )
    after = catalog.lookup("g5.xlarge")
    assert after.spot_usd_per_hour == pytest.approx(2.0 * (1 - before.spot_savings_percent / 100))


def test_overlay_adds_regions_of_known_types_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert "us-west-1" not in catalog.regions("g6e.xlarge")
    _use(
        monkeypatch,
        _write(
            tmp_path / "o.json",
            [
                {
                    "instance_type": "g6e.xlarge",
                    "region": "us-west-1",
                    "on_demand_usd_per_hour": 2.2,
                    "spot_usd_per_hour": 1.1,
                },
                {"instance_type": "zz9.mega", "region": "us-east-1", "on_demand_usd_per_hour": 1.0},
            ],
        ),
    )
    added = catalog.lookup("g6e.xlarge", "us-west-1")
    assert added.vcpus == catalog.lookup("g6e.xlarge").vcpus
    assert added.interruption_range is None
    with pytest.raises(CatalogError):
        catalog.lookup("zz9.mega")


def test_missing_overlay_is_no_overlay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    baseline = catalog.lookup("g5.xlarge")
    _use(monkeypatch, tmp_path / "absent.json")
    assert catalog.lookup("g5.xlarge") == baseline


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "other", "prices": []})])
def test_unreadable_overlay_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(content, encoding="utf-8")
    _use(monkeypatch, broken)
    with pytest.raises(CatalogError, match=str(broken)):
        catalog.lookup("g5.xlarge")
