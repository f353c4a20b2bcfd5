/* Helpers the GPU test programs share (tests/gpu/test_cuda_*.c): the CUDA error check and
 * random host buffers. Define GPU_TEST_SEED before including to pick a program's inputs. */
#ifndef TFSWA_GPU_TEST_H
#define TFSWA_GPU_TEST_H
#include <cuda_runtime_api.h>
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
static float urand(float lo, float hi) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (float)((rng >> 40) / 16777216.0);
}

/* n floats uniform in [lo, hi) (exits on out of memory) */
static float *host(size_t n, float lo, float hi) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) p[i] = urand(lo, hi);
    return p;
}

static float *hcopy(const float *h, size_t n) {
    float *p = host(n, 0, 0);
    memcpy(p, h, n * sizeof *p);
    return p;
}

#endif
