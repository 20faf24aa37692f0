/* Shared by the stand-in libcuda and libnvidia-ml: one state file per GPU,
 * $FAKE_GPU_STATE_DIR/gpuN = "<busy_until unix seconds> <bytes allocated> <pid>\n",
 * written by the process that "runs kernels" (fake libcuda), read by NVML and nvidia-smi
 * (device_fakes/nvidia-smi applies the same formulas as fake_nvml.c). */
#ifndef FAKE_GPU_STATE_H
#define FAKE_GPU_STATE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct {
    double busy_until;
    unsigned long long allocated;
    unsigned int pid;
} gpu_state;

static inline double fake_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec / 1e6;
}

static inline int fake_gpu_count(void) {
    const char *n = getenv("FAKE_GPU_COUNT");
    return n ? atoi(n) : 2;
}

static inline void state_path(int index, char *path, size_t size) {
    const char *dir = getenv("FAKE_GPU_STATE_DIR");
    snprintf(path, size, "%s/gpu%d", dir ? dir : "/tmp", index);
}

static inline gpu_state read_state(int index) {
    gpu_state s = {0.0, 0, 0};
    char path[4096];
    state_path(index, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lf %llu %u", &s.busy_until, &s.allocated, &s.pid) != 3) {
            s.busy_until = 0.0;
        }
        fclose(f);
    }
    return s;
}

static inline void write_state(int index, gpu_state s) {
    char path[4096], tmp[4200];
    state_path(index, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%.6f %llu %u\n", s.busy_until, s.allocated, s.pid);
    fclose(f);
    rename(tmp, path);
}

/* a kernel ran within the last 200 ms */
static inline int is_busy(gpu_state s) { return fake_now() < s.busy_until + 0.2; }

#endif
