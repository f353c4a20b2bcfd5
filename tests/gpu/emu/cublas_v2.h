/* CPU emulation of the few cuBLAS calls src/cuda/blas.cu makes (tests/gpu/run_emulated.sh):
 * the column-major GEMMs are OpenBLAS's cblas_sgemm (CblasColMajor), an implementation of
 * the same BLAS contract independent of the code under test; strided batches are a loop.
 * The math mode is recorded, not emulated (fp32). cublasGemmEx and its strided batches take
 * fp32 arrays only; with CUBLAS_COMPUTE_32F_FAST_16BF (_FAST_16F) their A and B are rounded
 * to bf16 (to binary16, by the compiler's _Float16 conversion), nearest even as the tensor
 * cores' conversion, before the fp32 sgemm. Bad arguments
 * (leading dimensions, data or compute types) give CUBLAS_STATUS_INVALID_VALUE. */
#ifndef TFSWA_EMU_CUBLAS_V2_H
#define TFSWA_EMU_CUBLAS_V2_H
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
typedef enum { CUDA_R_16F = 2, CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType_t;
typedef cudaDataType_t cudaDataType;
typedef enum {
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_COMPUTE_32F_FAST_16F = 74,
    CUBLAS_COMPUTE_32F_FAST_16BF = 75,
    CUBLAS_COMPUTE_32F_FAST_TF32 = 77
} cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;

/* a rounded copy of the stored column-major matrix (rows x cols, leading dimension ld) */
static inline float *emu_bf16_copy(const float *X, int rows, int cols, int ld, int fp16) {
    const size_t n = cols > 0 ? (size_t)(cols - 1) * ld + (size_t)rows : 0;
    float *c = (float *)malloc((n ? n : 1) * sizeof(float));
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (fp16) {
            c[i] = (float)(_Float16)X[i];
            continue;
        }
        uint32_t u;
        memcpy(&u, &X[i], 4);
        if ((u & 0x7fffffffu) <= 0x7f800000u) u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        memcpy(&c[i], &u, 4);
    }
    return c;
}
static inline cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta,
                                          cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType_t at,
                                          int lda, const void *B, cudaDataType_t bt, int ldb,
                                          const void *beta, void *C, cudaDataType_t ct, int ldc,
                                          cublasComputeType_t compute, cublasGemmAlgo_t) {
    if (at != CUDA_R_32F || bt != CUDA_R_32F || ct != CUDA_R_32F ||
        (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_16BF &&
         compute != CUBLAS_COMPUTE_32F_FAST_16F && compute != CUBLAS_COMPUTE_32F_FAST_TF32))
        return CUBLAS_STATUS_INVALID_VALUE;
    const int fp16 = compute == CUBLAS_COMPUTE_32F_FAST_16F;
    if (compute != CUBLAS_COMPUTE_32F_FAST_16BF && !fp16)
        return cublasSgemm(h, ta, tb, m, n, k, (const float *)alpha, (const float *)A, lda,
                           (const float *)B, ldb, (const float *)beta, (float *)C, ldc);
    if (!emu_gemm_ok(ta, tb, m, n, k, lda, ldb, ldc)) return CUBLAS_STATUS_INVALID_VALUE;
    float *a = emu_bf16_copy((const float *)A, ta == CUBLAS_OP_N ? m : k, ta == CUBLAS_OP_N ? k : m,
                             lda, fp16),
          *b = emu_bf16_copy((const float *)B, tb == CUBLAS_OP_N ? k : n, tb == CUBLAS_OP_N ? n : k,
                             ldb, fp16);
    cublasStatus_t s = a && b ? cublasSgemm(h, ta, tb, m, n, k, (const float *)alpha, a, lda, b,
                                            ldb, (const float *)beta, (float *)C, ldc)
                              : CUBLAS_STATUS_INVALID_VALUE;
    free(a), free(b);
    return s;
}
static inline cublasStatus_t cublasGemmStridedBatchedEx(
    cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
    const void *alpha, const void *A, cudaDataType_t at, int lda, long long sA, const void *B,
    cudaDataType_t bt, int ldb, long long sB, const void *beta, void *C, cudaDataType_t ct, int ldc,
    long long sC, int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    for (int i = 0; i < batch; i++) {
        cublasStatus_t s = cublasGemmEx(h, ta, tb, m, n, k, alpha, (const float *)A + i * sA, at,
                                        lda, (const float *)B + i * sB, bt, ldb, beta,
                                        (float *)C + i * sC, ct, ldc, compute, algo);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
    return CUBLAS_STATUS_SUCCESS;
}
#endif
