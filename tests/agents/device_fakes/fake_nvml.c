/* A stand-in libnvidia-ml.so.1 for testing bench/gpu_device_check.sh without a GPU.
 *
 * The real nvidia-ml-py (pynvml) loads it and calls it through ctypes, so the agent's NVML
 * calls, their argument structs and versions are exercised as on a GPU host. Only what
 * the agent calls exists: anything else is NVML_ERROR_FUNCTION_NOT_FOUND, as on a driver
 * without it. Readings follow gpu_state.h: busy (a kernel ran in the last 200 ms) or idle.
 * FAKE_GPM_ROOT_ONLY=0,2: on those GPUs reading a GPM sample needs root, as with the
 * driver's default NVreg_RestrictProfilingToAdminUsers=1 (which applies to all of them).
 */
#include <stdint.h>

#include "gpu_state.h"

#define OK 0
#define ERR_INVALID_ARGUMENT 2
#define ERR_NOT_SUPPORTED 3
#define ERR_NO_PERMISSION 4
#define ERR_INSUFFICIENT_SIZE 7

#define TOTAL_BYTES 85899345920ULL    /* 80 GiB */
#define RESERVED_BYTES 536870912ULL   /* the driver's reservation, v2 */
#define CONTEXT_BYTES 419430400ULL    /* what a CUDA context holds */

typedef void *dev_t_;

static int index_of(dev_t_ device) {
    intptr_t i = (intptr_t)device - 1;
    return (i >= 0 && i < fake_gpu_count()) ? (int)i : -1;
}

static unsigned long long used_bytes(gpu_state s) {
    return s.pid ? s.allocated + CONTEXT_BYTES : 0;
}

int nvmlInitWithFlags(unsigned int flags) { (void)flags; return OK; }
int nvmlInit_v2(void) { return OK; }
int nvmlShutdown(void) { return OK; }

const char *nvmlErrorString(int result) {
    switch (result) {
        case 2: return "Invalid Argument";
        case 3: return "Not Supported";
        case 4: return "Insufficient Permissions";
        default: return "Unknown Error";
    }
}

int nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    snprintf(version, length, "550.54.15");
    return OK;
}

int nvmlDeviceGetCount_v2(unsigned int *count) {
    *count = (unsigned int)fake_gpu_count();
    return OK;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, dev_t_ *device) {
    if ((int)index >= fake_gpu_count()) return ERR_INVALID_ARGUMENT;
    *device = (dev_t_)(intptr_t)(index + 1);
    return OK;
}

int nvmlDeviceGetIndex(dev_t_ device, unsigned int *index) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    *index = (unsigned int)i;
    return OK;
}

int nvmlDeviceGetUUID(dev_t_ device, char *uuid, unsigned int length) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    snprintf(uuid, length, "GPU-5ca1ab1e-0000-4000-8000-%012d", i);
    return OK;
}

int nvmlDeviceGetName(dev_t_ device, char *name, unsigned int length) {
    if (index_of(device) < 0) return ERR_INVALID_ARGUMENT;
    snprintf(name, length, "NVIDIA Stand-in GPU");
    return OK;
}

typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} pci_info;

int nvmlDeviceGetPciInfo_v3(dev_t_ device, pci_info *pci) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    memset(pci, 0, sizeof *pci);
    pci->bus = 0x10 + i;
    snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", 0x10 + i);
    snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", (unsigned char)(0x10 + i));
    return OK;
}

typedef struct { unsigned int gpu, memory; } utilization;

int nvmlDeviceGetUtilizationRates(dev_t_ device, utilization *util) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    int busy = is_busy(read_state(i));
    util->gpu = busy ? 100 : 0;
    util->memory = busy ? 35 : 0;
    return OK;
}

typedef struct { unsigned long long total, free, used; } memory_v1;
typedef struct { unsigned int version; unsigned long long total, reserved, free, used; } memory_v2;

int nvmlDeviceGetMemoryInfo(dev_t_ device, memory_v1 *memory) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    unsigned long long used = used_bytes(read_state(i)) + RESERVED_BYTES;
    memory->total = TOTAL_BYTES;
    memory->used = used;
    memory->free = TOTAL_BYTES - used;
    return OK;
}

int nvmlDeviceGetMemoryInfo_v2(dev_t_ device, memory_v2 *memory) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    if (memory->version != 0x02000028) return 25; /* NVML_ERROR_ARGUMENT_VERSION_MISMATCH */
    unsigned long long used = used_bytes(read_state(i));
    memory->total = TOTAL_BYTES;
    memory->reserved = RESERVED_BYTES;
    memory->used = used;
    memory->free = TOTAL_BYTES - RESERVED_BYTES - used;
    return OK;
}

int nvmlDeviceGetPowerUsage(dev_t_ device, unsigned int *milliwatts) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    *milliwatts = is_busy(read_state(i)) ? 310000 : 72000;
    return OK;
}

