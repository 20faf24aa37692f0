"""NVML wrapper against the stubbed pynvml: the four scenarios of the style guide, and XID."""

from __future__ import annotations

import sys

import pytest

from agents.nvml import NvmlSampler, NvmlUnavailable


def test_healthy_8_gpu_host_reports_every_metric(fake_nvml) -> None:
    fake_nvml("healthy8")
    sampler = NvmlSampler()
    gpus = sampler.start()
    assert [g[0] for g in gpus] == list(range(8))
    assert sampler.gpm_gpus() == list(range(8))
    first = sampler.sample(now=100.0)
    second = sampler.sample(now=101.0)
    assert all(s.tensor_active_ratio is None for s in first)  # GPM needs two samples
    gpu2 = second[2]
    assert gpu2.timestamp == 101.0
    assert gpu2.gpu_name == "NVIDIA H100 80GB HBM3"
    assert gpu2.gpu_util_percent == 25.0
    assert gpu2.mem_util_percent == 4.0
    assert gpu2.memory_used_bytes == 3 * 2**30
    assert gpu2.memory_total_bytes == 85520809984
    assert gpu2.power_watts == 120.0
    assert gpu2.temperature_celsius == 42.0
    assert gpu2.sm_clock_mhz == 1980.0
    assert gpu2.sm_active_ratio == pytest.approx(0.2)
    assert gpu2.tensor_active_ratio == pytest.approx(0.125)
    assert gpu2.process_count == 1
    assert gpu2.process_memory_bytes == ((1002, 3 * 2**30),)
    assert gpu2.ecc_uncorrected_volatile == 0
    assert second[7].process_count == 0 and second[7].gpu_util_percent == 0.0
    assert not any(s.lost for s in second)


def test_one_gpu_not_supported_is_missing_values_not_a_crash(fake_nvml) -> None:
    nv = fake_nvml("not_supported")
    sampler = NvmlSampler()
    sampler.start()
    assert 3 not in sampler.gpm_gpus()
    for _ in range(3):
        samples = sampler.sample()
    old = samples[3]
    assert old.gpu_name == "Tesla T4"
    assert old.power_watts is None
    assert old.ecc_corrected_volatile is None
    assert old.sm_active_ratio is None and old.tensor_active_ratio is None
    assert old.gpu_util_percent == 35.0  # what it does support is still read
    assert samples[4].power_watts == 140.0 and samples[4].sm_active_ratio is not None
    # an unsupported metric is asked once, then remembered
    assert "power" in sampler._gpus[3].unsupported
    before = nv.CALLS.get("nvmlDeviceGetUtilizationRates", 0)
    sampler.sample()
    assert nv.CALLS["nvmlDeviceGetUtilizationRates"] == before + 8


def test_gpu_lost_mid_run_is_marked_lost_and_others_keep_reporting(fake_nvml) -> None:
    nv = fake_nvml("lost_mid_run", lose_after=2)
    sampler = NvmlSampler()
    sampler.start()
    rounds = [sampler.sample() for _ in range(4)]
    assert [r[5].lost for r in rounds] == [False, False, True, True]
    lost = rounds[3][5]
    assert lost.gpu_util_percent is None and lost.memory_used_bytes is None
    assert lost.gpu_uuid.endswith("000000000005")
    assert all(not s.lost and s.gpu_util_percent is not None for s in rounds[3] if s.gpu_index != 5)
    # a lost GPU is not polled again
    reads = nv.CALLS["nvmlDeviceGetUtilizationRates"]
    sampler.sample()
    assert nv.CALLS["nvmlDeviceGetUtilizationRates"] == reads + 7


def test_no_driver_is_a_clear_fatal_error(fake_nvml) -> None:
    fake_nvml("no_driver")
    with pytest.raises(NvmlUnavailable, match=r"NVIDIA driver not usable.*nvidia-smi"):
        NvmlSampler().start()


def test_missing_bindings_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    with pytest.raises(NvmlUnavailable, match=r"pip install 'finops\[agent\]'"):
        NvmlSampler().start()


def test_xid_events_are_attributed_to_their_gpu(fake_nvml) -> None:
    fake_nvml("xid")
    sampler = NvmlSampler()
    sampler.start()
    rounds = [sampler.sample() for _ in range(4)]
    xids = [(r[2].xid_events, r[1].xid_events) for r in rounds]
    assert xids == [((), ()), ((), ()), ((79,), ()), ((), ())]


def test_sampling_before_start_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        NvmlSampler().sample()
