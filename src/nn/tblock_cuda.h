/* The pre-LN transformer block of nn/tblock.c (TSA, FSA, Swin W-MSA / SW-MSA) on the
 * device (src/cuda/tblock.cu): LayerNorm, softmax and GELU of elem.cu, linear and attention
 * of blas.cu. The same math, the same parameter layout (tf_tblock_params_point) and the
 * same saved layout (tf_tblock_saved_point) as tf_tblock_forward/backward, with every
 * pointer in DEVICE memory. stream: a cudaStream_t as void * (the one h is bound to). The
 * return value is 0 on success, else 1 with a one-line message in tf_cuda_blas_error(h) (a
 * cuBLAS status, or the failing launch's / runtime call's cudaError_t string); errors of the
 * kernels themselves surface at the next synchronisation. Nothing synchronises or allocates. */
#ifndef TFSWA_NN_TBLOCK_CUDA_H
#define TFSWA_NN_TBLOCK_CUDA_H
#include <stddef.h>

#include "cuda/blas.h"
#include "nn/attn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tf_tblock_forward: out (N, L, C) (written), s filled, inp (N, L, C); bias_index (L, L)
 * ints (device) with p->rel_bias_table, or both NULL; mask (nW, L, L) or NULL */
int tf_cuda_tblock_forward(tf_cuda_blas *h, float *out, const tf_tblock_saved *s, const float *inp,
                           const tf_tblock_params *p, const int *bias_index, const float *mask,
                           int nW, int N, int L, int C, int H, int Hd, void *stream);
/* floats of device workspace tf_cuda_tblock_backward needs (the forward needs none):
 * NL*(2C + max(Hd, 3C) + max(Hd, C)) + max(attention backward's, LayerNorm backward's) */
size_t tf_cuda_tblock_workspace_floats(int N, int L, int C, int H, int Hd);
/* tf_tblock_backward: dinp (N, L, C) +=, g (the gradients, same layout) +=; dout (N, L, C);
 * s, inp as the forward left them; R: rows of the relative-position table (0 without) */
int tf_cuda_tblock_backward(tf_cuda_blas *h, float *dinp, const tf_tblock_params *g,
                            const float *dout, const tf_tblock_saved *s, const float *inp,
                            const tf_tblock_params *p, const int *bias_index, int R, int N, int L,
                            int C, int H, int Hd, float *workspace, void *stream);

#ifdef __cplusplus
}
#endif
#endif
