/* CPU emulation of the CUDA runtime for tests/gpu (see cuda_runtime.h) */
#include "cuda_runtime.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

thread_local dim3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
emu_block *emu_cur;
thread_local int emu_tid;

/* One launch: blockDim threads, created once, walk the blocks of the grid in order; the
 * block barrier between blocks keeps them in step (the __shared__ statics are reused). */
void emu_run(dim3 g, dim3 b, const std::function<void()> &body) {
    gridDim = g, blockDim = b;
    const int nt = (int)(b.x * b.y * b.z);
    emu_block blk;
    blk.all = std::make_unique<std::barrier<>>(nt);
    for (int w = 0; w < (nt + 31) / 32; w++)
        blk.warps.push_back(std::make_unique<std::barrier<>>(std::min(32, nt - 32 * w)));
    blk.slots.assign((size_t)nt + 32, 0.0);
    emu_cur = &blk;
    std::vector<std::thread> th;
    for (int t = 0; t < nt; t++)
        th.emplace_back([&, t] {
            emu_tid = t;
            threadIdx = dim3(t % b.x, (t / b.x) % b.y, t / (b.x * b.y));
            for (unsigned bz = 0; bz < g.z; bz++)
                for (unsigned by = 0; by < g.y; by++)
                    for (unsigned bx = 0; bx < g.x; bx++) {
                        blockIdx = dim3(bx, by, bz);
                        body();
                        blk.all->arrive_and_wait(); /* the block is done */
                    }
        });
    for (auto &x : th) x.join();
}

void emu_run_seq(dim3 g, dim3 b, const std::function<void()> &body) {
    gridDim = g, blockDim = b;
    emu_cur = nullptr; /* a barrier or shuffle here would be a launch2emu.py bug: crash */
    for (unsigned bz = 0; bz < g.z; bz++)
        for (unsigned by = 0; by < g.y; by++)
            for (unsigned bx = 0; bx < g.x; bx++) {
                blockIdx = dim3(bx, by, bz);
                for (unsigned t = 0; t < b.x * b.y * b.z; t++) {
                    emu_tid = (int)t;
                    threadIdx = dim3(t % b.x, (t / b.x) % b.y, t / (b.x * b.y));
                    body();
                }
            }
}

extern "C" {
cudaError_t cudaMalloc(void **p, size_t n) {
    *p = malloc(n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) {
    memset(p, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t) {
    memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaHostRegister(void *, size_t, unsigned int) {
    return cudaSuccess;
}
cudaError_t cudaHostUnregister(void *) {
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) {
    return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int *n) {
    const char *e = getenv("TFSWA_EMU_DEVICES");
    *n = e && atoi(e) > 0 ? atoi(e) : 1;
    return cudaSuccess;
}
static int emu_device = 0; /* the current device (cudaSetDevice) */
cudaError_t cudaSetDevice(int d) {
    int n = 0;
    cudaGetDeviceCount(&n);
    if (d < 0 || d >= n) return cudaErrorInvalidDevice;
    emu_device = d;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *d) {
    *d = emu_device;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d) {
    int n = 0;
    cudaGetDeviceCount(&n);
    if (d < 0 || d >= n) return cudaErrorInvalidDevice;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "emulated GPU");
    const char *cc = getenv("TFSWA_EMU_CC");
    p->major = 9, p->minor = 0;
    if (cc && sscanf(cc, "%d.%d", &p->major, &p->minor) < 1) p->major = 9;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    return cudaSuccess;
}
const char *cudaGetErrorString(cudaError_t e) {
    return e == cudaErrorInvalidDevice ? "invalid device ordinal (emulated)"
           : e                         ? "emulated error"
                                       : "no error";
}
}

/* src/cuda/device.cu is not part of the emulation; conv.cu's description asks it for the
 * library versions */
extern "C" void tf_cuda_versions(char *out, size_t n) {
    snprintf(out, n, "emulated CUDA runtime and cuDNN");
}
