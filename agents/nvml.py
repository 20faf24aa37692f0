"""The one module that talks to NVML (through `pynvml`, from the nvidia-ml-py package).

* Lazy: nothing is loaded until `NvmlSampler.start()`.
* A missing library or driver is `NvmlUnavailable` at start, a clear fatal error.
* A metric one GPU does not support is None in its samples (and is not asked again).
* A GPU that falls off the bus (`GpuIsLost`) is marked lost; the others keep reporting.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from agents.records import GpuSample

log = logging.getLogger("finops_agent.nvml")

# GPM metric ids (nvml.h); their DCGM counterparts are PROF_SM_ACTIVE and PROF_PIPE_TENSOR_ACTIVE
GPM_SM_UTIL = 2  # NVML_GPM_METRIC_SM_UTIL: percent of SMs busy
GPM_ANY_TENSOR_UTIL = 5  # NVML_GPM_METRIC_ANY_TENSOR_UTIL: percent of time tensor pipes busy

# NVML return codes (nvml.h), read from the module when it has them
ERROR_NOT_SUPPORTED = 3
ERROR_NO_PERMISSION = 4
ERROR_DRIVER_NOT_LOADED = 9
ERROR_TIMEOUT = 10
ERROR_LIBRARY_NOT_FOUND = 12
ERROR_FUNCTION_NOT_FOUND = 13
ERROR_GPU_IS_LOST = 15


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used on this host: the agent cannot start."""


@dataclass
class _Gpu:
    index: int
    handle: Any
    uuid: str
    name: str
    lost: bool = False
    unsupported: set[str] = field(default_factory=set)
    gpm_samples: list[Any] = field(default_factory=list)  # [previous, current] when GPM works
    gpm_primed: bool = False


