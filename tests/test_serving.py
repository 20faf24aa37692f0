"""aifinops.serving: serverless and scale-to-zero prices against hand-computed figures, the
cheapest option that fits the model, and the break-even traffic."""

from __future__ import annotations

import pytest

from aifinops import serving
from aifinops.catalog import serverless as prices
from aifinops.errors import CatalogError
from aifinops.serving import Endpoint, Traffic

LOW = Traffic(100_000, 800)  # 80,000 busy seconds a month


def test_sagemaker_serverless_by_hand() -> None:
    # 80,000 s x 3 GB x $0.00002/GB-s = $4.80; 6 GB = $9.60
    assert serving.sagemaker_serverless(3072, LOW, "us-east-1").monthly_usd == pytest.approx(4.80)
    assert serving.sagemaker_serverless(6144, LOW, "us-east-1").monthly_usd == pytest.approx(9.60)


def test_unpriced_region_and_provisioned_concurrency_are_errors_not_zero() -> None:
    with pytest.raises(CatalogError, match="priced in: us-east-1, us-west-2"):
        serving.sagemaker_serverless(3072, LOW, "eu-west-1")
    with pytest.raises(CatalogError, match="provisioned concurrency"):
        serving.sagemaker_serverless(3072, LOW, "us-east-1", provisioned_concurrency=1)
    with pytest.raises(CatalogError, match="gpu-second:L4"):
        serving.cloud_run(4, 16, LOW, "us-west1", gpu="L4")


def test_cloud_run_cpu_by_hand() -> None:
    # 80,000 s x (2 vCPU x 0.000024 + 4 GiB x 0.0000025) = $4.64; 0.1 M requests x $0.40 = $0.04
    quote = serving.cloud_run(2, 4, LOW, "us-central1")
    assert quote.monthly_usd == pytest.approx(4.68)
    # one minimum instance all month at the instance-based rates: 2,628,000 s x (2 x 0.000018 +
    # 4 x 0.000002) = $115.632 more
    warm = serving.cloud_run(2, 4, LOW, "us-central1", min_instances=1)
    assert warm.monthly_usd == pytest.approx(4.68 + 115.632)


def test_cloud_run_l4_is_billed_for_the_instance_lifetime() -> None:
    # 100 requests x (0.8 s + 900 s idle) = 90,080 s x (0.0001867 + 4 x 0.000018 + 16 x
    # 0.000002 = 0.0002907 $/s) = $26.186; zonal redundancy: 0.0002909 instead of 0.0001867
    few = Traffic(100, 800)
    assert serving.cloud_run(4, 16, few, "us-central1", gpu="L4").monthly_usd == pytest.approx(
        90_080 * 0.0002907
    )
    zonal = serving.cloud_run(4, 16, few, "us-central1", gpu="L4", zonal_redundancy=True)
    assert zonal.monthly_usd == pytest.approx(90_080 * (0.0002909 + 0.000072 + 0.000032))
    # busy enough never to scale in: the whole month, 2,628,000 s
    many = serving.cloud_run(4, 16, LOW, "us-central1", gpu="L4")
    assert many.monthly_usd == pytest.approx(2_628_000 * 0.0002907)


def test_scale_to_zero_and_provisioned_by_hand() -> None:
    # ml.g5.xlarge $1.408/h: always on 730 h = $1,027.84; 1,000 requests of 2 s from zero:
    # 1,000 x 902 s = 250.56 h = $352.78
    assert serving.provisioned("ml.g5.xlarge", "us-east-1").monthly_usd == pytest.approx(1027.84)
    zero = serving.scale_to_zero("ml.g5.xlarge", "us-east-1", Traffic(1000, 2000))
    assert zero.monthly_usd == pytest.approx(902_000 / 3600 * 1.408)


def test_cheapest_that_fits_and_the_break_even() -> None:
    endpoint = Endpoint("aws", "us-east-1", LOW, "provisioned", 3.0, "ml.inf2.xlarge")
    choice = serving.cheapest_option(serving.options(endpoint), LOW, 3.0)
    assert choice is not None
    assert (choice.cheapest.option, choice.cheapest.what) == (
        "serverless",
        "SageMaker serverless 3072 MB",
    )
    # serverless $0.000048 a request (0.8 s x 3 GB x 0.00002) reaches provisioned ml.inf2.xlarge
    # ($0.99 x 730 = $722.70) at 722.70 / 0.000048 = 15,056,250 requests a month
    assert choice.break_even_requests == pytest.approx(15_056_250, abs=2)
    assert choice.runner_up is not None and choice.runner_up.option == "provisioned"


def test_a_model_too_big_for_serverless_is_left_out_with_why() -> None:
    traffic = Traffic(1000, 2000)
    endpoint = Endpoint("aws", "us-east-1", traffic, "provisioned", 16.0, "ml.g5.xlarge")
    text = serving.advise(endpoint)
    assert text is not None
    assert text.startswith(
        "for 1,000 requests/month of 2000 ms, scale-to-zero (ml.g5.xlarge from zero) is the "
        "cheapest that fits 16 GiB: $352.78/month against $1,027.84 for provisioned now"
    )
    # 2,628,000 s / 902 s per request: above 2,914 requests the instance never scales in
    assert "it stays cheapest below 2,914 requests/month (break-even with provisioned)" in text
    assert "serverless (SageMaker serverless 6144 MB) has 6 GiB < 16 GiB the model needs" in text


def test_no_advice_when_the_current_option_is_the_cheapest() -> None:
    busy = Traffic(50_000_000, 800)
    endpoint = Endpoint("aws", "us-east-1", busy, "provisioned", 3.0, "ml.inf2.xlarge")
    assert serving.advise(endpoint) is None
    endpoint = Endpoint("aws", "us-east-1", LOW, "serverless", 3.0, None, memory_mb=3072)
    assert serving.advise(endpoint) is None


def test_price_data_names_its_units_and_regions() -> None:
    assert prices.regions(prices.SAGEMAKER_SERVERLESS) == ["us-east-1", "us-west-2"]
    assert prices.rate(prices.CLOUD_RUN, "us-central1", "million-requests") == 0.40
    assert prices.rate(prices.CLOUD_RUN, "us-east4", "gpu-second:L4", "instance") == 0.0001867
