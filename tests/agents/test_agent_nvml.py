"""NVML wrapper against the stubbed pynvml: the style guide's scenarios, XID, start-up faults,
older drivers, GPM permission, MIG and idle detection without process lists."""

from __future__ import annotations

import sys

import pytest

from aifinops.agents.nvml import NvmlSampler, NvmlUnavailable
from aifinops.agents.records import is_idle_sample


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
    with pytest.raises(
        NvmlUnavailable,
        match=r"install the agent from its bundle \(`finops agent-bundle`\), which brings nvidia-ml-py",
    ):
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


# -- start-up faults ---------------------------------------------------------------------------
def test_one_gpu_that_cannot_be_opened_does_not_stop_the_others(fake_nvml) -> None:
    fake_nvml("healthy8", broken=(4,))
    sampler = NvmlSampler()
    gpus = sampler.start()  # NVML_ERROR_UNKNOWN on GPU 4's handle: the agent starts anyway
    assert [g[0] for g in gpus] == list(range(8))
    assert sampler.failed_gpus() == {4: "Unknown Error"}
    samples = sampler.sample()
    assert samples[4].lost and samples[4].gpu_util_percent is None
    assert all(not s.lost and s.gpu_util_percent is not None for s in samples if s.gpu_index != 4)


def test_a_host_where_no_gpu_opens_is_a_clear_fatal_error(fake_nvml) -> None:
    fake_nvml("healthy8", gpus=2, broken=(0, 1))
    with pytest.raises(NvmlUnavailable, match=r"cannot open any GPU.*GPU 0: Unknown Error"):
        NvmlSampler().start()


def test_old_driver_falls_back_to_older_calls_and_a_library_mismatch_is_not_a_crash(
    fake_nvml,
) -> None:
    nv = fake_nvml("old_driver")
    sampler = NvmlSampler()
    sampler.start()
    samples = [sampler.sample() for _ in range(2)][-1]
    gpu2 = samples[2]
    assert gpu2.process_count == 1  # _v2, where the unversioned call raises the mismatch error
    assert gpu2.temperature_celsius == 42.0  # the deprecated call, the only one this driver has
    assert gpu2.memory_used_bytes == 3 * 2**30 + 512 * 2**20  # v1: reservation counted as used
    assert gpu2.memory_reserved_bytes is None
    assert gpu2.sm_active_ratio is None and sampler.gpm_gpus() == []
    assert "not in this driver" in dict(gpu2.unsupported)["gpm"]
    with pytest.raises(nv.NVMLLibraryMismatchError):  # what the old code called
        nv.nvmlDeviceGetComputeRunningProcesses(nv.nvmlDeviceGetHandleByIndex(0))


# -- readings as DCGM takes them ---------------------------------------------------------------
def test_memory_used_comes_from_v2_with_the_reservation_apart(fake_nvml) -> None:
    fake_nvml("healthy8")
    sampler = NvmlSampler()
    sampler.start()
    gpu2 = sampler.sample()[2]
    assert gpu2.memory_used_bytes == 3 * 2**30  # v1 would say 3.5 GiB
    assert gpu2.memory_reserved_bytes == 512 * 2**20
    assert gpu2.pci_bus_id == "00000000:1A:00.0"


def test_successors_of_deprecated_calls_are_used(fake_nvml) -> None:
    nv = fake_nvml("healthy8")
    sampler = NvmlSampler()
    sampler.start()
    sampler.sample()
    assert nv.CALLS["nvmlDeviceGetTemperatureV"] == 8
    assert "nvmlDeviceGetTemperature" not in nv.CALLS
    assert nv.CALLS["nvmlDeviceGetComputeRunningProcesses_v3"] == 8
    assert nv.CALLS["nvmlDeviceGetMemoryInfo_v2"] == 8 and "nvmlDeviceGetMemoryInfo" not in nv.CALLS


def test_gpm_is_reported_working_only_when_a_sample_was_really_read(fake_nvml) -> None:
    fake_nvml("gpm_unprivileged")  # support query and allocation succeed, reading needs root
    sampler = NvmlSampler()
    sampler.start()
    assert sampler.gpm_gpus() == []
    samples = [sampler.sample() for _ in range(3)][-1]
    assert all(s.sm_active_ratio is None for s in samples)
    assert "needs privileges" in dict(samples[0].unsupported)["gpm"]
    assert samples[0].gpu_util_percent == 5.0  # the rest is read as usual


def test_gpm_off_in_the_config_is_never_asked(fake_nvml) -> None:
    nv = fake_nvml("healthy8")
    sampler = NvmlSampler(gpm=False)
    sampler.start()
    sampler.sample()
    assert sampler.gpm_gpus() == [] and "nvmlGpmSampleGet" not in nv.CALLS


def test_mig_gpu_reports_per_instance_memory_and_why_utilisation_is_missing(fake_nvml) -> None:
    fake_nvml("mig")
    sampler = NvmlSampler()
    sampler.start()
    mig, plain = sampler.sample()[:2]
    assert mig.mig_enabled is True and plain.mig_enabled is False
    assert mig.gpu_util_percent is None
    assert "not supported under MIG" in dict(mig.unsupported)["utilization"]
    assert [
        (m.gpu_instance_id, m.memory_used_bytes, m.memory_total_bytes, m.process_count)
        for m in mig.mig_instances
    ] == [(1, 3 * 2**30, 20 * 2**30, 1), (2, 0, 20 * 2**30, 0)]
    assert mig.mig_instances[0].uuid.startswith("MIG-")
    # the MIG GPU's own process list needs root; its instances' lists do not
    assert mig.process_count == 1 and "processes" not in dict(mig.unsupported)
    assert plain.gpu_util_percent == 15.0 and plain.mig_instances == ()


def test_idle_detection_works_when_process_lists_need_privileges(fake_nvml) -> None:
    fake_nvml("procs_need_privileges")
    sampler = NvmlSampler()
    sampler.start()
    samples = [sampler.sample() for _ in range(2)][-1]
    assert all(s.process_count is None for s in samples)
    assert "needs privileges" in dict(samples[7].unsupported)["processes"]
    # GPU 7 holds no memory (no CUDA context) and is at 0 %: idle; GPU 2 holds 3 GiB: busy
    assert is_idle_sample(samples[7], 5.0) is True
    assert is_idle_sample(samples[2], 5.0) is False


def test_a_mig_gpu_with_no_process_in_any_instance_is_idle(fake_nvml) -> None:
    nv = fake_nvml("mig")
    sampler = NvmlSampler()
    sampler.start()
    assert is_idle_sample(sampler.sample()[0], 5.0) is False  # instance 1 runs a process
    real = nv._processes
    nv._processes = lambda handle: [] if handle.gpu_instance else real(handle)
    assert is_idle_sample(sampler.sample()[0], 5.0) is True  # no utilisation under MIG
