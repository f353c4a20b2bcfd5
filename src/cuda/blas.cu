/* cuBLAS launchers for nn.Linear and the attention core (see cuda/blas.h).
 *
 * Row-major to cuBLAS (column-major): a row-major (r, c) matrix with row stride ld is the
 * column-major (c, r) matrix with leading dimension ld, i.e. its transpose; so the
 * row-major C = A @ B is the column-major C^T = B^T A^T and every call below passes its
 * operands in swapped order. The attention GEMMs run once per head h as strided batches
 * over the sequences n (head h's Q, K, V are the D columns h*D.. of the 3C-wide qkv rows:
 * leading dimension 3C, sequence stride L*3C; att[n,h] has sequence stride H*L*L). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cuda/blas.h"
#include "cuda/elem.h"
#include "nn/elem.h"

/* sequences per backward chunk: bounds the workspace (as ATTN_CHUNK of nn/attn.c) */
#define ATTN_CHUNK 64

struct tf_cuda_blas {
    cublasHandle_t h;
    cudaStream_t stream;
    int ex; /* TF_CUDA_BLAS_BF16 / _FP16: the Ex GEMMs with this compute type */
    cublasComputeType_t compute;
    char err[256];
};

/* C = alpha op(A) op(B) + beta C (column-major): cublasSgemm, or with bf16/fp16 the same
 * call through cublasGemmEx on the fp32 arrays with 16-bit compute */
static cublasStatus_t gemm(const tf_cuda_blas *h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C, int ldc) {
    if (!h->ex) return cublasSgemm(h->h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
    return cublasGemmEx(h->h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, beta,
                        C, CUDA_R_32F, ldc, h->compute, CUBLAS_GEMM_DEFAULT);
}

/* gemm over `batch` matrices at strides sA, sB, sC */
static cublasStatus_t gemm_sb(const tf_cuda_blas *h, cublasOperation_t ta, cublasOperation_t tb,
                              int m, int n, int k, const float *alpha, const float *A, int lda,
                              long long sA, const float *B, int ldb, long long sB,
                              const float *beta, float *C, int ldc, long long sC, int batch) {
    if (!h->ex)
        return cublasSgemmStridedBatched(h->h, ta, tb, m, n, k, alpha, A, lda, sA, B, ldb, sB, beta,
                                         C, ldc, sC, batch);
    return cublasGemmStridedBatchedEx(h->h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, sA, B,
                                      CUDA_R_32F, ldb, sB, beta, C, CUDA_R_32F, ldc, sC, batch,
                                      h->compute, CUBLAS_GEMM_DEFAULT);
}

static int fail(tf_cuda_blas *h, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->err, sizeof h->err, fmt, ap);
    va_end(ap);
    return 1;
}

#define BL(what, call)                                                                             \
    do {                                                                                           \
        cublasStatus_t s_ = (call);                                                                \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                           \
            return fail(h, "cuBLAS: %s: %s", what, cublasGetStatusString(s_));                     \
    } while (0)
#define LAUNCHED(what)                                                                             \
    do {                                                                                           \
        cudaError_t e_ = cudaGetLastError();                                                       \
        if (e_ != cudaSuccess) return fail(h, "CUDA: %s: %s", what, cudaGetErrorString(e_));       \
    } while (0)

extern "C" int tf_cuda_blas_create(tf_cuda_blas **out, void *stream, int math, char *err,
                                   size_t err_n) {
    *out = NULL;
    tf_cuda_blas *h = (tf_cuda_blas *)calloc(1, sizeof *h);
    if (!h) {
        if (err && err_n) snprintf(err, err_n, "cuBLAS: out of host memory for the handle");
        return 1;
    }
    cublasStatus_t s = cublasCreate(&h->h);
    const char *what = "cublasCreate";
    if (s == CUBLAS_STATUS_SUCCESS) {
        what = "cublasSetStream";
        h->stream = (cudaStream_t)stream;
        s = cublasSetStream(h->h, h->stream);
    }
    if (s == CUBLAS_STATUS_SUCCESS) {
        what = "cublasSetMathMode";
        h->ex = math == TF_CUDA_BLAS_BF16 || math == TF_CUDA_BLAS_FP16;
        h->compute =
            math == TF_CUDA_BLAS_FP16 ? CUBLAS_COMPUTE_32F_FAST_16F : CUBLAS_COMPUTE_32F_FAST_16BF;
        s = cublasSetMathMode(h->h, math == TF_CUDA_BLAS_TF32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                    : h->ex                   ? CUBLAS_DEFAULT_MATH
                                                              : CUBLAS_PEDANTIC_MATH);
    }
    if (s != CUBLAS_STATUS_SUCCESS) {
        if (err && err_n) snprintf(err, err_n, "cuBLAS: %s: %s", what, cublasGetStatusString(s));
        if (h->h) cublasDestroy(h->h);
        free(h);
        return 1;
    }
    *out = h;
    return 0;
}

