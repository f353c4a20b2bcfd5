/* The cuBLAS handle of a GPU test program (tests/gpu/test_cuda_blasfft.c, test_cuda_tblock.c)
 * and BL(call): a failing cuBLAS-side launcher fails the test with the handle's message.
 * Include after test.h and gpu_test.h. */
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

#endif