typedef struct { unsigned int version; int sensorType; int temperature; } temperature_v1;

int nvmlDeviceGetTemperatureV(dev_t_ device, temperature_v1 *temp) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    if (temp->version != 0x100000C) return 25;
    temp->temperature = is_busy(read_state(i)) ? 61 : 34;
    return OK;
}

int nvmlDeviceGetTemperature(dev_t_ device, int sensor, unsigned int *temp) {
    temperature_v1 t = {0x100000C, sensor, 0};
    int rc = nvmlDeviceGetTemperatureV(device, &t);
    *temp = (unsigned int)t.temperature;
    return rc;
}

int nvmlDeviceGetClockInfo(dev_t_ device, int type, unsigned int *mhz) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    if (type != 1) return ERR_NOT_SUPPORTED; /* NVML_CLOCK_SM only */
    *mhz = is_busy(read_state(i)) ? 1980 : 345;
    return OK;
}

int nvmlDeviceGetTotalEccErrors(dev_t_ device, int type, int counter, unsigned long long *count) {
    (void)type; (void)counter;
    if (index_of(device) < 0) return ERR_INVALID_ARGUMENT;
    *count = 0;
    return OK;
}

typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} process_v3;

int nvmlDeviceGetComputeRunningProcesses_v3(dev_t_ device, unsigned int *count, process_v3 *infos) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    gpu_state s = read_state(i);
    unsigned int n = (s.pid && s.allocated) ? 1 : 0;
    if (infos == NULL || *count < n) {
        *count = n;
        return n ? ERR_INSUFFICIENT_SIZE : OK;
    }
    *count = n;
    if (n) {
        infos[0].pid = s.pid;
        infos[0].usedGpuMemory = used_bytes(s);
        infos[0].gpuInstanceId = 0xFFFFFFFF;
        infos[0].computeInstanceId = 0xFFFFFFFF;
    }
    return OK;
}

int nvmlDeviceGetMigMode(dev_t_ device, unsigned int *current, unsigned int *pending) {
    if (index_of(device) < 0) return ERR_INVALID_ARGUMENT;
    *current = 0;
    *pending = 0;
    return OK;
}

/* -- GPM ---------------------------------------------------------------------------------- */
typedef struct { unsigned int version, isSupportedDevice; } gpm_support;
typedef struct { int device; double at; int busy; } gpm_sample;
typedef struct { const char *shortName, *longName, *unit; } metric_info;
typedef struct { unsigned int metricId; int nvmlReturn; double value; metric_info info; } gpm_metric;
typedef struct {
    unsigned int version, numMetrics;
    gpm_sample *sample1, *sample2;
    gpm_metric metrics[]; /* NVML_GPM_METRIC_MAX entries in the real header */
} gpm_metrics_get;

int nvmlGpmQueryDeviceSupport(dev_t_ device, gpm_support *support) {
    if (index_of(device) < 0) return ERR_INVALID_ARGUMENT;
    support->isSupportedDevice = 1;
    return OK;
}

int nvmlGpmSampleAlloc(gpm_sample **sample) {
    *sample = calloc(1, sizeof(gpm_sample));
    return *sample ? OK : 20;
}

int nvmlGpmSampleFree(gpm_sample *sample) {
    free(sample);
    return OK;
}

int nvmlGpmSampleGet(dev_t_ device, gpm_sample *sample) {
    int i = index_of(device);
    if (i < 0) return ERR_INVALID_ARGUMENT;
    const char *root_only = getenv("FAKE_GPM_ROOT_ONLY");
    if (root_only && geteuid() != 0) {
        char list[256], *token, *rest = NULL;
        snprintf(list, sizeof list, "%s", root_only);
        for (token = strtok_r(list, ",", &rest); token; token = strtok_r(NULL, ",", &rest))
            if (atoi(token) == i) return ERR_NO_PERMISSION;
    }
    sample->device = i;
    sample->at = fake_now();
    sample->busy = is_busy(read_state(i));
    return OK;
}

int nvmlGpmMetricsGet(gpm_metrics_get *request) {
    if (request->version != 1 || !request->sample1 || !request->sample2) return ERR_INVALID_ARGUMENT;
    int busy = request->sample1->busy || request->sample2->busy;
    for (unsigned int k = 0; k < request->numMetrics; k++) {
        gpm_metric *m = &request->metrics[k];
        m->nvmlReturn = OK;
        if (m->metricId == 2) m->value = busy ? 93.0 : 0.0;   /* SM_UTIL */
        else if (m->metricId == 5) m->value = 0.0;           /* ANY_TENSOR: FMA only */
        else m->nvmlReturn = ERR_NOT_SUPPORTED;
    }
    return OK;
}

/* XID events: not on this stand-in (the agent carries on without them) */
int nvmlEventSetCreate(void **set) { (void)set; return ERR_NOT_SUPPORTED; }