extern "C" void tf_cuda_blas_destroy(tf_cuda_blas *h) {
    if (!h) return;
    cublasDestroy(h->h);
    free(h);
}

extern "C" const char *tf_cuda_blas_error(const tf_cuda_blas *h) {
    return h->err;
}

extern "C" int tf_cuda_blas_set_error(tf_cuda_blas *h, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->err, sizeof h->err, fmt, ap);
    va_end(ap);
    return 1;
}

static unsigned grid_for(size_t n, unsigned bs) {
    size_t g = (n + bs - 1) / bs;
    return g > 65535u * 16u ? 65535u * 16u : (unsigned)g;
}

/* ---------------------------------------------------------------------- linear */

// out (N, OC) = bias (OC) broadcast, or 0
__global__ void fill_rows(float *out, const float *bias, size_t n, int OC) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = bias ? bias[i % OC] : 0.f;
}

// dbias (OC) += sum over n of dout (N, OC): one thread per column, rows in order (float, as
// the CPU)
__global__ void colsum_add(float *dbias, const float *dout, int N, int OC) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= OC) return;
    float acc = 0.f;
    for (int n = 0; n < N; n++) acc += dout[(size_t)n * OC + o];
    dbias[o] += acc;
}

extern "C" int tf_cuda_linear_forward(tf_cuda_blas *h, float *out, const float *inp,
                                      const float *weight, const float *bias, int N, int IC,
                                      int OC) {
    if (N <= 0 || OC <= 0) return 0;
    float one = 1.f, beta = 0.f;
    if (bias || IC <= 0) {
        size_t n = (size_t)N * OC;
        fill_rows<<<grid_for(n, 256), 256, 0, h->stream>>>(out, bias, n, OC);
        LAUNCHED("linear forward bias");
        beta = 1.f;
    }
    if (IC <= 0) return 0;
    // column-major out^T (OC, N) = W (OC, IC) [W^T in column-major, transposed] @ x^T (IC, N)
    BL("linear forward sgemm",
       gemm(h, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, &one, weight, IC, inp, IC, &beta, out, OC));
    return 0;
}

extern "C" int tf_cuda_linear_backward(tf_cuda_blas *h, float *dinp, float *dweight, float *dbias,
                                       const float *dout, const float *inp, const float *weight,
                                       int N, int IC, int OC) {
    if (N <= 0 || OC <= 0) return 0;
    float one = 1.f;
    if (IC > 0) {
        // dinp^T (IC, N) += W^T (IC, OC) @ dout^T (OC, N)
        if (dinp)
            BL("linear backward dinp sgemm", gemm(h, CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, &one,
                                                  weight, IC, dout, OC, &one, dinp, IC));
        // dW^T (IC, OC) += x^T (IC, N) @ dout (N, OC)
        BL("linear backward dweight sgemm", gemm(h, CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, &one, inp,
                                                 IC, dout, OC, &one, dweight, IC));
    }
    if (dbias) {
        colsum_add<<<(OC + 127) / 128, 128, 0, h->stream>>>(dbias, dout, N, OC);
        LAUNCHED("linear backward dbias");
    }
    return 0;
}

/* ------------------------------------------------------------------- attention */

// att (N, H, L, L) += bias_table[bias_index[ij] * H + h] (if any), then += mask[n % nW] (if
// any): the CPU's order of additions after the scaled product
__global__ void add_bias_mask(float *att, const float *bias_table, const int *bias_index,
                              const float *mask, int nW, int N, int H, int L) {
    const size_t LL = (size_t)L * L, n_all = (size_t)N * H * LL;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n_all;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t ij = i % LL, nh = i / LL;
        int h = (int)(nh % H), n = (int)(nh / H);
        float s = att[i];
        if (bias_table) s += bias_table[(size_t)bias_index[ij] * H + h];
        if (mask) s += mask[(size_t)(n % nW) * LL + ij];
        att[i] = s;
    }
}

