"""The one module that talks to NVML (through `pynvml`, from the nvidia-ml-py package).

* Lazy: nothing is loaded until `NvmlSampler.start()`.
* A missing library or driver, or a host where no GPU can be opened, is `NvmlUnavailable`
  at start, a clear fatal error. One GPU that cannot be opened is reported (marked lost,
  with its error) and the others are monitored.
* A metric one GPU does not support is None in its samples, with the reason in
  `GpuSample.unsupported`, and is not asked again.
* A GPU that falls off the bus (`GpuIsLost`) is marked lost; the others keep reporting.
* Readings as DCGM takes them: memory from `nvmlMemory_v2` (the driver's reservation apart,
  v1 counts it as used), the successor of each deprecated call with the old one as the
  fallback for older drivers, GPM only on GPUs where a sample was really read by this
  user, and MIG instances through their own device handles.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from aifinops.agents.records import GpuSample, MigInstance

log = logging.getLogger("finops_agent.nvml")

# GPM metric ids (nvml.h); their DCGM counterparts are PROF_SM_ACTIVE and PROF_PIPE_TENSOR_ACTIVE
GPM_SM_UTIL = 2  # NVML_GPM_METRIC_SM_UTIL: percent of SMs busy
GPM_ANY_TENSOR_UTIL = 5  # NVML_GPM_METRIC_ANY_TENSOR_UTIL: percent of time tensor pipes busy

# NVML constants (nvml.h), stable across driver versions
ERROR_NOT_SUPPORTED = 3
ERROR_NO_PERMISSION = 4
ERROR_DRIVER_NOT_LOADED = 9
ERROR_TIMEOUT = 10
ERROR_LIBRARY_NOT_FOUND = 12
ERROR_FUNCTION_NOT_FOUND = 13
ERROR_GPU_IS_LOST = 15
ERROR_ARGUMENT_VERSION_MISMATCH = 25
TEMPERATURE_GPU = 0  # NVML_TEMPERATURE_GPU
CLOCK_SM = 1  # NVML_CLOCK_SM
ECC_CORRECTED, ECC_UNCORRECTED, VOLATILE_ECC = 0, 1, 0
MIG_ENABLE = 1  # NVML_DEVICE_MIG_ENABLE
MIG_RESCAN_READINGS = 60  # MIG instances can be created and destroyed while the agent runs

# errors that mean "this call cannot work here" (as opposed to a passing failure)
_UNSUPPORTED = {
    ERROR_NOT_SUPPORTED: "not supported by this GPU",
    ERROR_NO_PERMISSION: "needs privileges this user does not have",
    ERROR_FUNCTION_NOT_FOUND: "not in this driver",
    ERROR_ARGUMENT_VERSION_MISMATCH: "not in this driver (struct version)",
}
UNSUPPORTED_UNDER_MIG = "not supported under MIG (NVML reports no utilisation for MIG GPUs)"

Call = tuple[Callable[..., Any] | None, tuple[Any, ...]]


class NvmlUnavailable(RuntimeError):
    """NVML cannot be used on this host: the agent cannot start."""


class _Lost(Exception):
    pass


@dataclass
class _Reader:
    """What one device handle (a GPU or a MIG instance) can and cannot report."""

    label: str  # for logs: "gpu 3" or "gpu 3 mig 1"
    unsupported: dict[str, str] = field(default_factory=dict)  # metric -> why
    variant: dict[str, int] = field(default_factory=dict)  # metric -> call that works


@dataclass
class _Mig(_Reader):
    gpu_instance_id: int = 0
    handle: Any = None
    uuid: str = ""


@dataclass
class _Gpu(_Reader):
    index: int = 0
    handle: Any = None
    uuid: str = ""
    name: str = ""
    pci_bus_id: str = ""
    lost: bool = False
    error: str = ""  # why the GPU could not be opened at start
    gpm_samples: list[Any] = field(default_factory=list)  # [previous, current] when GPM works
    gpm_primed: bool = False
    mig_enabled: bool | None = None
    migs: list[_Mig] = field(default_factory=list)
    readings: int = 0


class NvmlSampler:
    """Reads every GPU of the host; `sample()` returns one `GpuSample` per GPU.

    `gpm=False` skips GPM (SM and tensor activity) entirely; the config refuses GPM with a
    sample interval under `GPM_MIN_INTERVAL_SECONDS` (0.1 s).
    """

    def __init__(self, module_name: str = "pynvml", *, gpm: bool = True) -> None:
        self._module_name = module_name
        self._gpm = gpm
        self._nv: ModuleType | None = None
        self._errors: tuple[type[BaseException], ...] = ()
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
                "install the agent from its bundle (`finops agent-bundle`), which brings nvidia-ml-py"
            ) from exc
        # NVMLLibraryMismatchError (bindings newer than the driver) is not an NVMLError
        mismatch = getattr(nv, "NVMLLibraryMismatchError", None)
        self._errors = (nv.NVMLError, mismatch) if isinstance(mismatch, type) else (nv.NVMLError,)
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
        self.driver_version = _text(_try(nv.nvmlSystemGetDriverVersion))
        count = nv.nvmlDeviceGetCount()
        if count == 0:
            raise NvmlUnavailable("NVML found no GPU on this host: nothing to monitor")
        self._gpus = [self._open_gpu(nv, index) for index in range(count)]
        if all(g.error for g in self._gpus):
            errors = "; ".join(f"GPU {g.index}: {g.error}" for g in self._gpus)
            _try(nv.nvmlShutdown)
            self._nv = None
            raise NvmlUnavailable(f"NVML cannot open any GPU of this host ({errors})")
        self._start_xid_events()
        log.info(
            "nvml started",
            extra={
                "gpus": count,
                "driver": self.driver_version,
                "gpm": self.gpm_gpus(),
                "mig": [g.index for g in self._gpus if g.mig_enabled],
                "failed": self.failed_gpus(),
            },
        )
        return [(g.index, g.uuid, g.name) for g in self._gpus]

    def _open_gpu(self, nv: Any, index: int) -> _Gpu:
        try:
            handle = nv.nvmlDeviceGetHandleByIndex(index)
            uuid = _text(nv.nvmlDeviceGetUUID(handle))
            name = _text(nv.nvmlDeviceGetName(handle))
        except self._errors as exc:
            log.error(
                "gpu cannot be opened: monitoring the others",
                extra={"gpu": index, "error": str(exc)},
            )
            return _Gpu(
                label=f"gpu {index}", index=index, uuid=f"lost-{index}", lost=True, error=str(exc)
            )
        gpu = _Gpu(label=f"gpu {index}", index=index, handle=handle, uuid=uuid, name=name)
        try:
            pci = self._call(gpu, "pci", [(nv.nvmlDeviceGetPciInfo, (handle,))])
            gpu.pci_bus_id = _text(getattr(pci, "busId", "")) if pci is not None else ""
            self._open_mig(gpu)
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
        """Indexes of the GPUs whose GPM sample was really read (Hopper and newer, permitted)."""
        return [g.index for g in self._gpus if g.gpm_samples and "gpm" not in g.unsupported]

    def failed_gpus(self) -> dict[int, str]:
        """GPUs that could not be opened at start, with NVML's error."""
        return {g.index: g.error for g in self._gpus if g.error}

    def unsupported(self) -> dict[int, dict[str, str]]:
        """Per GPU, the metrics it cannot report and why."""
        return {g.index: dict(g.unsupported) for g in self._gpus}

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
        if not gpu.lost:
            try:
                return self._read(nv, gpu, now, xids)
            except _Lost:
                gpu.lost = True
                log.error("gpu lost", extra={"gpu": gpu.index, "uuid": gpu.uuid})
        return GpuSample(
            now,
            gpu.index,
            gpu.uuid,
            gpu.name,
            lost=True,
            xid_events=xids,
            pci_bus_id=gpu.pci_bus_id,
        )

    def _read(self, nv: Any, gpu: _Gpu, now: float, xids: tuple[int, ...]) -> GpuSample:
        h = gpu.handle
        gpu.readings += 1
        util = self._call(gpu, "utilization", [(nv.nvmlDeviceGetUtilizationRates, (h,))])
        used, total, reserved = self._memory(gpu, h)
        power_mw = self._call(gpu, "power", [(nv.nvmlDeviceGetPowerUsage, (h,))])
        temp = self._call(
            gpu,
            "temperature",
            [
                (getattr(nv, "nvmlDeviceGetTemperatureV", None), (h, TEMPERATURE_GPU)),
                (nv.nvmlDeviceGetTemperature, (h, TEMPERATURE_GPU)),  # deprecated, older drivers
            ],
        )
        clock = self._call(gpu, "sm_clock", [(nv.nvmlDeviceGetClockInfo, (h, CLOCK_SM))])
        ecc_c = self._call(
            gpu, "ecc", [(nv.nvmlDeviceGetTotalEccErrors, (h, ECC_CORRECTED, VOLATILE_ECC))]
        )
        ecc_u = self._call(
            gpu, "ecc", [(nv.nvmlDeviceGetTotalEccErrors, (h, ECC_UNCORRECTED, VOLATILE_ECC))]
        )
        migs: tuple[MigInstance, ...] = ()
        if gpu.mig_enabled:
            if gpu.readings % MIG_RESCAN_READINGS == 0:
                self._scan_mig(gpu)
            migs, procs = self._read_migs(gpu)
        else:
            procs = self._processes(gpu, h)
        sm_active, tensor_active = self._read_gpm(nv, gpu)
        return GpuSample(
            timestamp=now,
            gpu_index=gpu.index,
            gpu_uuid=gpu.uuid,
            gpu_name=gpu.name,
            gpu_util_percent=None if util is None else float(util.gpu),
            mem_util_percent=None if util is None else float(util.memory),
            memory_used_bytes=used,
            memory_total_bytes=total,
            power_watts=None if power_mw is None else power_mw / 1000.0,
            temperature_celsius=None if temp is None else float(temp),
            sm_clock_mhz=None if clock is None else float(clock),
            sm_active_ratio=sm_active,
            tensor_active_ratio=tensor_active,
            process_count=None if procs is None else len(procs),
            process_memory_bytes=tuple(
                (int(p.pid), int(p.usedGpuMemory or 0)) for p in (procs or ())
            ),
            ecc_corrected_volatile=ecc_c,
            ecc_uncorrected_volatile=ecc_u,
            xid_events=xids,
            pci_bus_id=gpu.pci_bus_id,
            memory_reserved_bytes=reserved,
            mig_enabled=gpu.mig_enabled,
            mig_instances=migs,
            unsupported=tuple(sorted(gpu.unsupported.items())),
        )

    def _memory(self, reader: _Reader, handle: Any) -> tuple[int | None, int | None, int | None]:
        """(used, total, reserved) bytes: nvmlMemory_v2 where the driver has it, else v1.

        v1's `used` includes the driver's reservation; v2 reports it apart, as DCGM does
        (FB_USED / FB_RESERVED). `reserved` is None on the v1 fallback.
        """
        nv = self._nv
        assert nv is not None
        version = getattr(nv, "nvmlMemory_v2", None)
        calls: list[Call] = [(nv.nvmlDeviceGetMemoryInfo, (handle, version))] if version else []
        calls.append((nv.nvmlDeviceGetMemoryInfo, (handle,)))
        mem = self._call(reader, "memory", calls)
        if mem is None:
            return None, None, None
        on_v2 = bool(version) and reader.variant.get("memory") == 0
        reserved = int(mem.reserved) if on_v2 else None
        return int(mem.used), int(mem.total), reserved

    def _processes(self, reader: _Reader, handle: Any) -> list[Any] | None:
        """Running compute processes: the _v3 call, then _v2 for older drivers.

        Not the unversioned call: on an older driver it raises NVMLLibraryMismatchError.
        """
        nv = self._nv
        assert nv is not None
        calls: list[Call] = [
            (getattr(nv, "nvmlDeviceGetComputeRunningProcesses_v3", None), (handle,)),
            (getattr(nv, "nvmlDeviceGetComputeRunningProcesses_v2", None), (handle,)),
        ]
        if not any(fn for fn, _ in calls):  # bindings older than both
            calls.append((nv.nvmlDeviceGetComputeRunningProcesses, (handle,)))
        procs = self._call(reader, "processes", calls)
        return None if procs is None else list(procs)

    def _call(self, reader: _Reader, metric: str, calls: Sequence[Call]) -> Any:
        """Call one NVML getter, the successor first; None when it cannot report the metric.

        A call that the driver or bindings do not have (or that the GPU refuses) falls
        through to the next, older one; the one that works is remembered.
        """
        if metric in reader.unsupported:
            return None
        nv = self._nv
        assert nv is not None
        why = "not in these NVML bindings"
        for position in range(reader.variant.get(metric, 0), len(calls)):
            fn, args = calls[position]
            if fn is None:
                continue
            try:
                value = fn(*args)
            except nv.NVMLError as exc:
                code = _code(exc)
                if code == ERROR_GPU_IS_LOST:
                    raise _Lost from exc
                if code not in _UNSUPPORTED:
                    log.warning(
                        "metric read failed",
                        extra={"gpu": reader.label, "metric": metric, "error": str(exc)},
                    )
                    return None
                why = f"{_UNSUPPORTED[code]} (NVML: {exc})"
                continue
            except self._errors as exc:  # NVMLLibraryMismatchError
                why = f"not in this driver ({type(exc).__name__})"
                continue
            reader.variant[metric] = position
            return value
        self._mark_unsupported(reader, metric, why)
        return None

    def _mark_unsupported(self, reader: _Reader, metric: str, why: str) -> None:
        reader.unsupported[metric] = why
        log.info("metric not supported", extra={"gpu": reader.label, "metric": metric, "why": why})

    # -- MIG --------------------------------------------------------------------------------
    def _open_mig(self, gpu: _Gpu) -> None:
        nv = self._nv
        assert nv is not None
        mode = self._call(
            gpu, "mig_mode", [(getattr(nv, "nvmlDeviceGetMigMode", None), (gpu.handle,))]
        )
        if mode is None:
            return  # no MIG on this GPU (mig_enabled stays None: cannot tell)
        gpu.mig_enabled = int(mode[0]) == MIG_ENABLE
        if gpu.mig_enabled:
            gpu.unsupported["utilization"] = UNSUPPORTED_UNDER_MIG
            self._scan_mig(gpu)
            log.info(
                "mig enabled: memory and processes read per GPU instance",
                extra={"gpu": gpu.index, "instances": [m.gpu_instance_id for m in gpu.migs]},
            )

    def _scan_mig(self, gpu: _Gpu) -> None:
        nv = self._nv
        assert nv is not None
        slots = self._call(gpu, "mig_devices", [(nv.nvmlDeviceGetMaxMigDeviceCount, (gpu.handle,))])
        found: list[_Mig] = []
        known = {m.uuid: m for m in gpu.migs}
        for slot in range(int(slots or 0)):
            try:
                handle = nv.nvmlDeviceGetMigDeviceHandleByIndex(gpu.handle, slot)
            except nv.NVMLError as exc:
                if _code(exc) == ERROR_GPU_IS_LOST:
                    raise _Lost from exc
                continue  # NVML_ERROR_NOT_FOUND: no instance in this slot
            uuid = _text(_try(nv.nvmlDeviceGetUUID, handle))
            instance_id = _try(nv.nvmlDeviceGetGpuInstanceId, handle)
            mig = known.get(uuid) or _Mig(label=f"gpu {gpu.index} mig {instance_id}")
            mig.handle, mig.uuid = handle, uuid
            mig.gpu_instance_id = int(instance_id) if instance_id is not None else slot
            found.append(mig)
        gpu.migs = found

    def _read_migs(self, gpu: _Gpu) -> tuple[tuple[MigInstance, ...], list[Any] | None]:
        """Each instance's memory and processes, and all processes (None if any is unknown).

        The process list of a MIG GPU's own handle needs root; each instance's does not.
        """
        instances = []
        everyone: list[Any] | None = []
        for mig in gpu.migs:
            used, total, _reserved = self._memory(mig, mig.handle)
            procs = self._processes(mig, mig.handle)
            if procs is None or everyone is None:
                everyone = None
            else:
                everyone.extend(procs)
            instances.append(
                MigInstance(
                    gpu_instance_id=mig.gpu_instance_id,
                    uuid=mig.uuid,
                    memory_used_bytes=used,
                    memory_total_bytes=total,
                    process_count=None if procs is None else len(procs),
                )
            )
        return tuple(instances), everyone

    # -- GPM (Hopper+) ---------------------------------------------------------------------
    def _start_gpm(self, gpu: _Gpu) -> None:
        nv = self._nv
        assert nv is not None
        if not self._gpm:
            gpu.unsupported["gpm"] = "off in the config ([agent] gpm = false)"
            return
        if not hasattr(nv, "nvmlGpmQueryDeviceSupport"):
            gpu.unsupported["gpm"] = "not in these NVML bindings"
            return
        support = self._call(gpu, "gpm", [(nv.nvmlGpmQueryDeviceSupport, (gpu.handle,))])
        if support is None:
            return
        if not support.isSupportedDevice:
            self._mark_unsupported(
                gpu, "gpm", "not supported by this GPU (GPM needs Hopper or newer)"
            )
            return
        first = self._call(gpu, "gpm", [(nv.nvmlGpmSampleAlloc, ())])
        second = self._call(gpu, "gpm", [(nv.nvmlGpmSampleAlloc, ())])
        # support and allocation say nothing about permission: only a sample read by this
        # user (the unit runs unprivileged) shows that GPM works
        if (
            first is None
            or second is None
            or (self._call(gpu, "gpm", [(nv.nvmlGpmSampleGet, (gpu.handle, first))]) is None)
        ):
            for buffer in (first, second):
                if buffer is not None:
                    _try(nv.nvmlGpmSampleFree, buffer)
            return
        gpu.gpm_samples = [first, second]

    def _read_gpm(self, nv: Any, gpu: _Gpu) -> tuple[float | None, float | None]:
        if not gpu.gpm_samples or "gpm" in gpu.unsupported:
            return None, None
        previous, current = gpu.gpm_samples
        if self._call(gpu, "gpm", [(nv.nvmlGpmSampleGet, (gpu.handle, current))]) is None:
            return None, None
        gpu.gpm_samples = [current, previous]  # next tick reuses the older buffer
        if not gpu.gpm_primed:  # a rate needs two samples one interval apart
            gpu.gpm_primed = True
            return None, None
        request = nv.c_nvmlGpmMetricsGet_t()
        request.version = nv.NVML_GPM_METRICS_GET_VERSION
        request.numMetrics = 2
        request.sample1 = previous
        request.sample2 = current
        request.metrics[0].metricId = GPM_SM_UTIL
        request.metrics[1].metricId = GPM_ANY_TENSOR_UTIL
        result = self._call(gpu, "gpm", [(nv.nvmlGpmMetricsGet, (request,))])
        if result is None:
            return None, None
        return _gpm_ratio(result.metrics[0]), _gpm_ratio(result.metrics[1])

    # -- XID events ------------------------------------------------------------------------
    def _start_xid_events(self) -> None:
        nv = self._nv
        assert nv is not None
        try:
            events = nv.nvmlEventSetCreate()
        except self._errors:
            return
        registered = 0
        for gpu in self._gpus:
            if gpu.handle is None:
                continue
            try:
                nv.nvmlDeviceRegisterEvents(gpu.handle, nv.nvmlEventTypeXidCriticalError, events)
                registered += 1
            except self._errors as exc:
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
            except self._errors:
                break  # NVML_ERROR_TIMEOUT: no event pending
            index = _try(nv.nvmlDeviceGetIndex, data.device)
            if index is not None:
                seen.setdefault(int(index), []).append(int(data.eventData))
        return seen


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
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _try(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return None
