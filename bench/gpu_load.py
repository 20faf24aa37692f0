"""Put a real load on one GPU without a framework: a PTX kernel through the CUDA driver API.

    python bench/gpu_load.py --device 0 --seconds 60 [--memory-mib 2048] [--json FILE]

Only the standard library: `libcuda.so.1` (installed with the NVIDIA driver; override with
FINOPS_LIBCUDA) through ctypes. The kernel is PTX (ISA 6.0, target sm_50), which the driver
compiles for whatever GPU it finds: every thread runs four independent FMA chains, enough
blocks to fill every SM, launched back to back for `--seconds`. It also holds
`--memory-mib` of device memory, so the memory reading moves too. Prints (and writes) one
JSON object: launches, busy seconds, kernel time per launch, SM count, device name.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import time
from pathlib import Path

# The kernel: dst[i] = the sum of 4 FMA chains of `iters` steps each, so nothing can be optimised away.
PTX = b"""
.version 6.0
.target sm_50
.address_size 64

.visible .entry burn(.param .u64 dst, .param .u32 iters)
{
    .reg .pred %p;
    .reg .f32 %f<8>;
    .reg .b32 %r<8>;
    .reg .b64 %rd<4>;

    ld.param.u64 %rd1, [dst];
    ld.param.u32 %r1, [iters];
    mov.u32 %r2, %tid.x;
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mad.lo.s32 %r5, %r3, %r4, %r2;
    cvt.rn.f32.s32 %f1, %r5;
    add.f32 %f2, %f1, 0f3F800000;
    add.f32 %f3, %f1, 0f40000000;
    add.f32 %f4, %f1, 0f40400000;
    mov.u32 %r6, 0;
LOOP:
    fma.rn.f32 %f1, %f1, 0f3F7FFFEF, 0f3DCCCCCD;
    fma.rn.f32 %f2, %f2, 0f3F7FFFEF, 0f3DCCCCCD;
    fma.rn.f32 %f3, %f3, 0f3F7FFFEF, 0f3DCCCCCD;
    fma.rn.f32 %f4, %f4, 0f3F7FFFEF, 0f3DCCCCCD;
    add.u32 %r6, %r6, 1;
    setp.lt.u32 %p, %r6, %r1;
    @%p bra LOOP;
    add.f32 %f5, %f1, %f2;
    add.f32 %f6, %f3, %f4;
    add.f32 %f7, %f5, %f6;
    cvta.to.global.u64 %rd2, %rd1;
    mul.wide.s32 %rd3, %r5, 4;
    add.s64 %rd2, %rd2, %rd3;
    st.global.f32 [%rd2], %f7;
    ret;
}
\x00"""

ATTRIBUTE_MULTIPROCESSOR_COUNT = 16  # CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT
THREADS_PER_BLOCK = 256
BLOCKS_PER_SM = 8
TARGET_LAUNCH_SECONDS = 0.1  # short enough to stop on time, long enough to keep the GPU busy


class CudaError(RuntimeError):
    pass


class Driver:
    """The few driver API calls the load needs, each checked."""

    def __init__(self, path: str) -> None:
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as exc:
            raise CudaError(
                f"cannot load {path} ({exc}): the NVIDIA driver's CUDA library is missing"
            ) from exc

    def __call__(self, name: str, *args: object) -> None:
        result = getattr(self.lib, name)(*args)
        if result != 0:
            text = ctypes.c_char_p()
            self.lib.cuGetErrorString(result, ctypes.byref(text))
            message = text.value.decode() if text.value else "unknown error"
            raise CudaError(f"{name} failed: CUDA error {result} ({message})")

    def has(self, name: str) -> bool:
        return hasattr(self.lib, name)


def run(device: int, seconds: float, memory_mib: int, library: str) -> dict[str, object]:
    cuda = Driver(library)
    cuda("cuInit", ctypes.c_uint(0))
    dev = ctypes.c_int()
    cuda("cuDeviceGet", ctypes.byref(dev), ctypes.c_int(device))
    name = ctypes.create_string_buffer(256)
    cuda("cuDeviceGetName", name, ctypes.c_int(256), dev)
    sms = ctypes.c_int()
    cuda("cuDeviceGetAttribute", ctypes.byref(sms), ATTRIBUTE_MULTIPROCESSOR_COUNT, dev)
    ctx = ctypes.c_void_p()
    cuda("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev)
    cuda("cuCtxSetCurrent", ctx)
    module = ctypes.c_void_p()
    cuda("cuModuleLoadData", ctypes.byref(module), ctypes.c_char_p(PTX))
    kernel = ctypes.c_void_p()
    cuda("cuModuleGetFunction", ctypes.byref(kernel), module, b"burn")
    blocks = max(1, sms.value) * BLOCKS_PER_SM
    out = ctypes.c_uint64()
    cuda("cuMemAlloc_v2", ctypes.byref(out), ctypes.c_size_t(blocks * THREADS_PER_BLOCK * 4))
    held = ctypes.c_uint64()
    if memory_mib > 0:
        cuda("cuMemAlloc_v2", ctypes.byref(held), ctypes.c_size_t(memory_mib * 2**20))

    iters = ctypes.c_uint32(1 << 14)
    params = (ctypes.c_void_p * 2)(
        ctypes.cast(ctypes.byref(out), ctypes.c_void_p),
        ctypes.cast(ctypes.byref(iters), ctypes.c_void_p),
    )

    def launch() -> float:
        t0 = time.perf_counter()
        cuda(
            "cuLaunchKernel",
            kernel,
            ctypes.c_uint(blocks),
            ctypes.c_uint(1),
            ctypes.c_uint(1),
            ctypes.c_uint(THREADS_PER_BLOCK),
            ctypes.c_uint(1),
            ctypes.c_uint(1),
            ctypes.c_uint(0),
            ctypes.c_void_p(0),
            params,
            ctypes.c_void_p(0),
        )
        cuda("cuCtxSynchronize")
        return time.perf_counter() - t0

    launch()  # JIT-compiles the PTX for this GPU
    took = launch()
    iters.value = int(min(2**31 - 1, max(1, iters.value * TARGET_LAUNCH_SECONDS / max(took, 1e-6))))
    launches = 0
    busy = 0.0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        busy += launch()
        launches += 1
    wall = time.monotonic() - started
    if held.value:
        cuda("cuMemFree_v2", held)
    cuda("cuMemFree_v2", out)
    cuda("cuModuleUnload", module)
    release = (
        "cuDevicePrimaryCtxRelease_v2"
        if cuda.has("cuDevicePrimaryCtxRelease_v2")
        else "cuDevicePrimaryCtxRelease"
    )
    cuda(release, dev)
    return {
        "device": device,
        "name": name.value.decode(errors="replace"),
        "sms": sms.value,
        "blocks": blocks,
        "threads_per_block": THREADS_PER_BLOCK,
        "iterations_per_launch": iters.value,
        "launches": launches,
        "busy_seconds": round(busy, 3),
        "wall_seconds": round(wall, 3),
        "ms_per_launch": round(busy / max(launches, 1) * 1000, 3),
        "memory_held_mib": memory_mib,
        "pid": os.getpid(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", type=int, default=0, help="CUDA device ordinal")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--memory-mib", type=int, default=2048, help="device memory to hold")
    parser.add_argument("--json", metavar="FILE", help="also write the result here")
    args = parser.parse_args()
    library = os.environ.get("FINOPS_LIBCUDA", "libcuda.so.1")
    try:
        result = run(args.device, args.seconds, args.memory_mib, library)
    except CudaError as exc:
        print(f"gpu_load: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
