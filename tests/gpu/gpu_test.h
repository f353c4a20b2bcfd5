/* Helpers the GPU test programs share (tests/gpu/test_cuda_*.c): the CUDA error check and
 * random host buffers, device-to-host copies and the GPU-vs-CPU comparison. Define GPU_TEST_SEED
 * before including to pick a program's inputs. */
#ifndef TFSWA_GPU_TEST_H
#define TFSWA_GPU_TEST_H
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GPU_TEST_SEED
#define GPU_TEST_SEED 0x9e3779b97f4a7c15ull
#endif

/* a failing CUDA call ends the program: the device is unusable for the rest */
#define CU(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (cudaError_t)(call);                                                      \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t rng = GPU_TEST_SEED;
/* uniform in [lo, hi) */
static inline float urand(float lo, float hi) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng >> 40) / 16777216.0);
}

/* n floats uniform in [lo, hi) (exits on out of memory) */
static inline float *host(size_t n, float lo, float hi) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = urand(lo, hi);
    return p;
}

static inline float *hcopy(const float *h, size_t n) {
    float *p = host(n, 0, 0);
    memcpy(p, h, n * sizeof *p);
    return p;
}

/* h (n) = the device array d, after the stream's work */
static inline void down(float *h, const float *d, size_t n) {
    CU(cudaDeviceSynchronize());
    CU(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost));
}

/* a device copy of the host array h (n floats) */
static inline float *dev_copy(const float *h, size_t n) {
    void *d = NULL;
    CU(cudaMalloc(&d, (n ? n : 1) * sizeof(float)));
    CU(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

/* max |g - c| <= tol * max(1, max |c|); prints the worst element when not */
static inline int close_to(const char *what, const float *g, const float *c, size_t n, double tol) {
    double worst = 0, scale = 1;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(c[i]));
        double e = fabs((double)g[i] - c[i]);
        if (!(e <= worst)) worst = e, at = i; /* NaN counts as worst */
    }
    int ok = worst <= tol * scale;
    if (!ok)
        fprintf(stderr, "  %s: max error %g at %zu (gpu %.9g, cpu %.9g), allowed %g\n", what, worst,
                at, g[at], c[at], tol * scale);
    return ok;
}

/* max |a - b| <= tol * max |b| over n (a: device, b: CPU, on the host); only where |sel| >=
 * 1e-2 max |sel| when sel is not NULL (and then says how many elements that was) */
static inline int near_where(const char *what, const float *a, const float *b, size_t n, double tol,
                             const float *sel) {
    double worst = 0, scale = 0, smax = 0;
    size_t at = 0, used = 0;
    for (size_t i = 0; sel && i < n; i++) smax = fmax(smax, fabs(sel[i]));
    for (size_t i = 0; i < n; i++) {
        if (sel && fabs(sel[i]) < 1e-2 * smax) continue;
        used++;
        scale = fmax(scale, fabs(b[i]));
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) worst = e, at = i;
    }
    if (sel) printf("  %s: %zu of %zu elements compared\n", what, used, n);
    if (worst <= tol * scale) return 1;
    fprintf(stderr, "  %s: max error %g at %zu (device %.9g, cpu %.9g), allowed %g\n", what, worst,
            at, a[at], b[at], tol * scale);
    return 0;
}

/* the device array d (n) against the CPU result c (n) */
static inline int dclose(const char *what, const float *d, const float *c, size_t n, double tol) {
    float *g = host(n, 0, 0);
    down(g, d, n);
    int ok = close_to(what, g, c, n, tol);
    free(g);
    return ok;
}

/* 1 when a CUDA device is usable; else prints "<prog>: no CUDA device (why)" */
static inline int gpu_present(const char *prog) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaSuccess && count > 0) return 1;
    printf("%s: no CUDA device (%s)\n", prog,
           e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    return 0;
}

#endif
