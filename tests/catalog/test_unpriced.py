"""Types the source lists without a price: known accelerators, never a made-up price."""

import pytest

from aifinops import catalog
from aifinops.errors import CatalogError


@pytest.mark.parametrize(
    ("name", "model", "count"),
    [
        ("p5e.48xlarge", "H200", 8),
        ("trn2.48xlarge", "Trainium2", 16),
        ("p6e-gb200.36xlarge", "GB200", 4),
        ("u-p6e-gb200x72", "GB200", 72),
    ],
)
def test_capacity_block_types_have_specs_and_no_price(name: str, model: str, count: int) -> None:
    chip, found = catalog.unpriced(name)  # type: ignore[misc]
    assert (chip.model, found) == (model, count)
    with pytest.raises(CatalogError):
        catalog.lookup(name)


def test_priced_types_are_not_listed_as_unpriced() -> None:
    assert catalog.unpriced("p5en.48xlarge") is None
    assert catalog.lookup("p6-b200.48xlarge").accelerator_count == 8