__device__ inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// ds (rows, L) = p * (ds - sum_j p_j ds_j) in place: the softmax backward (nn/elem.h's
// tf_softmax_backward_dx) written, not added. One warp per row.
__global__ void softmax_bwd_inplace(float *ds, const float *p, size_t rows, int L) {
    const int lane = threadIdx.x % 32;
    const size_t nwarp = (size_t)gridDim.x * blockDim.x / 32;
    // whole warps run the same rows (blockDim is a multiple of 32)
    for (size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; r < rows; r += nwarp) {
        float *d = ds + r * L;
        const float *pr = p + r * L;
        float s = 0.f;
        for (int j = lane; j < L; j += 32) s += pr[j] * d[j];
        s = warp_sum(s);
        for (int j = lane; j < L; j += 32) d[j] = tf_softmax_backward_dx(pr[j], d[j], s);
    }
}

// dsum (H, LL) = sum over the nc sequences of ds (nc, H, LL), in sequence order
__global__ void sum_chunk(float *dsum, const float *ds, int nc, int H, size_t LL) {
    const size_t n_all = (size_t)H * LL;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n_all;
         i += (size_t)gridDim.x * blockDim.x) {
        float acc = 0.f;
        for (int c = 0; c < nc; c++) acc += ds[(size_t)c * n_all + i];
        dsum[i] = acc;
    }
}

// dbias_table (R, H) += the entries of dsum (H, LL) scattered through bias_index (LL):
// one thread per (r, h) gathers the positions with bias_index == r (no atomics)
__global__ void bias_gather(float *dbias_table, const float *dsum, const int *bias_index, int R,
                            int H, size_t LL) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= R * H) return;
    int r = i / H, h = i % H;
    const float *d = dsum + (size_t)h * LL;
    float acc = 0.f;
    for (size_t ij = 0; ij < LL; ij++)
        if (bias_index[ij] == r) acc += d[ij];
    dbias_table[i] += acc;
}

extern "C" int tf_cuda_attention_forward(tf_cuda_blas *h, float *out, float *att, const float *qkv,
                                         const float *bias_table, const int *bias_index,
                                         const float *mask, int nW, int N, int L, int C, int H) {
    if (N <= 0 || L <= 0 || H <= 0) return 0;
    const int D = C / H, C3 = 3 * C;
    const float scale = 1.f / sqrtf((float)D), one = 1.f, zero = 0.f;
    const long long LL = (long long)L * L, sq = (long long)L * C3;
    for (int hd = 0; hd < H; hd++) {
        const float *Q = qkv + (size_t)hd * D, *K = Q + C;
        // S (L, L) = scale Q K^T: column-major S_cm = scale K_cm^T Q_cm
        BL("attention forward Q K^T",
           gemm_sb(h, CUBLAS_OP_T, CUBLAS_OP_N, L, L, D, &scale, K, C3, sq, Q, C3, sq, &zero,
                   att + (size_t)hd * LL, L, (long long)H * LL, N));
    }
    if (bias_table || mask) {
        size_t n = (size_t)N * H * LL;
        add_bias_mask<<<grid_for(n, 256), 256, 0, h->stream>>>(att, bias_table, bias_index, mask,
                                                               nW, N, H, L);
        LAUNCHED("attention forward bias/mask");
    }
    int e = tf_cuda_softmax_forward(att, att, N * H * L, L, h->stream);
    if (e) return fail(h, "CUDA: attention softmax: %s", cudaGetErrorString((cudaError_t)e));
    for (int hd = 0; hd < H; hd++) {
        const float *V = qkv + 2 * C + (size_t)hd * D;
        // out_cm (D, L) = V_cm (D, L) @ P_cm (L, L)
        BL("attention forward P V",
           gemm_sb(h, CUBLAS_OP_N, CUBLAS_OP_N, D, L, L, &one, V, C3, sq, att + (size_t)hd * LL, L,
                   (long long)H * LL, &zero, out + (size_t)hd * D, C, (long long)L * C, N));
    }
    return 0;
}

