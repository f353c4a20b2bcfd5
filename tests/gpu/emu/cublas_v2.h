/* CPU emulation of the few cuBLAS calls src/cuda/blas.cu makes (tests/gpu/run_emulated.sh):
 * the column-major GEMMs are OpenBLAS's cblas_sgemm (CblasColMajor), an implementation of
 * the same BLAS contract independent of the code under test; strided batches are a loop.
 * The math mode is recorded, not emulated (everything is fp32). Nothing fails. */
#ifndef TFSWA_EMU_CUBLAS_V2_H
#define TFSWA_EMU_CUBLAS_V2_H
#include <cblas.h>

#include "cuda_runtime_api.h"

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum {
    CUBLAS_DEFAULT_MATH = 0,
    CUBLAS_PEDANTIC_MATH = 2,
    CUBLAS_TF32_TENSOR_OP_MATH = 3
} cublasMath_t;
struct emu_cublas {
    cudaStream_t stream;
    cublasMath_t math;
};
typedef emu_cublas *cublasHandle_t;

static inline cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = new emu_cublas{nullptr, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasDestroy(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) {
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}
static inline const char *cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "emulated cuBLAS error";
}
static inline CBLAS_TRANSPOSE emu_op(cublasOperation_t o) {
    return o == CUBLAS_OP_T ? CblasTrans : CblasNoTrans;
}
/* the argument checks cuBLAS makes (column-major: lda >= rows of op(A) as stored) */
static inline int emu_gemm_ok(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              int lda, int ldb, int ldc) {
    int ra = ta == CUBLAS_OP_N ? m : k, rb = tb == CUBLAS_OP_N ? k : n;
    return m >= 0 && n >= 0 && k >= 0 && lda >= (ra > 1 ? ra : 1) && ldb >= (rb > 1 ? rb : 1) &&
           ldc >= (m > 1 ? m : 1);
}
static inline cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                                         int m, int n, int k, const float *alpha, const float *A,
                                         int lda, const float *B, int ldb, const float *beta,
                                         float *C, int ldc) {
    if (!emu_gemm_ok(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    cblas_sgemm(CblasColMajor, emu_op(ta), emu_op(tb), m, n, k, *alpha, A, lda, B, ldb, *beta, C,
                ldc);
    return CUBLAS_STATUS_SUCCESS;
}
static inline cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                                       cublasOperation_t tb, int m, int n, int k,
                                                       const float *alpha, const float *A, int lda,
                                                       long long sA, const float *B, int ldb,
                                                       long long sB, const float *beta, float *C,
                                                       int ldc, long long sC, int batch) {
    for (int i = 0; i < batch; i++) {
        cublasStatus_t s = cublasSgemm(h, ta, tb, m, n, k, alpha, A + i * sA, lda, B + i * sB, ldb,
                                       beta, C + i * sC, ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
    return CUBLAS_STATUS_SUCCESS;
}
#endif
