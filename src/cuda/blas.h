/* cuBLAS for nn.Linear (src/nn/linear.c) and the whole window-attention core of
 * src/nn/attn.c (tf_attention_forward / tf_attention_backward), as C-callable launchers
 * (src/cuda/blas.cu). No CUDA header here: every tensor pointer is a DEVICE pointer and the
 * stream is the one the handle was created with (a cudaStream_t as void *, NULL: the
 * legacy default stream).
 *
 * Return value of every launcher: 0 on success, else nonzero with a one-line message in
 * tf_cuda_blas_error(h) (a cuBLAS status or a CUDA launch error; errors of the kernels
 * themselves surface at the next synchronisation).
 *
 * Math: fp32 GEMMs with CUBLAS_PEDANTIC_MATH (no TF32 tensor cores, no reduced-precision
 * reductions: fp32 arithmetic as the CPU's OpenBLAS) unless the handle was created with
 * TF_CUDA_BLAS_TF32 (CUBLAS_TF32_TENSOR_OP_MATH) or TF_CUDA_BLAS_BF16 / TF_CUDA_BLAS_FP16
 * (--use_amp, amp_dtype bf16 / fp16: every GEMM through cublasGemmEx /
 * cublasGemmStridedBatchedEx on the same fp32 arrays with CUBLAS_COMPUTE_32F_FAST_16BF /
 * _FAST_16F: operands rounded to 16 bits, fp32 sums, fp32 results; the softmax, bias and
 * reductions stay fp32). fp32 results agree with the CPU to rounding, not
 * bitwise (different summation order). The non-GEMM parts are deterministic kernels (no
 * atomics). tests/gpu/test_cuda_blasfft.c checks each launcher against the CPU function.
 *
 * Usage:
 *     tf_cuda_blas *h;
 *     char err[256];
 *     if (tf_cuda_blas_create(&h, stream, TF_CUDA_BLAS_FP32, err, sizeof err)) fail(err);
 *     if (tf_cuda_linear_forward(h, out, x, W, b, N, IC, OC)) fail(tf_cuda_blas_error(h));
 *     tf_cuda_blas_destroy(h);
 */
#ifndef TFSWA_CUDA_BLAS_H
#define TFSWA_CUDA_BLAS_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tf_cuda_blas tf_cuda_blas;

/* The GEMMs' arithmetic (see Math above) */
enum { TF_CUDA_BLAS_FP32 = 0, TF_CUDA_BLAS_TF32 = 1, TF_CUDA_BLAS_BF16 = 2, TF_CUDA_BLAS_FP16 = 3 };
/* A cuBLAS handle bound to stream (void * = cudaStream_t) on the current device; math: one
 * of TF_CUDA_BLAS_* (FP32 = 0 the default). 0 on success; else 1 with a message in err. */
int tf_cuda_blas_create(tf_cuda_blas **out, void *stream, int math, char *err, size_t err_n);
/* NULL is fine */
void tf_cuda_blas_destroy(tf_cuda_blas *h);
/* the message of the last failing launcher ("" when none) */
const char *tf_cuda_blas_error(const tf_cuda_blas *h);
/* sets that message (printf format) for launchers built on this handle elsewhere (cuda/tblock.cu
 * reports its own launches' errors here); returns 1, the failing return value */
int tf_cuda_blas_set_error(tf_cuda_blas *h, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ------------------------------------------------------- linear (nn/linear.c) */
/* tf_linear_forward: out (N, OC) = inp (N, IC) @ weight (OC, IC)^T + bias (OC) (bias NULL:
 * none; IC <= 0: out = bias or 0; N <= 0 or OC <= 0: nothing). out is written, not read. */
int tf_cuda_linear_forward(tf_cuda_blas *h, float *out, const float *inp, const float *weight,
                           const float *bias, int N, int IC, int OC);
/* tf_linear_backward: dinp (N, IC) += dout @ weight (dinp NULL: skipped),
 * dweight (OC, IC) += dout^T @ inp, dbias (OC) += column sums of dout (NULL: skipped);
 * dout (N, OC), inp (N, IC). */
int tf_cuda_linear_backward(tf_cuda_blas *h, float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp, const float *weight, int N, int IC,
                            int OC);

/* ---------------------------------------------------- attention (nn/attn.c) */
/* tf_attention_forward: per sequence n and head h (D = C/H, scale = 1/sqrt(D)):
 *   att[n,h] (L, L) = softmax(scale * Q K^T + bias + mask[n % nW])   (saved for backward)
 *   out[n, :, h*D:(h+1)*D] (L, D) = att[n,h] @ V
 * with Q, K, V the column blocks [0, C), [C, 2C), [2C, 3C) of qkv (N, L, 3C), head h the
 * D columns h*D.. of each; bias[i,j] = bias_table[bias_index[i*L + j] * H + h]
 * (bias_table (R, H) and bias_index (L, L), or bias_table NULL: none); mask (nW, L, L) or
 * NULL. out (N, L, C), att (N, H, L, L) are written. */
int tf_cuda_attention_forward(tf_cuda_blas *h, float *out, float *att, const float *qkv,
                              const float *bias_table, const int *bias_index, const float *mask,
                              int nW, int N, int L, int C, int H);
/* floats of workspace tf_cuda_attention_backward needs: chunk * H * L * L + H * L * L with
 * chunk = min(N, 64) sequences (the softmax input gradients of a chunk, and their sum over
 * the chunk for the bias table) */
size_t tf_cuda_attention_workspace_floats(int N, int L, int H);
/* tf_attention_backward: dqkv (N, L, 3C) +=, dbias_table (R, H) += (NULL: skipped; R rows,
 * the number of relative positions: every bias_index entry is in [0, R)); dout (N, L, C),
 * qkv (N, L, 3C), att (N, H, L, L) from the forward; workspace of
 * tf_cuda_attention_workspace_floats(N, L, H) floats (device). */
int tf_cuda_attention_backward(tf_cuda_blas *h, float *dqkv, float *dbias_table, const float *dout,
                               const float *qkv, const float *att, const int *bias_index, int R,
                               int N, int L, int C, int H, float *workspace);

#ifdef __cplusplus
}
#endif
#endif
