/* A stand-in libcuda.so.1 for testing bench/gpu_load.py and bench/gpu_device_check.sh.
 *
 * The driver API calls gpu_load.py makes, with their real signatures. A launched kernel
 * "runs" for iters * 2 us (so calibration scales it like a real one) and marks the GPU busy
 * in its state file (gpu_state.h) until then; cuCtxSynchronize waits for it. Allocations
 * count toward the GPU's memory used. The PTX must define the entry the caller asks for.
 */
#include <stdint.h>
#include <time.h>

#include "gpu_state.h"

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_INVALID_DEVICE 101
#define CUDA_ERROR_INVALID_IMAGE 200
#define CUDA_ERROR_NOT_FOUND 500

static int initialised = 0;
static int current = -1;            /* device of the current context */
static unsigned long long next_ptr = 0x700000000000ULL;
static const char *module_image = NULL;

int cuInit(unsigned int flags) { (void)flags; initialised = 1; return CUDA_SUCCESS; }

int cuGetErrorString(int error, const char **text) {
    switch (error) {
        case CUDA_SUCCESS: *text = "no error"; break;
        case CUDA_ERROR_INVALID_VALUE: *text = "invalid argument"; break;
        case CUDA_ERROR_NOT_INITIALIZED: *text = "initialization error"; break;
        case CUDA_ERROR_INVALID_DEVICE: *text = "invalid device ordinal"; break;
        case CUDA_ERROR_INVALID_IMAGE: *text = "device kernel image is invalid"; break;
        case CUDA_ERROR_NOT_FOUND: *text = "named symbol not found"; break;
        default: *text = "unknown error";
    }
    return CUDA_SUCCESS;
}

int cuDeviceGetCount(int *count) { *count = fake_gpu_count(); return CUDA_SUCCESS; }

int cuDeviceGet(int *device, int ordinal) {
    if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (ordinal < 0 || ordinal >= fake_gpu_count()) return CUDA_ERROR_INVALID_DEVICE;
    *device = ordinal;
    return CUDA_SUCCESS;
}

int cuDeviceGetName(char *name, int length, int device) {
    snprintf(name, (size_t)length, "NVIDIA Stand-in GPU %d", device);
    return CUDA_SUCCESS;
}

int cuDeviceGetAttribute(int *value, int attribute, int device) {
    (void)device;
    *value = attribute == 16 ? 132 : 1; /* CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT */
    return CUDA_SUCCESS;
}

int cuDevicePrimaryCtxRetain(void **ctx, int device) {
    if (device < 0 || device >= fake_gpu_count()) return CUDA_ERROR_INVALID_DEVICE;
    *ctx = (void *)(intptr_t)(device + 1);
    gpu_state s = read_state(device);
    s.pid = (unsigned int)getpid();
    write_state(device, s);
    return CUDA_SUCCESS;
}

int cuCtxSetCurrent(void *ctx) { current = (int)(intptr_t)ctx - 1; return CUDA_SUCCESS; }

int cuDevicePrimaryCtxRelease_v2(int device) {
    gpu_state s = read_state(device);
    s.pid = 0;
    s.allocated = 0;
    write_state(device, s);
    return CUDA_SUCCESS;
}

int cuModuleLoadData(void **module, const void *image) {
    if (current < 0) return CUDA_ERROR_INVALID_VALUE;
    if (!strstr((const char *)image, ".entry") || !strstr((const char *)image, ".target"))
        return CUDA_ERROR_INVALID_IMAGE;
    module_image = (const char *)image;
    *module = (void *)0x1;
    return CUDA_SUCCESS;
}

int cuModuleUnload(void *module) { (void)module; return CUDA_SUCCESS; }

int cuModuleGetFunction(void **function, void *module, const char *name) {
    (void)module;
    char entry[256];
    snprintf(entry, sizeof entry, ".entry %s(", name);
    if (!module_image || !strstr(module_image, entry)) return CUDA_ERROR_NOT_FOUND;
    *function = (void *)0x2;
    return CUDA_SUCCESS;
}

int cuMemAlloc_v2(unsigned long long *ptr, size_t bytes) {
    if (current < 0) return CUDA_ERROR_INVALID_VALUE;
    gpu_state s = read_state(current);
    s.allocated += bytes;
    write_state(current, s);
    *ptr = next_ptr;
    next_ptr += bytes + 4096;
    return CUDA_SUCCESS;
}

int cuMemFree_v2(unsigned long long ptr) { (void)ptr; return CUDA_SUCCESS; }

int cuLaunchKernel(void *f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                   unsigned int by, unsigned int bz, unsigned int shmem, void *stream,
                   void **params, void **extra) {
    (void)gy; (void)gz; (void)by; (void)bz; (void)shmem; (void)stream; (void)extra;
    if (current < 0 || f == NULL || params == NULL || gx == 0 || bx == 0)
        return CUDA_ERROR_INVALID_VALUE;
    unsigned int iters = *(unsigned int *)params[1];
    gpu_state s = read_state(current);
    double start = fake_now() > s.busy_until ? fake_now() : s.busy_until;
    s.busy_until = start + iters * 2e-6;
    s.pid = (unsigned int)getpid();
    write_state(current, s);
    return CUDA_SUCCESS;
}

int cuCtxSynchronize(void) {
    if (current < 0) return CUDA_ERROR_INVALID_VALUE;
    double wait = read_state(current).busy_until - fake_now();
    if (wait > 0) {
        struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return CUDA_SUCCESS;
}