class NvmlSampler:
    """Reads every GPU of the host; `sample()` returns one `GpuSample` per GPU."""

    def __init__(self, module_name: str = "pynvml") -> None:
        self._module_name = module_name
        self._nv: ModuleType | None = None
        self._gpus: list[_Gpu] = []
        self._events: Any = None
        self.driver_version = ""

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> list[tuple[int, str, str]]:
        """Load NVML and enumerate GPUs; returns [(index, uuid, name)]. Raises NvmlUnavailable."""
        try:
            nv = importlib.import_module(self._module_name)
        except ImportError as exc:
            raise NvmlUnavailable(
                "the NVML bindings are not installed (module 'pynvml'): "
                "pip install 'finops[agent]' (it brings nvidia-ml-py)"
            ) from exc
        try:
            nv.nvmlInit()
        except nv.NVMLError as exc:
            code = _code(exc)
            if code in (ERROR_LIBRARY_NOT_FOUND, ERROR_DRIVER_NOT_LOADED):
                raise NvmlUnavailable(
                    f"NVIDIA driver not usable ({exc}): install the NVIDIA driver "
                    "(libnvidia-ml.so.1) and check that `nvidia-smi` works on this host"
                ) from exc
            if code == ERROR_NO_PERMISSION:
                raise NvmlUnavailable(
                    f"no permission to use NVML ({exc}): the agent's user needs read access "
                    "to /dev/nvidiactl and /dev/nvidia*"
                ) from exc
            raise NvmlUnavailable(f"NVML failed to initialise: {exc}") from exc
        self._nv = nv
        self.driver_version = _text(_try(nv.nvmlSystemGetDriverVersion)) or ""
        count = nv.nvmlDeviceGetCount()
        if count == 0:
            raise NvmlUnavailable("NVML found no GPU on this host: nothing to monitor")
        for index in range(count):
            self._gpus.append(self._open_gpu(nv, index))
        self._start_xid_events()
        log.info(
            "nvml started",
            extra={"gpus": count, "driver": self.driver_version, "gpm": self.gpm_gpus()},
        )
        return [(g.index, g.uuid, g.name) for g in self._gpus]

    def _open_gpu(self, nv: Any, index: int) -> _Gpu:
        try:
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            gpu = _Gpu(
                index=index,
                handle=handle,
                uuid=_text(nv.nvmlDeviceGetUUID(handle)),
                name=_text(nv.nvmlDeviceGetName(handle)),
            )
        except nv.NVMLError as exc:
            if _code(exc) != ERROR_GPU_IS_LOST:
                raise NvmlUnavailable(f"NVML cannot open GPU {index}: {exc}") from exc
            log.error("gpu lost at start", extra={"gpu": index})
            return _Gpu(index=index, handle=None, uuid=f"lost-{index}", name="", lost=True)
        try:
            self._start_gpm(gpu)
        except _Lost:
            gpu.lost = True
        return gpu

    def shutdown(self) -> None:
        nv = self._nv
        if nv is None:
            return
        for gpu in self._gpus:
            for sample in gpu.gpm_samples:
                _try(nv.nvmlGpmSampleFree, sample)
        if self._events is not None:
            _try(nv.nvmlEventSetFree, self._events)
        _try(nv.nvmlShutdown)
        self._nv = None

    def gpm_gpus(self) -> list[int]:
        """Indexes of the GPUs that report GPM activity metrics (Hopper and newer)."""
        return [g.index for g in self._gpus if g.gpm_samples]

    # -- sampling --------------------------------------------------------------------------
    def sample(self, now: float | None = None) -> list[GpuSample]:
        """One reading of every GPU (a lost GPU yields a `lost=True` sample)."""
        nv = self._nv
        if nv is None:
            raise RuntimeError("NvmlSampler.sample() before start()")
        now = time.time() if now is None else now
        xids = self._drain_xid_events()
        return [
            self._sample_gpu(nv, gpu, now, tuple(xids.get(gpu.index, ()))) for gpu in self._gpus
        ]

    def _sample_gpu(self, nv: Any, gpu: _Gpu, now: float, xids: tuple[int, ...]) -> GpuSample:
        if gpu.lost:
            return GpuSample(now, gpu.index, gpu.uuid, gpu.name, lost=True, xid_events=xids)
        try:
            return self._read(nv, gpu, now, xids)
        except _Lost:
            gpu.lost = True
            log.error("gpu lost", extra={"gpu": gpu.index, "uuid": gpu.uuid})
            return GpuSample(now, gpu.index, gpu.uuid, gpu.name, lost=True, xid_events=xids)

    def _read(self, nv: Any, gpu: _Gpu, now: float, xids: tuple[int, ...]) -> GpuSample:
        h = gpu.handle
        util = self._get(gpu, "utilization", nv.nvmlDeviceGetUtilizationRates, h)
        mem = self._get(gpu, "memory", nv.nvmlDeviceGetMemoryInfo, h)
        power_mw = self._get(gpu, "power", nv.nvmlDeviceGetPowerUsage, h)
        temp = self._get(gpu, "temperature", nv.nvmlDeviceGetTemperature, h, 0)
        clock = self._get(gpu, "sm_clock", nv.nvmlDeviceGetClockInfo, h, 1)  # NVML_CLOCK_SM
        procs = self._get(gpu, "processes", nv.nvmlDeviceGetComputeRunningProcesses, h)
        ecc_c = self._get(gpu, "ecc", nv.nvmlDeviceGetTotalEccErrors, h, 0, 0)
        ecc_u = self._get(gpu, "ecc", nv.nvmlDeviceGetTotalEccErrors, h, 1, 0)
        sm_active, tensor_active = self._read_gpm(nv, gpu)
        proc_memory = tuple(
            (int(p.pid), int(p.usedGpuMemory or 0)) for p in (procs if procs is not None else ())
        )
        return GpuSample(
            timestamp=now,
            gpu_index=gpu.index,
            gpu_uuid=gpu.uuid,
            gpu_name=gpu.name,
            gpu_util_percent=None if util is None else float(util.gpu),
            mem_util_percent=None if util is None else float(util.memory),
            memory_used_bytes=None if mem is None else int(mem.used),
            memory_total_bytes=None if mem is None else int(mem.total),
            power_watts=None if power_mw is None else power_mw / 1000.0,
            temperature_celsius=None if temp is None else float(temp),
            sm_clock_mhz=None if clock is None else float(clock),
            sm_active_ratio=sm_active,
            tensor_active_ratio=tensor_active,
            process_count=None if procs is None else len(procs),
            process_memory_bytes=proc_memory,
            ecc_corrected_volatile=ecc_c,
            ecc_uncorrected_volatile=ecc_u,
            xid_events=xids,
        )

    def _get(self, gpu: _Gpu, metric: str, fn: Any, *args: Any) -> Any:
        """Call one NVML getter; None when the GPU cannot report it."""
        if metric in gpu.unsupported:
            return None
        nv = self._nv
        assert nv is not None
        try:
            return fn(*args)
        except nv.NVMLError as exc:
            code = _code(exc)
            if code == ERROR_GPU_IS_LOST:
                raise _Lost from exc
            if code in (ERROR_NOT_SUPPORTED, ERROR_NO_PERMISSION, ERROR_FUNCTION_NOT_FOUND):
                gpu.unsupported.add(metric)
                log.info(
                    "metric not supported",
                    extra={"gpu": gpu.index, "metric": metric, "error": str(exc)},
                )
            else:
                log.warning(
                    "metric read failed",
                    extra={"gpu": gpu.index, "metric": metric, "error": str(exc)},
                )
            return None

    # -- GPM (Hopper+) ---------------------------------------------------------------------
    def _start_gpm(self, gpu: _Gpu) -> None:
        nv = self._nv
        assert nv is not None
        if not hasattr(nv, "nvmlGpmQueryDeviceSupport"):
            return
        support = self._get(gpu, "gpm", nv.nvmlGpmQueryDeviceSupport, gpu.handle)
        if support is None or not support.isSupportedDevice:
            return
        first = self._get(gpu, "gpm", nv.nvmlGpmSampleAlloc)
        second = self._get(gpu, "gpm", nv.nvmlGpmSampleAlloc)
        if first is None or second is None:
            return
        gpu.gpm_samples = [first, second]

    def _read_gpm(self, nv: Any, gpu: _Gpu) -> tuple[float | None, float | None]:
        if not gpu.gpm_samples or "gpm" in gpu.unsupported:
            return None, None
        previous, current = gpu.gpm_samples
        if self._get(gpu, "gpm", nv.nvmlGpmSampleGet, gpu.handle, current) is None:
            return None, None
        gpu.gpm_samples = [current, previous]  # next tick reuses the older buffer
        if not gpu.gpm_primed:  # a rate needs two samples
            gpu.gpm_primed = True
            return None, None
        request = nv.c_nvmlGpmMetricsGet_t()
        request.version = nv.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = 2
        request.sample1 = previous
        request.sample2 = current
        request.metrics[0].metricId = GPM_SM_UTIL
        request.metrics[1].metricId = GPM_ANY_TENSOR_UTIL
        result = self._get(gpu, "gpm", nv.nvmlGpmMetricsGet, request)
        if result is None:
            return None, None
        return _gpm_ratio(result.metrics[0]), _gpm_ratio(result.metrics[1])

    # -- XID events ------------------------------------------------------------------------
    def _start_xid_events(self) -> None:
        nv = self._nv
        assert nv is not None
        try:
            events = nv.nvmlEventSetCreate()
        except nv.NVMLError:
            return
        registered = 0
        for gpu in self._gpus:
            try:
                nv.nvmlDeviceRegisterEvents(gpu.handle, nv.nvmlEventTypeXidCriticalError, events)
                registered += 1
            except nv.NVMLError as exc:
                log.info("xid events not supported", extra={"gpu": gpu.index, "error": str(exc)})
        if registered:
            self._events = events
        else:
            _try(nv.nvmlEventSetFree, events)

    def _drain_xid_events(self) -> dict[int, list[int]]:
        nv = self._nv
        if self._events is None or nv is None:
            return {}
        seen: dict[int, list[int]] = {}
        for _ in range(64):  # bounded: a storm of events must not stall sampling
            try:
                data = nv.nvmlEventSetWait_v2(self._events, 0)
            except nv.NVMLError:
                break  # NVML_ERROR_TIMEOUT: no event pending
            index = _try(nv.nvmlDeviceGetIndex, data.device)
            if index is not None:
                seen.setdefault(int(index), []).append(int(data.eventData))
        return seen


class _Lost(Exception):
    pass


def _gpm_ratio(metric: Any) -> float | None:
    if getattr(metric, "nvmlReturn", 0) != 0:
        return None
    value = float(metric.value)
    return min(max(value / 100.0, 0.0), 1.0)


def _code(exc: BaseException) -> int:
    return int(getattr(exc, "value", -1))


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None
