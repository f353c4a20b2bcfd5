/* The pre-LN transformer block on the device (see nn/tblock_cuda.h): host code composing the
 * launchers of elem.cu (LayerNorm, GELU) and blas.cu (linear, attention) in the order of
 * tf_tblock_forward / tf_tblock_backward (src/nn/tblock.c), plus one residual-add kernel.
 * Every launch goes to the stream the blas handle is bound to; nothing synchronises.
 *
 * Compiles on its own (no GPU needed):
 *   nvcc -std=c++17 -O2 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
 *        -Isrc -Iinclude -c src/cuda/tblock.cu -o /tmp/tblock.o
 */
#include <cuda_runtime.h>

#include <stddef.h>

extern "C" {
#include "cuda/blas.h"
#include "cuda/elem.h"
#include "nn/tblock_cuda.h"
#include "nn/attn.h"
}

namespace {

constexpr int NT = 256; /* threads per block */

inline size_t zmax(size_t a, size_t b) {
    return a > b ? a : b;
}

/* blocks for a grid-stride loop over n items */
inline unsigned grid_for(size_t n) {
    size_t b = (n + NT - 1) / NT;
    return (unsigned)(b < 65536 ? (b ? b : 1) : 65536);
}

// y (n) += x (n)
__global__ void add_k(float *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)NT + threadIdx.x; i < n; i += (size_t)gridDim.x * NT)
        y[i] += x[i];
}

/* y (n) += x (n) on stream s; 0, else 1 with the message in h */
int add(tf_cuda_blas *h, float *y, const float *x, size_t n, cudaStream_t s, const char *what) {
    if (!n) return 0;
    add_k<<<grid_for(n), NT, 0, s>>>(y, x, n);
    cudaError_t e = cudaGetLastError();
    return e ? tf_cuda_blas_set_error(h, "CUDA: tblock %s: %s", what, cudaGetErrorString(e)) : 0;
}

/* an elem.cu launcher's or runtime call's cudaError_t as the return convention */
int cu(tf_cuda_blas *h, int e, const char *what) {
    return e ? tf_cuda_blas_set_error(h, "CUDA: tblock %s: %s", what,
                                      cudaGetErrorString((cudaError_t)e))
             : 0;
}

} // namespace

/* a failing step returns 1; its message is already in h */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if (call) return 1;                                                                        \
    } while (0)

