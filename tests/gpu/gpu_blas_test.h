/* The cuBLAS handle of a GPU test program (tests/gpu/test_cuda_blasfft.c, test_cuda_tblock.c)
 * and BL(call): a failing cuBLAS-side launcher fails the test with the handle's message.
 * gpu_blas_open(prog): the device check and the handle. Include after test.h and
 * gpu_test.h. */
#ifndef TFSWA_GPU_BLAS_TEST_H
#define TFSWA_GPU_BLAS_TEST_H
#include "cuda/blas.h"

static tf_cuda_blas *g_blas;

#define BL(call)                                                                                   \
    do {                                                                                           \
        if (call) {                                                                                \
            fprintf(stderr, "  %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                        \
                    tf_cuda_blas_error(g_blas));                                                   \
            t_cur_failed_ = 1;                                                                     \
        }                                                                                          \
    } while (0)

/* gpu_present(prog), then g_blas on the default stream: 1, else 0 with the reason printed */
static inline int gpu_blas_open(const char *prog) {
    if (!gpu_present(prog)) return 0;
    char err[256];
    if (tf_cuda_blas_create(&g_blas, NULL, 0, err, sizeof err)) {
        printf("%s: %s\n", prog, err);
        return 0;
    }
    return 1;
}

#endif