extern "C" size_t tf_cuda_attention_workspace_floats(int N, int L, int H) {
    size_t chunk = N < ATTN_CHUNK ? (size_t)(N > 0 ? N : 0) : ATTN_CHUNK;
    return (chunk + 1) * (size_t)(H > 0 ? H : 0) * L * L;
}

extern "C" int tf_cuda_attention_backward(tf_cuda_blas *h, float *dqkv, float *dbias_table,
                                          const float *dout, const float *qkv, const float *att,
                                          const int *bias_index, int R, int N, int L, int C, int H,
                                          float *workspace) {
    if (N <= 0 || L <= 0 || H <= 0) return 0;
    const int D = C / H, C3 = 3 * C;
    const float scale = 1.f / sqrtf((float)D), one = 1.f, zero = 0.f;
    const long long LL = (long long)L * L, sq = (long long)L * C3, sa = (long long)H * LL;
    const size_t chunk = N < ATTN_CHUNK ? (size_t)N : ATTN_CHUNK;
    float *dsum = workspace + chunk * H * LL;
    for (int n0 = 0; n0 < N; n0 += ATTN_CHUNK) {
        const int nc = N - n0 < ATTN_CHUNK ? N - n0 : ATTN_CHUNK;
        const float *qkv0 = qkv + (size_t)n0 * sq, *P0 = att + (size_t)n0 * sa;
        const float *dO0 = dout + (size_t)n0 * L * C;
        float *dqkv0 = dqkv + (size_t)n0 * sq;
        for (int hd = 0; hd < H; hd++) {
            const float *V = qkv0 + 2 * C + (size_t)hd * D, *dO = dO0 + (size_t)hd * D;
            const float *P = P0 + (size_t)hd * LL;
            float *dS = workspace + (size_t)hd * LL, *dV = dqkv0 + 2 * C + (size_t)hd * D;
            // dP (L, L) = dO V^T: column-major dP_cm = V_cm^T dO_cm
            BL("attention backward dO V^T",
               gemm_sb(h, CUBLAS_OP_T, CUBLAS_OP_N, L, L, D, &one, V, C3, sq, dO, C,
                       (long long)L * C, &zero, dS, L, sa, nc));
            // dV (L, D) += P^T dO: column-major dV_cm = dO_cm P_cm^T
            BL("attention backward P^T dO",
               gemm_sb(h, CUBLAS_OP_N, CUBLAS_OP_T, D, L, L, &one, dO, C, (long long)L * C, P, L,
                       sa, &one, dV, C3, sq, nc));
        }
        size_t rows = (size_t)nc * H * L;
        softmax_bwd_inplace<<<grid_for(rows * 32, 256), 256, 0, h->stream>>>(workspace, P0, rows,
                                                                             L);
        LAUNCHED("attention backward softmax");
        for (int hd = 0; hd < H; hd++) {
            const float *Q = qkv0 + (size_t)hd * D, *K = Q + C;
            const float *dS = workspace + (size_t)hd * LL;
            float *dQ = dqkv0 + (size_t)hd * D, *dK = dQ + C;
            // dQ (L, D) += scale dS K: column-major dQ_cm = scale K_cm dS_cm
            BL("attention backward dS K", gemm_sb(h, CUBLAS_OP_N, CUBLAS_OP_N, D, L, L, &scale, K,
                                                  C3, sq, dS, L, sa, &one, dQ, C3, sq, nc));
            // dK (L, D) += scale dS^T Q: column-major dK_cm = scale Q_cm dS_cm^T
            BL("attention backward dS^T Q", gemm_sb(h, CUBLAS_OP_N, CUBLAS_OP_T, D, L, L, &scale, Q,
                                                    C3, sq, dS, L, sa, &one, dK, C3, sq, nc));
        }
        if (dbias_table && R > 0) {
            size_t n = (size_t)H * LL;
            sum_chunk<<<grid_for(n, 256), 256, 0, h->stream>>>(dsum, workspace, nc, H, (size_t)LL);
            LAUNCHED("attention backward bias sum");
            bias_gather<<<(R * H + 127) / 128, 128, 0, h->stream>>>(dbias_table, dsum, bias_index,
                                                                    R, H, (size_t)LL);
            LAUNCHED("attention backward bias gather");
        }
    }
    return 0;
}
