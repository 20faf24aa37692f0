"""A stand-in for nvidia-ml-py's `pynvml` module, with scenarios, for hosts without a GPU.

Only the functions and constants agents/nvml.py uses exist, with the real signatures and
error codes. Pick a scenario in-process with `configure(...)`, or for a subprocess put this
directory first on PYTHONPATH and set FINOPS_FAKE_NVML (scenario) and optionally
FINOPS_FAKE_NVML_LOSE_AFTER (samples before GPU 5 is lost) / FINOPS_FAKE_NVML_GPUS.

Scenarios:
  healthy8      8x H100: GPU i runs one process at 10*i+5 % utilisation; GPU 7 is idle
                (no process, 0 %). GPM supported (SM activity = 0.8*util, tensor = 0.5*util).
  not_supported as healthy8, but GPU 3 is an older part: power, ECC and GPM raise NotSupported
  lost_mid_run  as healthy8, but GPU 5 raises GpuIsLost from its LOSE_AFTER-th reading on
  xid           as healthy8, and GPU 2 reports XID 79 on its 2nd reading
  no_driver     nvmlInit raises NVML_ERROR_DRIVER_NOT_LOADED
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_GPM_METRICS_GET_VERSION = 1
NVML_GPM_METRIC_SM_UTIL = 2
NVML_GPM_METRIC_ANY_TENSOR_UTIL = 5
nvmlEventTypeXidCriticalError = 0x8

_MESSAGES = {
    3: "Not Supported",
    4: "Insufficient Permissions",
    9: "Driver Not Loaded",
    10: "Timeout",
    12: "NVML Shared Library Not Found",
    15: "GPU is lost",
}


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"Unknown Error {self.value}")


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


class NVMLError_GpuIsLost(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_GPU_IS_LOST)


@dataclass
class _State:
    scenario: str = "healthy8"
    gpus: int = 8
    lose_after: int = 3
    initialised: bool = False


STATE = _State()
CALLS: dict[str, int] = {}
_reads: dict[int, int] = {}
_pending_xids: list[tuple[int, int]] = []
_lost: set[int] = set()


def configure(scenario: str = "healthy8", *, gpus: int = 8, lose_after: int = 3) -> None:
    """Reset the fake to a scenario (in-process tests)."""
    STATE.scenario, STATE.gpus, STATE.lose_after = scenario, gpus, lose_after
    STATE.initialised = False
    CALLS.clear()
    _reads.clear()
    _pending_xids.clear()
    _lost.clear()


configure(
    os.environ.get("FINOPS_FAKE_NVML", "healthy8"),
    gpus=int(os.environ.get("FINOPS_FAKE_NVML_GPUS", "8")),
    lose_after=int(os.environ.get("FINOPS_FAKE_NVML_LOSE_AFTER", "3")),
)


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


@dataclass(frozen=True)
class _Handle:
    index: int


def _older_part(index: int) -> bool:
    return STATE.scenario == "not_supported" and index == 3


def _check(handle: _Handle) -> None:
    if not STATE.initialised:
        raise NVMLError(1)
    if handle.index in _lost:
        raise NVMLError_GpuIsLost()


def util_percent(index: int) -> float:
    return 0.0 if index == 7 else float(10 * index + 5)


# -- init -------------------------------------------------------------------------------------
def nvmlInit() -> None:
    _count("nvmlInit")
    if STATE.scenario == "no_driver":
        raise NVMLError(NVML_ERROR_DRIVER_NOT_LOADED)
    STATE.initialised = True


def nvmlShutdown() -> None:
    STATE.initialised = False


def nvmlSystemGetDriverVersion() -> str:
    return "550.54.15"


def nvmlDeviceGetCount() -> int:
    return STATE.gpus


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    if not 0 <= index < STATE.gpus:
        raise NVMLError(2)
    return _Handle(index)


def nvmlDeviceGetIndex(handle: _Handle) -> int:
    return handle.index


def nvmlDeviceGetUUID(handle: _Handle) -> str:
    return f"GPU-00000000-0000-0000-0000-{handle.index:012d}"


def nvmlDeviceGetName(handle: _Handle) -> str:
    return "Tesla T4" if _older_part(handle.index) else "NVIDIA H100 80GB HBM3"


# -- readings ---------------------------------------------------------------------------------
@dataclass
class _Util:
    gpu: int
    memory: int


@dataclass
class _Memory:
    total: int
    free: int
    used: int


@dataclass
class _Process:
    pid: int
    usedGpuMemory: int | None


TOTAL_BYTES = 85520809984  # 81559 MiB, an H100 80GB


def used_bytes(index: int) -> int:
    return 0 if index == 7 else (index + 1) * 2**30


def nvmlDeviceGetUtilizationRates(handle: _Handle) -> _Util:
    _count("nvmlDeviceGetUtilizationRates")
    lost_now = STATE.scenario == "lost_mid_run" and handle.index == 5
    if lost_now and _reads.get(5, 0) >= STATE.lose_after:
        _lost.add(5)  # falls off the bus on its LOSE_AFTER+1-th reading
    _check(handle)
    _reads[handle.index] = _reads.get(handle.index, 0) + 1
    if STATE.scenario == "xid" and handle.index == 2 and _reads[2] == 2:
        _pending_xids.append((2, 79))
    return _Util(gpu=int(util_percent(handle.index)), memory=2 * handle.index)


def nvmlDeviceGetMemoryInfo(handle: _Handle, version: Any = None) -> _Memory:
    _check(handle)
    used = used_bytes(handle.index)
    return _Memory(total=TOTAL_BYTES, free=TOTAL_BYTES - used, used=used)


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    _check(handle)
    if _older_part(handle.index):
        raise NVMLError_NotSupported()
    return (100 + 10 * handle.index) * 1000  # milliwatts


def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
    _check(handle)
    return 40 + handle.index


def nvmlDeviceGetClockInfo(handle: _Handle, clock_type: int) -> int:
    _check(handle)
    return 1980


def nvmlDeviceGetComputeRunningProcesses(handle: _Handle) -> list[_Process]:
    _check(handle)
    if handle.index == 7:
        return []
    return [_Process(pid=1000 + handle.index, usedGpuMemory=used_bytes(handle.index))]


def nvmlDeviceGetTotalEccErrors(handle: _Handle, error_type: int, counter_type: int) -> int:
    _check(handle)
    if _older_part(handle.index):
        raise NVMLError_NotSupported()
    return 0


# -- GPM ----------------------------------------------------------------------------------------
@dataclass
class _GpmSupport:
    version: int
    isSupportedDevice: int


class _GpmSample:
    def __init__(self) -> None:
        self.handle: _Handle | None = None


class _GpmMetric:
    def __init__(self) -> None:
        self.metricId = 0
        self.nvmlReturn = NVML_SUCCESS
        self.value = 0.0


class c_nvmlGpmMetricsGet_t:
    def __init__(self) -> None:
        self.version = 0
        self.numMetrics = 0
        self.sample1: _GpmSample | None = None
        self.sample2: _GpmSample | None = None
        self.metrics = [_GpmMetric() for _ in range(8)]


def nvmlGpmQueryDeviceSupport(handle: _Handle) -> _GpmSupport:
    _check(handle)
    return _GpmSupport(version=1, isSupportedDevice=0 if _older_part(handle.index) else 1)


def nvmlGpmSampleAlloc() -> _GpmSample:
    return _GpmSample()


def nvmlGpmSampleFree(sample: _GpmSample) -> None:
    return None


def nvmlGpmSampleGet(handle: _Handle, sample: _GpmSample) -> _GpmSample:
    _check(handle)
    if _older_part(handle.index):
        raise NVMLError_NotSupported()
    sample.handle = handle
    return sample


def nvmlGpmMetricsGet(request: c_nvmlGpmMetricsGet_t) -> c_nvmlGpmMetricsGet_t:
    assert request.version == NVML_GPM_METRICS_GET_VERSION
    assert request.sample1 is not None and request.sample2 is not None
    handle = request.sample2.handle
    assert handle is not None and request.sample1.handle == handle
    util = util_percent(handle.index)
    for metric in request.metrics[: request.numMetrics]:
        if metric.metricId == NVML_GPM_METRIC_SM_UTIL:
            metric.value = 0.8 * util
        elif metric.metricId == NVML_GPM_METRIC_ANY_TENSOR_UTIL:
            metric.value = 0.5 * util
        else:
            metric.nvmlReturn = NVML_ERROR_NOT_SUPPORTED
    return request


# -- events -------------------------------------------------------------------------------------
@dataclass
class _EventData:
    device: _Handle
    eventType: int
    eventData: int


class _EventSet:
    pass


def nvmlEventSetCreate() -> _EventSet:
    return _EventSet()


def nvmlDeviceRegisterEvents(handle: _Handle, event_types: int, event_set: _EventSet) -> None:
    if _older_part(handle.index):
        raise NVMLError_NotSupported()


def nvmlEventSetWait_v2(event_set: _EventSet, timeout_ms: int) -> _EventData:
    if not _pending_xids:
        raise NVMLError(NVML_ERROR_TIMEOUT)
    index, code = _pending_xids.pop(0)
    return _EventData(
        device=_Handle(index), eventType=nvmlEventTypeXidCriticalError, eventData=code
    )


def nvmlEventSetFree(event_set: _EventSet) -> None:
    return None
