"""A stand-in for nvidia-ml-py's `pynvml` module, with scenarios, for hosts without a GPU.

Only the functions and constants agents/nvml.py uses exist, with the real signatures,
return shapes (field names of the ctypes structs) and error codes;
tests/agents/test_fake_nvml_contract.py holds them to the installed nvidia-ml-py.
Pick a scenario in-process with `configure(...)`, or for a subprocess put this directory
first on PYTHONPATH and set FINOPS_FAKE_NVML (scenario) and optionally
FINOPS_FAKE_NVML_LOSE_AFTER (readings before GPU 5 is lost), FINOPS_FAKE_NVML_GPUS and
FINOPS_FAKE_NVML_BROKEN (comma-separated indexes whose handle cannot be opened).

Scenarios:
  healthy8      8x H100: GPU i runs one process at 10*i+5 % utilisation; GPU 7 is idle
                (no process, 0 %). GPM supported (SM activity = 0.8*util, tensor = 0.5*util).
                Memory v2: 512 MiB reserved by the driver, apart from `used`.
  not_supported as healthy8, but GPU 3 is an older part: power, ECC, GPM and MIG raise
                NotSupported
  lost_mid_run  as healthy8, but GPU 5 raises GpuIsLost from its LOSE_AFTER-th reading on
  xid           as healthy8, and GPU 2 reports XID 79 on its 2nd reading
  no_driver     nvmlInit raises NVML_ERROR_DRIVER_NOT_LOADED
  old_driver    as healthy8 on a driver older than the bindings: the versioned calls
                (memory v2, temperature V, processes v3, GPM) are FunctionNotFound and the
                unversioned process call raises NVMLLibraryMismatchError, as the real one does
  gpm_unprivileged  GPM reports support and allocates, but reading a sample needs root
  procs_need_privileges  process lists raise NoPermission on every GPU
  mig           GPU 0 in MIG mode with GPU instances 1 (one process, 20 GiB) and 2 (no
                process, 20 GiB): utilisation NotSupported and the GPU's own process list
                needs root, as on a real MIG GPU; the others as healthy8 with MIG off
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1
NVML_GPM_METRICS_GET_VERSION = 1
NVML_GPM_METRIC_SM_UTIL = 2
NVML_GPM_METRIC_ANY_TENSOR_UTIL = 5
nvmlEventTypeXidCriticalError = 0x8
nvmlTemperature_v1 = 0x100000C
nvmlMemory_v2 = 0x02000028

_MESSAGES = {
    1: "Uninitialized",
    2: "Invalid Argument",
    3: "Not Supported",
    4: "Insufficient Permissions",
    6: "Not Found",
    9: "Driver Not Loaded",
    10: "Timeout",
    12: "NVML Shared Library Not Found",
    13: "Function Not Found",
    15: "GPU is lost",
    999: "Unknown Error",
}


class NVMLLibraryMismatchError(Exception):
    """Not an NVMLError, as in the real module: the bindings expect a newer driver."""


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


class NVMLError_NoPermission(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NO_PERMISSION)


class NVMLError_NotFound(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_FOUND)


class NVMLError_FunctionNotFound(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_FUNCTION_NOT_FOUND)


class NVMLError_GpuIsLost(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_GPU_IS_LOST)


@dataclass
class _State:
    scenario: str = "healthy8"
    gpus: int = 8
    lose_after: int = 3
    broken: tuple[int, ...] = ()
    initialised: bool = False


STATE = _State()
CALLS: dict[str, int] = {}
_reads: dict[int, int] = {}
_pending_xids: list[tuple[int, int]] = []
_lost: set[int] = set()


def configure(
    scenario: str = "healthy8",
    *,
    gpus: int = 8,
    lose_after: int = 3,
    broken: tuple[int, ...] = (),
) -> None:
    """Reset the fake to a scenario (in-process tests)."""
    STATE.scenario, STATE.gpus, STATE.lose_after = scenario, gpus, lose_after
    STATE.broken = tuple(broken)
    STATE.initialised = False
    CALLS.clear()
    _reads.clear()
    _pending_xids.clear()
    _lost.clear()


configure(
    os.environ.get("FINOPS_FAKE_NVML", "healthy8"),
    gpus=int(os.environ.get("FINOPS_FAKE_NVML_GPUS", "8")),
    lose_after=int(os.environ.get("FINOPS_FAKE_NVML_LOSE_AFTER", "3")),
    broken=tuple(int(i) for i in os.environ.get("FINOPS_FAKE_NVML_BROKEN", "").split(",") if i),
)


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


@dataclass(frozen=True)
class _Handle:
    index: int
    gpu_instance: int = 0  # > 0: a MIG device handle (GPU instance id)


def _older_part(index: int) -> bool:
    return STATE.scenario == "not_supported" and index == 3


def _mig_gpu(handle: _Handle) -> bool:
    return STATE.scenario == "mig" and handle.index == 0 and handle.gpu_instance == 0


def _old_driver() -> bool:
    return STATE.scenario == "old_driver"


def _check(handle: _Handle) -> None:
    if not STATE.initialised:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
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
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    if index in STATE.broken:
        raise NVMLError(NVML_ERROR_UNKNOWN)
    return _Handle(index)


def nvmlDeviceGetIndex(handle: _Handle) -> int:
    return handle.index


def nvmlDeviceGetUUID(handle: _Handle) -> str:
    if handle.gpu_instance:
        return f"MIG-00000000-0000-0000-{handle.index:04d}-{handle.gpu_instance:012d}"
    return f"GPU-00000000-0000-0000-0000-{handle.index:012d}"


def nvmlDeviceGetName(handle: _Handle) -> str:
    return "Tesla T4" if _older_part(handle.index) else "NVIDIA H100 80GB HBM3"


@dataclass
class _PciInfo:  # c_nvmlPciInfo_t (the fields the agent reads)
    busId: bytes
    domain: int
    bus: int
    device: int


def nvmlDeviceGetPciInfo(handle: _Handle) -> _PciInfo:
    _check(handle)
    bus = 0x18 + handle.index
    return _PciInfo(busId=f"00000000:{bus:02X}:00.0".encode(), domain=0, bus=bus, device=0)


# -- readings ---------------------------------------------------------------------------------
@dataclass
class _Util:  # c_nvmlUtilization_t
    gpu: int
    memory: int


@dataclass
class _Memory:  # c_nvmlMemory_t
    total: int
    free: int
    used: int


@dataclass
class _MemoryV2:  # c_nvmlMemory_v2_t
    version: int
    total: int
    reserved: int
    free: int
    used: int


@dataclass
class _Process:  # c_nvmlProcessInfo_v3_t, as nvmlStructToFriendlyObject returns it
    pid: int
    usedGpuMemory: int | None
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


TOTAL_BYTES = 85520809984  # 81559 MiB, an H100 80GB
RESERVED_BYTES = 512 * 2**20  # the driver's reservation (memory v2)
MIG_INSTANCE_BYTES = 20 * 2**30


def used_bytes(index: int) -> int:
    return 0 if index == 7 else (index + 1) * 2**30


def nvmlDeviceGetUtilizationRates(handle: _Handle) -> _Util:
    _count("nvmlDeviceGetUtilizationRates")
    lost_now = STATE.scenario == "lost_mid_run" and handle.index == 5
    if lost_now and _reads.get(5, 0) >= STATE.lose_after:
        _lost.add(5)  # falls off the bus on its LOSE_AFTER+1-th reading
    _check(handle)
    if _mig_gpu(handle):
        raise NVMLError_NotSupported()
    _reads[handle.index] = _reads.get(handle.index, 0) + 1
    if STATE.scenario == "xid" and handle.index == 2 and _reads[2] == 2:
        _pending_xids.append((2, 79))
    return _Util(gpu=int(util_percent(handle.index)), memory=2 * handle.index)


def nvmlDeviceGetMemoryInfo(handle: _Handle, version: Any = None) -> _Memory | _MemoryV2:
    _check(handle)
    _count("nvmlDeviceGetMemoryInfo" + ("_v2" if version else ""))
    if handle.gpu_instance:
        total = MIG_INSTANCE_BYTES
        used = 3 * 2**30 if handle.gpu_instance == 1 else 0
    else:
        total, used = TOTAL_BYTES, used_bytes(handle.index)
    if not version:  # v1 counts the driver's reservation as used
        return _Memory(total=total, free=total - used - RESERVED_BYTES, used=used + RESERVED_BYTES)
    if _old_driver():
        raise NVMLError_FunctionNotFound()
    return _MemoryV2(
        version=version,
        total=total,
        reserved=RESERVED_BYTES,
        free=total - used - RESERVED_BYTES,
        used=used,
    )


def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
    _check(handle)
    if _older_part(handle.index):
        raise NVMLError_NotSupported()
    return (100 + 10 * handle.index) * 1000  # milliwatts


def nvmlDeviceGetTemperatureV(
    handle: _Handle, sensor: int, version: int = nvmlTemperature_v1
) -> int:
    _check(handle)
    _count("nvmlDeviceGetTemperatureV")
    if _old_driver():
        raise NVMLError_FunctionNotFound()
    return 40 + handle.index


def nvmlDeviceGetTemperature(handle: _Handle, sensor: int) -> int:
    _check(handle)
    _count("nvmlDeviceGetTemperature")
    return 40 + handle.index


def nvmlDeviceGetClockInfo(handle: _Handle, type: int) -> int:
    _check(handle)
    return 1980


def _processes(handle: _Handle) -> list[_Process]:
    _check(handle)
    if STATE.scenario == "procs_need_privileges" or _mig_gpu(handle):
        raise NVMLError_NoPermission()
    if handle.gpu_instance:
        if handle.gpu_instance == 2:
            return []
        return [_Process(pid=2000, usedGpuMemory=3 * 2**30, gpuInstanceId=1, computeInstanceId=0)]
    if handle.index == 7:
        return []
    return [_Process(pid=1000 + handle.index, usedGpuMemory=used_bytes(handle.index))]


def nvmlDeviceGetComputeRunningProcesses_v3(handle: _Handle) -> list[_Process]:
    _count("nvmlDeviceGetComputeRunningProcesses_v3")
    if _old_driver():
        _check(handle)
        raise NVMLError_FunctionNotFound()
    return _processes(handle)


def nvmlDeviceGetComputeRunningProcesses_v2(handle: _Handle) -> list[_Process]:
    _count("nvmlDeviceGetComputeRunningProcesses_v2")
    return _processes(handle)


def nvmlDeviceGetComputeRunningProcesses(handle: _Handle) -> list[_Process]:
    """As the real one: _v3 behind a wrapper that turns FunctionNotFound into a mismatch."""
    try:
        return nvmlDeviceGetComputeRunningProcesses_v3(handle)
    except NVMLError_FunctionNotFound:
        raise NVMLLibraryMismatchError(
            "Unversioned function called and the pyNVML version does not match the NVML lib "
            "version. Either use matching pyNVML and NVML lib versions or use a versioned "
            "function such as nvmlDeviceGetComputeRunningProcesses_v2"
        ) from None


def nvmlDeviceGetTotalEccErrors(handle: _Handle, errorType: int, counterType: int) -> int:
    _check(handle)
    if _older_part(handle.index):
        raise NVMLError_NotSupported()
    return 2 if errorType == NVML_MEMORY_ERROR_TYPE_CORRECTED else 0


# -- MIG ----------------------------------------------------------------------------------------
def nvmlDeviceGetMigMode(device: _Handle) -> list[int]:
    _check(device)
    if _older_part(device.index):
        raise NVMLError_NotSupported()
    enabled = NVML_DEVICE_MIG_ENABLE if _mig_gpu(device) else NVML_DEVICE_MIG_DISABLE
    return [enabled, enabled]


def nvmlDeviceGetMaxMigDeviceCount(device: _Handle) -> int:
    _check(device)
    return 7


def nvmlDeviceGetMigDeviceHandleByIndex(device: _Handle, index: int) -> _Handle:
    _check(device)
    if not _mig_gpu(device) or index >= 2:
        raise NVMLError_NotFound()
    return _Handle(device.index, gpu_instance=index + 1)


def nvmlDeviceGetGpuInstanceId(device: _Handle) -> int:
    _check(device)
    if not device.gpu_instance:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return device.gpu_instance


# -- GPM ----------------------------------------------------------------------------------------
@dataclass
class _GpmSupport:  # c_nvmlGpmSupport_t
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


def nvmlGpmQueryDeviceSupport(device: _Handle) -> _GpmSupport:
    _check(device)
    if _old_driver():
        raise NVMLError_FunctionNotFound()
    return _GpmSupport(version=1, isSupportedDevice=0 if _older_part(device.index) else 1)


def nvmlGpmSampleAlloc() -> _GpmSample:
    return _GpmSample()


def nvmlGpmSampleFree(gpmSample: _GpmSample) -> None:
    return None


def nvmlGpmSampleGet(device: _Handle, gpmSample: _GpmSample) -> _GpmSample:
    _check(device)
    _count("nvmlGpmSampleGet")
    if _older_part(device.index):
        raise NVMLError_NotSupported()
    if STATE.scenario == "gpm_unprivileged":
        raise NVMLError_NoPermission()
    gpmSample.handle = device
    return gpmSample


def nvmlGpmMetricsGet(metricsGet: c_nvmlGpmMetricsGet_t) -> c_nvmlGpmMetricsGet_t:
    assert metricsGet.version == NVML_GPM_METRICS_GET_VERSION
    assert metricsGet.sample1 is not None and metricsGet.sample2 is not None
    handle = metricsGet.sample2.handle
    assert handle is not None and metricsGet.sample1.handle == handle
    util = util_percent(handle.index)
    for metric in metricsGet.metrics[: metricsGet.numMetrics]:
        if metric.metricId == NVML_GPM_METRIC_SM_UTIL:
            metric.value = 0.8 * util
        elif metric.metricId == NVML_GPM_METRIC_ANY_TENSOR_UTIL:
            metric.value = 0.5 * util
        else:
            metric.nvmlReturn = NVML_ERROR_NOT_SUPPORTED
    return metricsGet


# -- events -------------------------------------------------------------------------------------
@dataclass
class _EventData:  # c_nvmlEventData_t
    device: _Handle
    eventType: int
    eventData: int
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


class _EventSet:
    pass


def nvmlEventSetCreate() -> _EventSet:
    return _EventSet()


def nvmlDeviceRegisterEvents(handle: _Handle, eventTypes: int, eventSet: _EventSet) -> None:
    if _older_part(handle.index):
        raise NVMLError_NotSupported()


def nvmlEventSetWait_v2(eventSet: _EventSet, timeoutms: int) -> _EventData:
    if not _pending_xids:
        raise NVMLError(NVML_ERROR_TIMEOUT)
    index, code = _pending_xids.pop(0)
    return _EventData(
        device=_Handle(index), eventType=nvmlEventTypeXidCriticalError, eventData=code
    )


def nvmlEventSetFree(eventSet: _EventSet) -> None:
    return None