extern "C" {

// out (N, L, C), inp (N, L, C)
int tf_cuda_tblock_forward(tf_cuda_blas *h, float *out, const tf_tblock_saved *s, const float *inp,
                           const tf_tblock_params *p, const int *bias_index, const float *mask,
                           int nW, int N, int L, int C, int H, int Hd, void *stream) {
    if (N <= 0 || L <= 0 || C <= 0) return 0;
    const int NL = N * L;
    const size_t n = (size_t)NL * C;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    /* x1 = inp + proj(attn(qkv(ln1(inp)))) */
    TRY(cu(h,
           tf_cuda_layernorm_forward(s->ln1, s->ln1_mean, s->ln1_rstd, inp, p->ln1_w, p->ln1_b, NL,
                                     C, stream),
           "ln1 forward"));
    TRY(tf_cuda_linear_forward(h, s->qkv, s->ln1, p->qkv_w, p->qkv_b, NL, C, 3 * C));
    TRY(tf_cuda_attention_forward(h, s->atty, s->att, s->qkv, p->rel_bias_table, bias_index, mask,
                                  nW, N, L, C, H));
    TRY(tf_cuda_linear_forward(h, s->x1, s->atty, p->proj_w, p->proj_b, NL, C, C));
    TRY(add(h, s->x1, inp, n, st, "attention residual"));
    /* out = x1 + fc2(gelu(fc1(ln2(x1)))) */
    TRY(cu(h,
           tf_cuda_layernorm_forward(s->ln2, s->ln2_mean, s->ln2_rstd, s->x1, p->ln2_w, p->ln2_b,
                                     NL, C, stream),
           "ln2 forward"));
    TRY(tf_cuda_linear_forward(h, s->fc1, s->ln2, p->fc1_w, p->fc1_b, NL, C, Hd));
    TRY(cu(h, tf_cuda_gelu_forward(s->gelu, s->fc1, (size_t)NL * Hd, stream), "gelu forward"));
    TRY(tf_cuda_linear_forward(h, out, s->gelu, p->fc2_w, p->fc2_b, NL, Hd, C));
    TRY(add(h, out, s->x1, n, st, "mlp residual"));
    return 0;
}

/* X (NL, C) | A (NL, max(Hd, 3C)) | B (NL, max(Hd, C)) | Cc (NL, C) | shared: the attention
 * backward's workspace, or the LayerNorm backward's (never both at once) */
size_t tf_cuda_tblock_workspace_floats(int N, int L, int C, int H, int Hd) {
    if (N <= 0 || L <= 0 || C <= 0) return 0;
    const size_t nl = (size_t)N * L, c = (size_t)C, hd = Hd > 0 ? (size_t)Hd : 0;
    return nl * (2 * c + zmax(hd, 3 * c) + zmax(hd, c)) +
           zmax(tf_cuda_attention_workspace_floats(N, L, H),
                tf_cuda_layernorm_backward_workspace_floats(N * L, C));
}

// dinp (N, L, C) +=, dout (N, L, C), inp (N, L, C)
int tf_cuda_tblock_backward(tf_cuda_blas *h, float *dinp, const tf_tblock_params *g,
                            const float *dout, const tf_tblock_saved *s, const float *inp,
                            const tf_tblock_params *p, const int *bias_index, int R, int N, int L,
                            int C, int H, int Hd, float *workspace, void *stream) {
    if (N <= 0 || L <= 0 || C <= 0) return 0;
    const int NL = N * L;
    const size_t nl = (size_t)NL, n = nl * C, nh = nl * (Hd > 0 ? (size_t)Hd : 0);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    float *X = workspace;
    float *A = X + n;
    float *Bf = A + nl * zmax(Hd > 0 ? (size_t)Hd : 0, 3 * (size_t)C);
    float *Cc = Bf + nl * zmax(Hd > 0 ? (size_t)Hd : 0, (size_t)C);
    float *shared = Cc + n; /* attention or LayerNorm backward workspace */

    /* MLP branch: out = x1 + fc2(gelu(fc1(ln2(x1)))); dx1 = dout (residual) + ... */
    TRY(cu(h, cudaMemcpyAsync(X, dout, n * sizeof(float), cudaMemcpyDeviceToDevice, st),
           "copy dout"));
    float *dgelu = A, *dfc1 = Bf, *dln2 = Cc;
    TRY(cu(h, cudaMemsetAsync(dgelu, 0, nh * sizeof(float), st), "clear dgelu"));
    TRY(tf_cuda_linear_backward(h, dgelu, g->fc2_w, g->fc2_b, dout, s->gelu, p->fc2_w, NL, Hd, C));
    TRY(cu(h, cudaMemsetAsync(dfc1, 0, nh * sizeof(float), st), "clear dfc1"));
    TRY(cu(h, tf_cuda_gelu_backward(dfc1, dgelu, s->fc1, nh, stream), "gelu backward"));
    TRY(cu(h, cudaMemsetAsync(dln2, 0, n * sizeof(float), st), "clear dln2"));
    TRY(tf_cuda_linear_backward(h, dln2, g->fc1_w, g->fc1_b, dfc1, s->ln2, p->fc1_w, NL, C, Hd));
    TRY(cu(h,
           tf_cuda_layernorm_backward(X, g->ln2_w, g->ln2_b, dln2, s->x1, p->ln2_w, s->ln2_mean,
                                      s->ln2_rstd, NL, C, shared, stream),
           "ln2 backward"));

    /* attention branch: x1 = inp + proj(attn(qkv(ln1(inp)))) */
    TRY(add(h, dinp, X, n, st, "residual backward"));
    float *datty = Cc, *dqkv = A, *dln1 = Bf;
    TRY(cu(h, cudaMemsetAsync(datty, 0, n * sizeof(float), st), "clear datty"));
    TRY(tf_cuda_linear_backward(h, datty, g->proj_w, g->proj_b, X, s->atty, p->proj_w, NL, C, C));
    TRY(cu(h, cudaMemsetAsync(dqkv, 0, 3 * n * sizeof(float), st), "clear dqkv"));
    TRY(tf_cuda_attention_backward(h, dqkv, p->rel_bias_table ? g->rel_bias_table : NULL, datty,
                                   s->qkv, s->att, bias_index, p->rel_bias_table ? R : 0, N, L, C,
                                   H, shared));
    TRY(cu(h, cudaMemsetAsync(dln1, 0, n * sizeof(float), st), "clear dln1"));
    TRY(tf_cuda_linear_backward(h, dln1, g->qkv_w, g->qkv_b, dqkv, s->ln1, p->qkv_w, NL, C, 3 * C));
    TRY(cu(h,
           tf_cuda_layernorm_backward(dinp, g->ln1_w, g->ln1_b, dln1, inp, p->ln1_w, s->ln1_mean,
                                      s->ln1_rstd, NL, C, shared, stream),
           "ln1 backward"));
    return 0;
}

} // extern "C"
