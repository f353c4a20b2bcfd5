/* CUDA devices and device memory: the C face is cuda/cuda_backend.h. */
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>
#include <string.h>

#include "cuda/cuda_backend.h"

static int cuerr(char *err, size_t n, const char *what, cudaError_t e) {
    if (err && n) snprintf(err, n, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    return 1;
}

extern "C" int tf_cuda_device_count(int *count, char *err, size_t err_n) {
    *count = 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky-free error state */
        if (err && err_n) snprintf(err, err_n, "%s", cudaGetErrorString(e));
        return 1;
    }
    if (n < 1) {
        if (err && err_n) snprintf(err, err_n, "the CUDA runtime reports 0 devices");
        return 1;
    }
    *count = n;
    return 0;
}

extern "C" int tf_cuda_device_open(int index, tf_cuda_device_info *info, char *err, size_t err_n) {
    memset(info, 0, sizeof *info);
    int count = 0;
    char why[256];
    if (tf_cuda_device_count(&count, why, sizeof why)) {
        if (err && err_n) snprintf(err, err_n, "no CUDA device: %s", why);
        return 1;
    }
    if (index < 0 || index >= count) {
        if (err && err_n)
            snprintf(err, err_n, "device %d out of range (%d CUDA device%s: 0 to %d)", index, count,
                     count == 1 ? "" : "s", count - 1);
        return 1;
    }
    cudaError_t e = cudaSetDevice(index);
    if (e != cudaSuccess) return cuerr(err, err_n, "cudaSetDevice", e);
    cudaDeviceProp p;
    e = cudaGetDeviceProperties(&p, index);
    if (e != cudaSuccess) return cuerr(err, err_n, "cudaGetDeviceProperties", e);
    size_t fr = 0, tot = 0;
    e = cudaMemGetInfo(&fr, &tot); /* creates the context on the device */
    if (e != cudaSuccess) return cuerr(err, err_n, "cudaMemGetInfo", e);
    info->index = index;
    info->count = count;
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->total_bytes = tot;
    info->free_bytes = fr;
    info->bf16 = p.major >= 8;
    info->multiprocessors = p.multiProcessorCount;
    if (cudaDriverGetVersion(&info->driver_version) != cudaSuccess) info->driver_version = 0;
    if (cudaRuntimeGetVersion(&info->runtime_version) != cudaSuccess) info->runtime_version = 0;
    return 0;
}

extern "C" void tf_cuda_versions(char *out, size_t n) {
    int rt = 0;
    if (cudaRuntimeGetVersion(&rt) != cudaSuccess) rt = 0;
    size_t v = cudnnGetVersion(); /* e.g. 91900 = 9.19.0 */
    snprintf(out, n, "cuDNN %zu.%zu.%zu, CUDA runtime %d.%d", v / 10000, v % 10000 / 100, v % 100,
             rt / 1000, rt % 1000 / 10);
}

extern "C" int tf_cuda_malloc(void **p, size_t bytes, char *err, size_t err_n) {
    *p = NULL;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        *p = NULL;
        char what[96];
        snprintf(what, sizeof what, "cudaMalloc of %zu bytes", bytes);
        return cuerr(err, err_n, what, e);
    }
    return 0;
}

extern "C" void tf_cuda_free(void *p) {
    if (p) cudaFree(p);
}

extern "C" int tf_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes, char *err,
                                  size_t err_n) {
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    return e == cudaSuccess ? 0 : cuerr(err, err_n, "cudaMemcpy host to device", e);
}

extern "C" int tf_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes, char *err,
                                  size_t err_n) {
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    return e == cudaSuccess ? 0 : cuerr(err, err_n, "cudaMemcpy device to host", e);
}

extern "C" int tf_cuda_memset(void *p, int value, size_t bytes, char *err, size_t err_n) {
    cudaError_t e = cudaMemset(p, value, bytes);
    return e == cudaSuccess ? 0 : cuerr(err, err_n, "cudaMemset", e);
}

extern "C" int tf_cuda_synchronize(char *err, size_t err_n) {
    cudaError_t e = cudaDeviceSynchronize();
    return e == cudaSuccess ? 0 : cuerr(err, err_n, "cudaDeviceSynchronize", e);
}
