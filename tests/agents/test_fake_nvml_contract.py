"""The stub pynvml is only worth its tests if it is the real module's shape: hold it to the
installed nvidia-ml-py (names, signatures, constants, struct fields, error classes)."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

real = pytest.importorskip("pynvml")  # the installed nvidia-ml-py (the agent extra)
STUB_PATH = Path(__file__).resolve().parent / "fake_nvml" / "pynvml.py"


@pytest.fixture(scope="module")
def stub() -> Iterator[ModuleType]:
    name = "fake_pynvml_contract"
    spec = importlib.util.spec_from_file_location(name, STUB_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


def stub_functions(stub: ModuleType) -> list[str]:
    return sorted(
        name
        for name, value in vars(stub).items()
        if name.startswith("nvml") and inspect.isfunction(value)
    )


def test_the_stub_is_not_the_real_module(stub: ModuleType) -> None:
    assert "site-packages" in str(real.__file__)
    assert hasattr(real, "_nvmlGetFunctionPointer") and not hasattr(stub, "_nvmlGetFunctionPointer")


def test_every_stub_function_exists_in_pynvml_with_the_same_signature(stub: ModuleType) -> None:
    names = stub_functions(stub)
    assert len(names) >= 30
    for name in names:
        assert hasattr(real, name), f"pynvml has no {name}"
        want = inspect.signature(getattr(real, name))
        got = inspect.signature(getattr(stub, name))
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == [
            (p.name, p.kind, p.default) for p in want.parameters.values()
        ], f"{name}{got} != pynvml.{name}{want}"


def test_every_stub_constant_has_the_real_value(stub: ModuleType) -> None:
    constants = {
        name: value
        for name, value in vars(stub).items()
        if (name.startswith("NVML_") or name.startswith("nvml")) and isinstance(value, int)
    }
    assert len(constants) >= 25
    for name, value in constants.items():
        assert getattr(real, name) == value, name


@pytest.mark.parametrize(
    ("stub_class", "real_struct"),
    [
        ("_Util", "c_nvmlUtilization_t"),
        ("_Memory", "c_nvmlMemory_t"),
        ("_MemoryV2", "c_nvmlMemory_v2_t"),
        ("_Process", "c_nvmlProcessInfo_v3_t"),
        ("_EventData", "c_nvmlEventData_t"),
        ("_GpmSupport", "c_nvmlGpmSupport_t"),
    ],
)
def test_returned_records_have_the_real_struct_fields(
    stub: ModuleType, stub_class: str, real_struct: str
) -> None:
    fields = [f.name for f in dataclasses.fields(getattr(stub, stub_class))]
    assert fields == [name for name, _type in getattr(real, real_struct)._fields_]


def test_pci_info_and_gpm_request_fields_the_agent_reads_exist(stub: ModuleType) -> None:
    pci_fields = {name for name, _type in real.nvmlPciInfo_t._fields_}
    assert {"busId", "domain", "bus", "device"} <= pci_fields
    request = {name for name, _type in real.c_nvmlGpmMetricsGet_t._fields_}
    assert set(vars(stub.c_nvmlGpmMetricsGet_t())) == request
    metric = {name for name, _type in real.c_nvmlGpmMetric_t._fields_}
    assert set(vars(stub.c_nvmlGpmMetricsGet_t().metrics[0])) <= metric


def test_error_classes_match(stub: ModuleType) -> None:
    assert not issubclass(real.NVMLLibraryMismatchError, real.NVMLError)
    assert not issubclass(stub.NVMLLibraryMismatchError, stub.NVMLError)
    for name in ("NotSupported", "NoPermission", "NotFound", "FunctionNotFound", "GpuIsLost"):
        stub_error = getattr(stub, f"NVMLError_{name}")()
        real_error = getattr(real, f"NVMLError_{name}")()
        assert stub_error.value == real_error.value and str(stub_error) == str(real_error)


def test_unversioned_process_call_raises_the_mismatch_error_like_the_real_wrapper() -> None:
    # the real wrapper: FunctionNotFound from _v3 becomes NVMLLibraryMismatchError
    source = inspect.getsource(real.throwOnVersionMismatch)
    assert "NVMLError_FunctionNotFound" in source and "NVMLLibraryMismatchError" in source
    assert real.nvmlDeviceGetComputeRunningProcesses.__wrapped__ is not None
