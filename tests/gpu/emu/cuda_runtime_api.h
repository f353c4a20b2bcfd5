/* CPU emulation of the few CUDA runtime calls tests/gpu uses (emu.cpp): "device" memory is
 * host memory, copies are memmove, there is one device (or TFSWA_EMU_DEVICES) and nothing
 * fails. See cuda_runtime.h and tests/gpu/run_emulated.sh. */
#ifndef TFSWA_EMU_CUDA_RUNTIME_API_H
#define TFSWA_EMU_CUDA_RUNTIME_API_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    cudaSuccess = 0,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidDevice = 101
} cudaError_t;
typedef enum {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3
} cudaMemcpyKind;
typedef struct CUstream_st *cudaStream_t;

cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
/* launches run to completion when made, so the stream-ordered calls act at once */
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
#define cudaHostRegisterDefault 0u
/* page-locking is a no-op here: the copies are memcpy */
cudaError_t cudaHostRegister(void *p, size_t bytes, unsigned int flags);
cudaError_t cudaHostUnregister(void *p);
cudaError_t cudaDeviceSynchronize(void);
/* TFSWA_EMU_DEVICES devices (default 1; run_emulated.sh with MPI_NP=N: N, one per rank),
 * all the same host memory */
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetLastError(void);
/* the emulated card: "emulated GPU", compute capability TFSWA_EMU_CC ("major.minor",
 * default 9.0) */
struct cudaDeviceProp {
    char name[256];
    int major, minor;
};
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device);
const char *cudaGetErrorString(cudaError_t e);

#ifdef __cplusplus
}
#endif
#endif
