/* TFSWA-ResUNet training forward and backward on a CUDA device (see model_cuda.h). The graph
 * is model/forward.c's, step by step, with the whole batch in each launch. */
#include "model/model_cuda.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/blas.h"
#include "cuda/elem.h"
#include "cuda/fft.h"
#include "nn/tblock_cuda.h"
#include "dsp/stft.h"
#include "model/model_internal.h"
#include "nn/attn.h"

#define TF_DM_EPS      1e-5f /* TF_BN_EPS */
#define TF_DM_MOMENTUM 0.1f  /* TF_BN_MOMENTUM */

struct tf_dmodel {
    tf_arch a;
    tf_dlay y;
    tf_param_map pm; /* pointers into the device blocks */
    float *params, *grads, *buffers, *acts, *work;
    size_t bytes_params, bytes_acts, bytes_work, bytes_fft;
    tf_kernels *kern;
    tf_cuda_blas *blas;
    tf_cuda_stft *fft;
    int have_fwd;
    int infer; /* tf_dmodel_create_infer: no gradients, eval forward only */
    int B;     /* of the last forward */
};

/* ------------------------------------------------------------------ error plumbing */

static tf_status cuda_fail(const char *what, int code) {
    return tf_err(TF_EINTERNAL, "cuda device model: %s failed (%s)", what,
                  cudaGetErrorString((cudaError_t)code));
}

/* a launcher's return value (its cudaError_t) */
#define LAUNCH(what, call)                                                                         \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_) return cuda_fail(what, rc_);                                                      \
    } while (0)
/* a cuBLAS-side launcher (1 = failure, message in the handle) */
#define BLAS(what, call)                                                                           \
    do {                                                                                           \
        if (call)                                                                                  \
            return tf_err(TF_EINTERNAL, "cuda device model: %s: %s", what,                         \
                          tf_cuda_blas_error(d->blas));                                            \
    } while (0)
#define FFT(what, call)                                                                            \
    do {                                                                                           \
        if (call)                                                                                  \
            return tf_err(TF_EINTERNAL, "cuda device model: %s: %s", what,                         \
                          tf_cuda_stft_error(d->fft));                                             \
    } while (0)

static tf_status zero(float *p, size_t n) {
    cudaError_t e = cudaMemsetAsync(p, 0, n * sizeof(float), 0);
    return e == cudaSuccess ? TF_OK : cuda_fail("cudaMemsetAsync", e);
}

static float *W(tf_dmodel *d, size_t off) {
    return d->work + off;
}
/* the saved block; an inference model's layout has everything in the workspace */
static float *A(tf_dmodel *d, size_t off) {
    return (d->y.infer ? d->work : d->acts) + off;
}
/* a block's insides (Conv: c1, o; TFSWA: tok[k][1..3], tsv): saved in the activation block,
 * or with checkpointing in the workspace's recompute scratch (model/dlayout.h) */
static float *INS(tf_dmodel *d, size_t off) {
    return d->y.ckpt ? d->work + off : A(d, off);
}

/* ------------------------------------------------------- bf16 storage (use_amp) */

/* The fp32 values of the stored map src (n values) for a kernel to read: src itself in an
 * fp32 layout; with bf16 storage (y.bf) widened into the staging map `stage` */
static tf_status load_map(tf_dmodel *d, const float **out, const float *src, float *stage,
                          size_t n) {
    *out = src;
    if (!d->y.bf) return TF_OK;
    LAUNCH("bf16 widen",
           tf_cuda_half_unpack(stage, (const uint16_t *)(const void *)src, n, 0, 0, NULL));
    *out = stage;
    return TF_OK;
}

/* The stored map dst (B, Cd, hw), channels [c0, c0 + Cs) = buf (B, Cs, hw): an fp32 layout
 * copies (nothing when buf is dst); bf16 rounds, and with round = 1 buf takes the rounded
 * values too (the forward goes on with what was stored, as the CPU model's sstore) */
static tf_status store_map(tf_dmodel *d, float *dst, int Cd, int c0, float *buf, int B, int Cs,
                           size_t hw, int round) {
    if (d->y.bf) {
        LAUNCH("bf16 store",
               tf_cuda_bf16_pack((uint16_t *)(void *)dst, Cd, c0, buf, B, Cs, hw, round, NULL));
        return TF_OK;
    }
    if (dst != buf) LAUNCH("copy", tf_cuda_copy_channels(dst, Cd, c0, buf, B, Cs, hw, NULL));
    return TF_OK;
}

/* a skip gradient (B, c_l, H_l, W_l): in its decoder input's bytes, or its own workspace */
static float *DSK(tf_dmodel *d, int l) {
    return d->y.dskip_w[l] ? W(d, d->y.dskip[l]) : A(d, d->y.dskip[l]);
}

/* ---------------------------------------------------------------------- life cycle */

static tf_status dalloc(float **p, size_t bytes, const char *what) {
    cudaError_t e = cudaMalloc((void **)p, bytes ? bytes : 256);
    if (e != cudaSuccess) {
        *p = NULL;
        return tf_err(TF_EUSER, "cuda device model: cudaMalloc of %zu bytes (%s) failed: %s", bytes,
                      what, cudaGetErrorString(e));
    }
    return TF_OK;
}

static tf_status create(tf_dmodel **out, const tf_arch *a, int B, int64_t N, tf_kernels *kern,
                        const void *stft, int infer) {
    *out = NULL;
    tf_dmodel *d = tf_calloc(1, sizeof *d, "device model");
    if (!d) return TF_EINTERNAL;
    d->a = *a;
    if (infer) d->a.act_dtype = TF_DT_FP32; /* separation runs fp32 (dlayout.h) */
    d->kern = kern;
    d->infer = infer;
    tf_status s =
        infer ? tf_dlayout_infer(&d->y, &d->a, B, N, kern) : tf_dlayout(&d->y, &d->a, B, N, kern);
    if (s != TF_OK) goto fail;
    if ((s = tf_param_map_create(&d->pm, a)) != TF_OK) goto fail;
    d->bytes_params = d->pm.n_params * sizeof(float);
    d->bytes_acts = d->y.act_floats * sizeof(float);
    d->bytes_work = d->y.work_floats * sizeof(float);
    if ((s = dalloc(&d->params, d->bytes_params, "parameters")) != TF_OK ||
        (!infer && (s = dalloc(&d->grads, d->bytes_params, "gradients")) != TF_OK) ||
        (s = dalloc(&d->buffers, d->pm.n_buffers * sizeof(float), "BatchNorm buffers")) != TF_OK ||
        (!infer && (s = dalloc(&d->acts, d->bytes_acts, "saved activations")) != TF_OK) ||
        (s = dalloc(&d->work, d->bytes_work, "workspace")) != TF_OK)
        goto fail;
    tf_param_map_point(&d->pm, a, d->params, d->grads, d->buffers);
    if (cudaMemset(d->params, 0, d->bytes_params) != cudaSuccess ||
        (d->grads && cudaMemset(d->grads, 0, d->bytes_params) != cudaSuccess) ||
        cudaMemset(d->buffers, 0, d->pm.n_buffers * sizeof(float)) != cudaSuccess) {
        s = tf_err(TF_EINTERNAL, "cuda device model: cudaMemset failed");
        goto fail;
    }
    char err[256] = "";
    /* the TFSWA stack's GEMMs in the convolutions' arithmetic (--use_amp: bf16 or fp16) */
    const tf_dtype cd = tf_kernels_compute(kern);
    if (tf_cuda_blas_create(&d->blas, NULL,
                            cd == TF_DT_BF16   ? TF_CUDA_BLAS_BF16
                            : cd == TF_DT_FP16 ? TF_CUDA_BLAS_FP16
                                               : TF_CUDA_BLAS_FP32,
                            err, sizeof err)) {
        s = tf_err(TF_EINTERNAL, "cuda device model: %s", err);
        goto fail;
    }
    /* one STFT object for the input (2B signals) and the output (2BS signals) */
    if (tf_cuda_stft_create(&d->fft, (const tf_stft *)stft,
                            2 * B * a->S > 2 * B ? 2 * B * a->S : 2 * B, N, NULL, err,
                            sizeof err)) {
        s = tf_err(TF_EINTERNAL, "cuda device model: %s", err);
        goto fail;
    }
    size_t pb = 0, bb = 0;
    tf_cuda_stft_sizes(d->fft, &pb, &bb);
    d->bytes_fft = pb + bb;
    if (a->nblk > 0) {
        const tf_dlay *y = &d->y;
        const int Ls = a->wt * a->wf, Hb = y->H[a->L], Wb = y->W[a->L], C = a->ch[a->L - 1];
        const int Ns[4] = {B * Hb, B * Wb, B * y->nW, B * y->nW}, Lq[4] = {Wb, Hb, Ls, Ls};
        for (int q = 0; q < 4 && !infer; q++) /* the backward's workspace */
            if (tf_cuda_tblock_workspace_floats(Ns[q], Lq[q], C, a->heads, a->hidden) > y->n_tbws) {
                s = tf_err(TF_EINTERNAL, "cuda device model: the transformer block needs more "
                                         "workspace than model/dlayout.c plans");
                goto fail;
            }
        /* the Swin relative-position index and shift mask are constants of the shape */
        int *idx = malloc((size_t)Ls * Ls * sizeof *idx);
        float *mask = malloc((size_t)y->nW * Ls * Ls * sizeof *mask);
        if (!idx || !mask) {
            free(idx);
            free(mask);
            s = tf_err(TF_EINTERNAL, "out of memory (Swin mask)");
            goto fail;
        }
        if ((s = tf_swin_check_dims(Wb, Hb, a->wt, a->wf, a->wt / 2, a->wf / 2)) == TF_OK) {
            tf_swin_relpos_index(idx, a->wt, a->wf);
            tf_swin_attn_mask(mask, Wb, Hb, a->wt, a->wf, a->wt / 2, a->wf / 2);
            if (cudaMemcpy(W(d, y->relidx), idx, (size_t)Ls * Ls * sizeof *idx,
                           cudaMemcpyHostToDevice) != cudaSuccess ||
                cudaMemcpy(W(d, y->mask), mask, (size_t)y->nW * Ls * Ls * sizeof *mask,
                           cudaMemcpyHostToDevice) != cudaSuccess)
                s = tf_err(TF_EINTERNAL, "cuda device model: cudaMemcpy failed");
        }
        free(idx);
        free(mask);
        if (s != TF_OK) goto fail;
    }
    if ((s = tf_kernels_commit(kern)) != TF_OK) goto fail;
    *out = d;
    return TF_OK;
fail:
    tf_dmodel_free(d);
    return s;
}

tf_status tf_dmodel_create(tf_dmodel **out, const tf_arch *a, int B, int64_t N, tf_kernels *kern,
                           const void *stft) {
    return create(out, a, B, N, kern, stft, 0);
}

tf_status tf_dmodel_create_infer(tf_dmodel **out, const tf_arch *a, int B, int64_t N,
                                 tf_kernels *kern, const void *stft) {
    return create(out, a, B, N, kern, stft, 1);
}

void tf_dmodel_free(tf_dmodel *d) {
    if (!d) return;
    tf_cuda_stft_destroy(d->fft);
    tf_cuda_blas_destroy(d->blas);
    cudaFree(d->params);
    cudaFree(d->grads);
    cudaFree(d->buffers);
    cudaFree(d->acts);
    cudaFree(d->work);
    tf_param_map_free(&d->pm);
    free(d);
}

const tf_dlay *tf_dmodel_layout(const tf_dmodel *d) {
    return &d->y;
}
float *tf_dmodel_params(tf_dmodel *d) {
    return d->params;
}
float *tf_dmodel_grads(tf_dmodel *d) {
    return d->grads;
}
float *tf_dmodel_buffers(tf_dmodel *d) {
    return d->buffers;
}
size_t tf_dmodel_n_params(const tf_dmodel *d) {
    return d->pm.n_params;
}
size_t tf_dmodel_n_buffers(const tf_dmodel *d) {
    return d->pm.n_buffers;
}
void tf_dmodel_bytes(const tf_dmodel *d, size_t *params, size_t *acts, size_t *work, size_t *fft) {
    if (params) *params = (d->infer ? 1 : 2) * d->bytes_params + d->pm.n_buffers * sizeof(float);
    if (acts) *acts = d->bytes_acts;
    if (work) *work = d->bytes_work;
    if (fft) *fft = d->bytes_fft;
}

tf_status tf_dmodel_zero_grad(tf_dmodel *d) {
    if (d->infer)
        return tf_err(TF_EINTERNAL, "cuda device model: an inference model has no gradients");
    return zero(d->grads, d->pm.n_params);
}

/* ---------------------------------------------------------------------- conv block */

static tf_status kern_status(tf_dmodel *d) {
    return tf_kernels_status(d->kern);
}

static void conv_fwd(tf_dmodel *d, float *out, const float *in, const float *w, const float *b,
                     int B, int ci, int co, int H, int Wd, int k) {
    tf_kern_conv2d_forward(d->kern, out, in, w, b, B, ci, co, H, Wd, k, W(d, d->y.convws),
                           d->y.n_convws * sizeof(float));
}

static void conv_bwd(tf_dmodel *d, float *dx, float *dw, float *db, const float *dy, const float *x,
                     const float *w, int B, int ci, int co, int H, int Wd, int k, int set) {
    tf_kern_conv2d_backward(d->kern, dx, dw, db, dy, x, w, B, ci, co, H, Wd, k, W(d, d->y.convws),
                            d->y.n_convws * sizeof(float), set);
}

/* How a Conv block's forward runs: the training forward (batch statistics, the running
 * statistics updated), the eval forward (BatchNorm on the running statistics, nothing
 * updated) or, with checkpointing, the training forward re-run in backward to refill the
 * block's insides (batch statistics, the running statistics NOT updated: the same values
 * as the training forward, which the block's backward then differentiates). */
typedef enum { FWD_TRAIN, FWD_EVAL, FWD_RECOMPUTE } fwd_mode;

/* Y (B, C, H, W) = gelu(bn(x)) as `mode` runs it: the running statistics (eval), or the batch
 * statistics into mu, rs, the running ones updated in a training forward only */
static int bn_gelu(tf_dmodel *d, fwd_mode mode, float *Y, const float *x, const float *w,
                   const float *b, float *rm, float *rv, int B, int C, int H, int Wd) {
    if (mode == FWD_EVAL)
        return tf_cuda_batchnorm2d_eval_forward(Y, x, w, b, rm, rv, B, C, H, Wd, TF_DM_EPS, 1,
                                                NULL);
    const int upd = mode == FWD_TRAIN;
    return tf_cuda_batchnorm2d_forward(Y, W(d, d->y.mean), W(d, d->y.rstd), upd ? rm : NULL,
                                       upd ? rv : NULL, x, w, b, B, C, H, Wd, TF_DM_MOMENTUM,
                                       TF_DM_EPS, 1, NULL);
}

/* One Conv block: input x (B, Cin, H, W), a stored map; the insides to c1[r], o[r] (r < R-1:
 * INS); the output (B, Cout, H, W) to out (a recompute discards it: pass any scratch map
 * but XW, G and dG). bf16 storage: the block input is widened into XW, each conv1 output
 * computed in G (free in a forward) and stored, the RCM outputs but the last computed
 * alternately in dG (free in a forward too) and XW, and stored. */
static tf_status convblock_forward(tf_dmodel *d, int blk, const float *x, int B, int Cin, int Cout,
                                   int H, int Wd, const size_t *c1, const size_t *o, float *out,
                                   fwd_mode mode) {
    const tf_dlay *y = &d->y;
    const int R = d->a.nrcm, bf = y->bf;
    const size_t hw = (size_t)H * Wd, n = (size_t)B * Cout * hw;
    float *Y = W(d, y->Y), *T = W(d, y->Tb), *XW = bf ? W(d, y->XW) : NULL;
    const float *in; /* RCM r's input: the block input, then RCM r-1's stored output */
    TF_TRY(load_map(d, &in, x, XW, (size_t)B * Cin * hw));
    for (int r = 0; r < R; r++) {
        const int ci = r ? Cout : Cin;
        const rcm_params *p = &d->pm.rcm_p[blk * R + r];
        rcm_buffers *bu = &d->pm.rcm_b[blk * R + r];
        float *c1r = bf ? W(d, y->G) : INS(d, c1[r]);
        float *outr = r == R - 1 ? out : bf ? (in == XW ? W(d, y->dG) : XW) : INS(d, o[r]);
        LAUNCH("bn1", bn_gelu(d, mode, Y, in, p->bn1_w, p->bn1_b, bu->rm1, bu->rv1, B, ci, H, Wd));
        conv_fwd(d, c1r, Y, p->conv1_w, p->conv1_b, B, ci, Cout, H, Wd, 3);
        TF_TRY(store_map(d, INS(d, c1[r]), Cout, 0, c1r, B, Cout, hw, 1));
        LAUNCH("bn2",
               bn_gelu(d, mode, Y, c1r, p->bn2_w, p->bn2_b, bu->rm2, bu->rv2, B, Cout, H, Wd));
        conv_fwd(d, outr, Y, p->conv2_w, p->conv2_b, B, Cout, Cout, H, Wd, 3);
        conv_fwd(d, T, in, p->short_w, p->short_b, B, ci, Cout, H, Wd, 1);
        LAUNCH("shortcut add", tf_cuda_add(outr, T, n, NULL));
        if (r < R - 1) TF_TRY(store_map(d, INS(d, o[r]), Cout, 0, outr, B, Cout, hw, 1));
        in = outr; /* fp32: INS(o[r]) itself; bf16: rounded as stored */
    }
    return kern_status(d);
}

/* Backward of y = conv3x3(gelu(bn(x))) + b (half 1: bn1, conv1; half 2: bn2, conv2), x (B,
 * C, H, W): dx (B, C, H, W) = d x from dy (B, Co, H, W); half 1 also adds the shortcut's
 * part y' = conv1x1(x) from dys. The BN output is recomputed with the batch statistics.
 * dx may be dy itself (C == Co): dy is spent by the convolution's backward before dx is
 * zeroed and written. */
static tf_status rcm_half_backward(tf_dmodel *d, const rcm_params *p, const rcm_params *g, int half,
                                   const float *x, int B, int C, int Co, int H, int Wd,
                                   const float *dy, float *dx, const float *dys) {
    const tf_dlay *y = &d->y;
    const size_t n = (size_t)B * C * H * Wd;
    float *Y = W(d, y->Y), *G = W(d, y->G), *dG = W(d, y->dG), *dY = W(d, y->dY);
    float *mu = W(d, y->mean), *rs = W(d, y->rstd);
    const float *bw = half == 1 ? p->bn1_w : p->bn2_w, *bb = half == 1 ? p->bn1_b : p->bn2_b;
    const float *w = half == 1 ? p->conv1_w : p->conv2_w;
    float *gbw = half == 1 ? g->bn1_w : g->bn2_w, *gbb = half == 1 ? g->bn1_b : g->bn2_b;
    float *gw = half == 1 ? g->conv1_w : g->conv2_w, *gb = half == 1 ? g->conv1_b : g->conv2_b;
    LAUNCH("bn recompute", tf_cuda_batchnorm2d_forward(Y, mu, rs, NULL, NULL, x, bw, bb, B, C, H,
                                                       Wd, TF_DM_MOMENTUM, TF_DM_EPS, 0, NULL));
    LAUNCH("gelu recompute", tf_cuda_gelu_forward(G, Y, n, NULL));
    conv_bwd(d, dG, gw, gb, dy, G, w, B, C, Co, H, Wd, 3, 1);
    TF_TRY(zero(dx, n)); /* after the convolution's backward has read dy: dx may be dy */
    TF_TRY(zero(dY, n));
    LAUNCH("gelu backward", tf_cuda_gelu_backward(dY, dG, Y, n, NULL));
    LAUNCH("bn backward",
           tf_cuda_batchnorm2d_backward(dx, gbw, gbb, dY, x, bw, mu, rs, B, C, H, Wd, NULL));
    if (dys) conv_bwd(d, dx, g->short_w, g->short_b, dys, x, p->short_w, B, C, Co, H, Wd, 1, 0);
    return kern_status(d);
}

/* Backward of a Conv block (input x, insides c1[r], o[r]): the RCM chain's gradients (B,
 * Cout, H, W) take turns in dout and other (both CLOBBERED): RCM r's conv1-output gradient
 * goes into the one its output gradient is not in, and its input gradient (r > 0)
 * overwrites it there. dx (B, Cin, H, W) = the input gradient (overwritten), written last
 * (the first RCM's first half), neither dout nor other: the block's scratch gradient
 * buffer or its insides.
 * Checkpointing (y.ckpt): the RCMs share one c1 slot, which the block's recompute left
 * holding the last RCM's conv1 output; every other RCM's is recomputed into it from that
 * RCM's input just before its backward (bn_gelu FWD_RECOMPUTE into Y, then conv1: Y,
 * mean, rstd and the convolution workspace, none of them live between two RCM
 * backwards, where only dcur (dout or other) is). */
static tf_status convblock_backward(tf_dmodel *d, int blk, const float *x, float *dout,
                                    float *other, float *dx, int B, int Cin, int Cout, int H,
                                    int Wd, const size_t *c1, const size_t *o) {
    const int R = d->a.nrcm, nested = d->y.ckpt;
    const size_t hw = (size_t)H * Wd;
    float *Y = W(d, d->y.Y), *dcur = dout;
    /* bf16 storage: each stored map a half reads (the RCM input, c1) is widened into XW
     * just before it; the nested recompute's conv1 output goes through G (free between
     * two half backwards) */
    float *XW = d->y.bf ? W(d, d->y.XW) : NULL;
    for (int r = R - 1; r >= 0; r--) {
        const int ci = r ? Cout : Cin;
        const rcm_params *p = &d->pm.rcm_p[blk * R + r], *g = &d->pm.rcm_g[blk * R + r];
        rcm_buffers *bu = &d->pm.rcm_b[blk * R + r];
        const float *in_s = r ? INS(d, o[r - 1]) : x, *in, *c1f;
        /* F: this RCM's conv1-output gradient; dnext: its input gradient */
        float *F = dcur == dout ? other : dout;
        float *dnext = r ? F : dx;
        if (nested && r < R - 1) { /* c1[r] = conv1(gelu(bn1(in))), batch statistics */
            float *c1r = d->y.bf ? W(d, d->y.G) : INS(d, c1[r]);
            TF_TRY(load_map(d, &in, in_s, XW, (size_t)B * ci * hw));
            LAUNCH("bn1 nested recompute", bn_gelu(d, FWD_RECOMPUTE, Y, in, p->bn1_w, p->bn1_b,
                                                   bu->rm1, bu->rv1, B, ci, H, Wd));
            conv_fwd(d, c1r, Y, p->conv1_w, p->conv1_b, B, ci, Cout, H, Wd, 3);
            TF_TRY(kern_status(d));
            TF_TRY(store_map(d, INS(d, c1[r]), Cout, 0, c1r, B, Cout, hw, 0));
        }
        TF_TRY(load_map(d, &c1f, INS(d, c1[r]), XW, (size_t)B * Cout * hw));
        TF_TRY(rcm_half_backward(d, p, g, 2, c1f, B, Cout, Cout, H, Wd, dcur, F, NULL));
        TF_TRY(load_map(d, &in, in_s, XW, (size_t)B * ci * hw));
        TF_TRY(rcm_half_backward(d, p, g, 1, in, B, ci, Cout, H, Wd, F, dnext, dcur));
        dcur = dnext;
    }
    return TF_OK;
}

/* -------------------------------------------------------------------- TFSWA block */

typedef struct {
    tf_tblock_params P[4], G[4];
    tf_tblock_saved S[4];
    int N[4], Ls[4];
    int C, heads, Hd, Hb, Wb, st, sf, R;
} tfswa_ctx;

static void tfswa_setup(tf_dmodel *d, int k, int B, tfswa_ctx *c) {
    const tf_arch *a = &d->a;
    const tf_dlay *y = &d->y;
    c->C = a->ch[a->L - 1];
    c->heads = a->heads;
    c->Hd = a->hidden;
    c->Hb = y->H[a->L];
    c->Wb = y->W[a->L];
    c->st = a->wt / 2;
    c->sf = a->wf / 2;
    c->R = tf_swin_relpos_rows(a->wt, a->wf);
    c->N[0] = B * c->Hb, c->Ls[0] = c->Wb;
    c->N[1] = B * c->Wb, c->Ls[1] = c->Hb;
    c->N[2] = c->N[3] = B * y->nW;
    c->Ls[2] = c->Ls[3] = a->wt * a->wf;
    for (int s = 0; s < 4; s++) {
        size_t off = d->pm.tb_off[k * 4 + s];
        tf_tblock_params_point(&c->P[s], d->params + off, c->C, c->heads, c->Hd, s >= 2 ? c->R : 0);
        if (d->grads) /* an inference model has none */
            tf_tblock_params_point(&c->G[s], d->grads + off, c->C, c->heads, c->Hd,
                                   s >= 2 ? c->R : 0);
        tf_tblock_saved_point(&c->S[s], INS(d, y->tsv[k][s]), c->N[s], c->Ls[s], c->C, c->heads,
                              c->Hd);
    }
}

#define TBLOCK(what, call)                                                                         \
    do {                                                                                           \
        if (call)                                                                                  \
            return tf_err(TF_EINTERNAL, "cuda device model: %s failed: %s", what,                  \
                          tf_cuda_blas_error(d->blas));                                            \
    } while (0)

/* tokens tok[k][0] (B, F, T, C) -> out (B, T, F, C); the insides (tok[k][1..3], tsv[k]) saved
 * (INS). No statistics: with checkpointing backward re-runs it as it is. Temporaries
 * tb[0..3]; out may be tb[4] (not tb[5]: backward's token gradient) */
static tf_status tfswa_forward(tf_dmodel *d, int k, int B, float *out) {
    const tf_arch *a = &d->a;
    const tf_dlay *y = &d->y;
    tfswa_ctx c;
    tfswa_setup(d, k, B, &c);
    const int C = c.C, H = c.heads, Hd = c.Hd, F = c.Hb, T = c.Wb;
    const int *idx = (const int *)(void *)W(d, y->relidx);
    const float *mask = W(d, y->mask);
    float *tsa_in = A(d, y->tok[k][0]), *fsa_in = INS(d, y->tok[k][1]);
    float *w0 = INS(d, y->tok[k][2]), *w1 = INS(d, y->tok[k][3]);
    float *t0 = W(d, y->tb[0]), *yb = W(d, y->tb[1]), *wo = W(d, y->tb[2]), *z = W(d, y->tb[3]);
    TBLOCK("tsa", tf_cuda_tblock_forward(d->blas, t0, &c.S[0], tsa_in, &c.P[0], NULL, NULL, 0,
                                         c.N[0], c.Ls[0], C, H, Hd, NULL));
    LAUNCH("seq swap", tf_cuda_seq_swap_forward(fsa_in, t0, B, C, F, T, 1, NULL));
    TBLOCK("fsa", tf_cuda_tblock_forward(d->blas, yb, &c.S[1], fsa_in, &c.P[1], NULL, NULL, 0,
                                         c.N[1], c.Ls[1], C, H, Hd, NULL));
    LAUNCH("window partition",
           tf_cuda_window_partition_forward(w0, yb, B, T, F, C, a->wt, a->wf, 0, 0, NULL));
    TBLOCK("swin", tf_cuda_tblock_forward(d->blas, wo, &c.S[2], w0, &c.P[2], idx, NULL, 0, c.N[2],
                                          c.Ls[2], C, H, Hd, NULL));
    LAUNCH("window reverse",
           tf_cuda_window_reverse_forward(z, wo, B, T, F, C, a->wt, a->wf, 0, 0, NULL));
    LAUNCH("window partition",
           tf_cuda_window_partition_forward(w1, z, B, T, F, C, a->wt, a->wf, c.st, c.sf, NULL));
    TBLOCK("shifted swin", tf_cuda_tblock_forward(d->blas, wo, &c.S[3], w1, &c.P[3], idx, mask,
                                                  y->nW, c.N[3], c.Ls[3], C, H, Hd, NULL));
    LAUNCH("window reverse",
           tf_cuda_window_reverse_forward(z, wo, B, T, F, C, a->wt, a->wf, c.st, c.sf, NULL));
    LAUNCH("tfswa residual", tf_cuda_add2(out, yb, z, (size_t)B * T * F * C, NULL));
    return TF_OK;
}

/* dout (B, T, F, C) (clobbered) -> *dtok = the gradient of tok[k][0] (B, F, T, C) (in tb[2]) */
static tf_status tfswa_backward(tf_dmodel *d, int k, int B, float *dout, float **dtok) {
    const tf_arch *a = &d->a;
    const tf_dlay *y = &d->y;
    tfswa_ctx c;
    tfswa_setup(d, k, B, &c);
    const int C = c.C, H = c.heads, Hd = c.Hd, F = c.Hb, T = c.Wb;
    const size_t n = (size_t)B * T * F * C;
    const int *idx = (const int *)(void *)W(d, y->relidx);
    float *ws = W(d, y->tbws);
    float *tsa_in = A(d, y->tok[k][0]), *fsa_in = INS(d, y->tok[k][1]);
    float *w0 = INS(d, y->tok[k][2]), *w1 = INS(d, y->tok[k][3]);
    float *b0 = W(d, y->tb[0]), *b1 = W(d, y->tb[1]), *b2 = W(d, y->tb[2]), *b3 = W(d, y->tb[3]);
    TF_TRY(zero(b2, n));
    LAUNCH("window reverse backward",
           tf_cuda_window_reverse_backward(b2, dout, B, T, F, C, a->wt, a->wf, c.st, c.sf, NULL));
    TF_TRY(zero(b3, n));
    TBLOCK("shifted swin backward",
           tf_cuda_tblock_backward(d->blas, b3, &c.G[3], b2, &c.S[3], w1, &c.P[3], idx, c.R, c.N[3],
                                   c.Ls[3], C, H, Hd, ws, NULL));
    TF_TRY(zero(b0, n));
    LAUNCH("window partition backward",
           tf_cuda_window_partition_backward(b0, b3, B, T, F, C, a->wt, a->wf, c.st, c.sf, NULL));
    TF_TRY(zero(b2, n));
    LAUNCH("window reverse backward",
           tf_cuda_window_reverse_backward(b2, b0, B, T, F, C, a->wt, a->wf, 0, 0, NULL));
    TF_TRY(zero(b3, n));
    TBLOCK("swin backward", tf_cuda_tblock_backward(d->blas, b3, &c.G[2], b2, &c.S[2], w0, &c.P[2],
                                                    idx, c.R, c.N[2], c.Ls[2], C, H, Hd, ws, NULL));
    LAUNCH("window partition backward",
           tf_cuda_window_partition_backward(dout, b3, B, T, F, C, a->wt, a->wf, 0, 0, NULL));
    TF_TRY(zero(b0, n));
    TBLOCK("fsa backward",
           tf_cuda_tblock_backward(d->blas, b0, &c.G[1], dout, &c.S[1], fsa_in, &c.P[1], NULL, 0,
                                   c.N[1], c.Ls[1], C, H, Hd, ws, NULL));
    TF_TRY(zero(b1, n));
    LAUNCH("seq swap backward", tf_cuda_seq_swap_backward(b1, b0, B, C, F, T, 1, NULL));
    TF_TRY(zero(b2, n));
    TBLOCK("tsa backward",
           tf_cuda_tblock_backward(d->blas, b2, &c.G[0], b1, &c.S[0], tsa_in, &c.P[0], NULL, 0,
                                   c.N[0], c.Ls[0], C, H, Hd, ws, NULL));
    *dtok = b2;
    return TF_OK;
}

/* ------------------------------------------------------------------------ forward */

/* The forward of both modes (tf_dmodel_forward, tf_dmodel_forward_eval) */
static tf_status forward(tf_dmodel *d, float *out, const float *mix, int B, int eval) {
    const fwd_mode mode = eval ? FWD_EVAL : FWD_TRAIN;
    const tf_arch *a = &d->a;
    const tf_dlay *y = &d->y;
    d->have_fwd = 0;
    if (B < 1 || B > y->B)
        return tf_err(TF_EINTERNAL, "cuda device model: batch %d (planned %d)", B, y->B);
    d->B = B;
    const int L = a->L, K = a->K, S = a->S, Fb = y->Fb, T = y->T, Fp = y->Fp, Tp = y->Tp;
    const int64_t N = y->N;
    const size_t nspec = (size_t)B * 2 * Fb * T;
    /* STFT, magnitude and phase; subbands (B, 2K, Fs, T) padded into x0 (B, 2K, Fp, Tp) */
    float *re = W(d, y->re), *im = W(d, y->im), *mag = W(d, y->mag);
    float *pr = A(d, y->pr), *pi = A(d, y->pi);
    FFT("stft", tf_cuda_stft_forward(d->fft, re, im, mix, 2 * B, N));
    LAUNCH("magphase", tf_cuda_magphase(mag, pr, pi, re, im, nspec, NULL));
    LAUNCH("subband split", tf_cuda_subband_split(re, mag, B, 2, Fb, T, K, NULL));
    const int bf = y->bf;
    const size_t hwp = (size_t)Fp * Tp;
    float *XW = bf ? W(d, y->XW) : NULL;
    LAUNCH("pad", tf_cuda_copy_corner(bf ? XW : A(d, y->enc_in[0]), Fp, Tp, re, y->Fs, T,
                                      (size_t)B * a->cin, NULL));
    if (bf) TF_TRY(store_map(d, A(d, y->enc_in[0]), a->cin, 0, XW, B, a->cin, hwp, 0));
    /* encoder: the output to its skip (channels [cu, cu + c) of the decoder's concat) and,
     * pooled, to the next level's input or the bottleneck */
    float *O = W(d, y->O), *P = W(d, y->P), *bott = W(d, y->bott);
    for (int l = 0; l < L; l++) {
        const int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l], H = y->H[l], Wd = y->W[l];
        const int j = L - 1 - l;
        TF_TRY(convblock_forward(d, l, A(d, y->enc_in[l]), B, ci, co, H, Wd, y->enc_c1[l],
                                 y->enc_o[l], O, mode));
        TF_TRY(store_map(d, A(d, y->dec_cat[j]), a->dec_in[j], a->dec_in[j] - co, O, B, co,
                         (size_t)H * Wd, 0)); /* the skip */
        float *pool = l == L - 1 ? bott : bf ? XW : A(d, y->enc_in[l + 1]);
        LAUNCH("pool", tf_cuda_avgpool2x2_forward(pool, O, B, co, H, Wd, NULL));
        if (pool == XW)
            TF_TRY(store_map(d, A(d, y->enc_in[l + 1]), co, 0, XW, B, co,
                             (size_t)y->H[l + 1] * y->W[l + 1], 0));
    }
    /* bottleneck */
    const int C = a->ch[L - 1], Hb = y->H[L], Wb = y->W[L];
    if (a->nblk > 0) {
        LAUNCH("map to tokens",
               tf_cuda_map_to_seq_forward(A(d, y->tok[0][0]), bott, B, C, Hb, Wb, 1, NULL));
        float *o = W(d, y->tb[4]);
        for (int k = 0; k < a->nblk; k++) {
            TF_TRY(tfswa_forward(d, k, B, o));
            if (k < a->nblk - 1)
                LAUNCH("seq swap",
                       tf_cuda_seq_swap_forward(A(d, y->tok[k + 1][0]), o, B, C, Hb, Wb, 0, NULL));
            LAUNCH("tokens to map", tf_cuda_seq_to_map_forward(bott, o, B, C, Hb, Wb, 0, NULL));
        }
    }
    /* decoder: the bottleneck upsampled into the first concat; each block's output
     * upsampled into the next concat, the last one is the head input */
    LAUNCH("upsample", tf_cuda_upsample2x_forward(P, bott, B, C, Hb, Wb, NULL));
    TF_TRY(store_map(d, A(d, y->dec_cat[0]), a->dec_in[0], 0, P, B, C, (size_t)4 * Hb * Wb, 0));
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j, H = y->H[i], Wd = y->W[i], co = a->dec_out[j];
        float *dst = j == L - 1 && !bf ? A(d, y->head_in) : O;
        TF_TRY(convblock_forward(d, L + j, A(d, y->dec_cat[j]), B, a->dec_in[j], co, H, Wd,
                                 y->dec_c1[j], y->dec_o[j], dst, mode));
        if (j < L - 1) {
            LAUNCH("upsample", tf_cuda_upsample2x_forward(P, O, B, co, H, Wd, NULL));
            TF_TRY(store_map(d, A(d, y->dec_cat[j + 1]), a->dec_in[j + 1], 0, P, B, co,
                             (size_t)4 * H * Wd, 0));
        } else if (bf) { /* the head input, stored rounded; the head reads the rounded O */
            TF_TRY(store_map(d, A(d, y->head_in), co, 0, O, B, co, hwp, 1));
        }
    }
    /* head: z = conv1x1, the activation on the cropped map, subband merge, times the
     * mixture phase, ISTFT of every (item, target, audio channel) */
    const int co = 2 * K * S;
    float *z = bf ? XW : A(d, y->z), *hc = W(d, y->hc), *om = W(d, y->om), *yr = W(d, y->yr),
          *yi = W(d, y->yi);
    conv_fwd(d, z, bf ? O : A(d, y->head_in), d->pm.head_w, d->pm.head_b, B, a->ch[0], co, Fp, Tp,
             1);
    TF_TRY(kern_status(d));
    TF_TRY(store_map(d, A(d, y->z), co, 0, z, B, co, hwp, 1));
    const float *x0 = NULL;
    if (a->output == TF_OUT_MASK)
        TF_TRY(load_map(d, &x0, A(d, y->enc_in[0]), bf ? W(d, y->X0W) : NULL,
                        (size_t)B * a->cin * hwp));
    LAUNCH("head activation", tf_cuda_head_forward(hc, z, x0, B, S, 2 * K, y->Fs, T, Fp, Tp, NULL));
    LAUNCH("subband merge", tf_cuda_subband_merge(om, hc, B * S, 2, Fb, T, K, NULL));
    LAUNCH("phase", tf_cuda_combine_forward(yr, yi, om, pr, pi, B, S, (size_t)2 * Fb * T, NULL));
    FFT("istft", tf_cuda_istft_forward(d->fft, out, yr, yi, 2 * B * S, N));
    d->have_fwd = !eval;
    return TF_OK;
}

tf_status tf_dmodel_forward(tf_dmodel *d, float *out, const float *mix, int B) {
    if (d->infer)
        return tf_err(TF_EINTERNAL, "cuda device model: a training forward on an inference model");
    return forward(d, out, mix, B, 0);
}

tf_status tf_dmodel_forward_eval(tf_dmodel *d, float *out, const float *mix, int B) {
    return forward(d, out, mix, B, 1);
}

tf_status tf_dmodel_forward_eval_host(tf_dmodel *d, float *out, const float *mix, int B,
                                      float *dout, float *dmix, const char *who) {
    if (B < 1 || B > d->y.B)
        return tf_err(TF_EINTERNAL, "%s: batch %d (planned %d)", who, B, d->y.B);
    const size_t nmix = (size_t)B * 2 * (size_t)d->y.N, nout = nmix * (size_t)d->a.S;
    cudaError_t e = cudaMemcpy(dmix, mix, nmix * sizeof(float), cudaMemcpyHostToDevice);
    if (e != cudaSuccess)
        return tf_err(TF_EINTERNAL, "%s: cudaMemcpy (chunks) failed (%s)", who,
                      cudaGetErrorString(e));
    TF_TRY(tf_dmodel_forward_eval(d, dout, dmix, B));
    e = cudaMemcpy(out, dout, nout * sizeof(float), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess)
        return tf_err(TF_EINTERNAL, "%s: cudaMemcpy (stems) failed (%s)", who,
                      cudaGetErrorString(e));
    return TF_OK;
}

/* ----------------------------------------------------------------------- backward */

tf_status tf_dmodel_backward(tf_dmodel *d, const float *dout) {
    if (d->infer)
        return tf_err(TF_EINTERNAL, "cuda device model: a backward on an inference model");
    if (!d->have_fwd)
        return tf_err(TF_EINTERNAL, "cuda device model: backward needs a training forward first");
    const tf_arch *a = &d->a;
    const tf_dlay *y = &d->y;
    const int B = d->B, L = a->L, K = a->K, S = a->S, Fb = y->Fb, T = y->T, Fp = y->Fp, Tp = y->Tp;
    const int64_t N = y->N;
    const size_t nout = (size_t)B * S * 2 * Fb * T;
    /* head */
    const int co = 2 * K * S, c0 = a->ch[0];
    float *yr = W(d, y->yr), *yi = W(d, y->yi), *om = W(d, y->om), *hc = W(d, y->hc);
    float *dz = W(d, y->dz), *Dc = W(d, y->D0), *Dn = W(d, y->D1);
    TF_TRY(zero(yr, nout));
    TF_TRY(zero(yi, nout));
    FFT("istft backward", tf_cuda_istft_backward(d->fft, yr, yi, dout, 2 * B * S, N));
    TF_TRY(zero(om, nout));
    LAUNCH("phase backward", tf_cuda_combine_backward(om, yr, yi, A(d, y->pr), A(d, y->pi), B, S,
                                                      (size_t)2 * Fb * T, NULL));
    TF_TRY(zero(hc, (size_t)B * S * 2 * K * y->Fs * T));
    LAUNCH("subband merge backward",
           tf_cuda_subband_merge_backward(hc, om, B * S, 2, Fb, T, K, NULL));
    const size_t hwp = (size_t)Fp * Tp;
    float *XW = y->bf ? W(d, y->XW) : NULL;
    const float *zf, *x0 = NULL, *hin;
    TF_TRY(load_map(d, &zf, A(d, y->z), XW, (size_t)B * co * hwp));
    if (a->output == TF_OUT_MASK)
        TF_TRY(load_map(d, &x0, A(d, y->enc_in[0]), y->bf ? W(d, y->X0W) : NULL,
                        (size_t)B * a->cin * hwp));
    LAUNCH("head activation backward",
           tf_cuda_head_backward(dz, hc, zf, x0, B, S, 2 * K, y->Fs, T, Fp, Tp, NULL));
    TF_TRY(load_map(d, &hin, A(d, y->head_in), XW, (size_t)B * c0 * hwp));
    conv_bwd(d, Dc, d->pm.ghead_w, d->pm.ghead_b, dz, hin, d->pm.head_w, B, c0, co, Fp, Tp, 1, 1);
    TF_TRY(kern_status(d));
    /* decoder, last block first; with checkpointing each block's insides are refilled
     * first (its output goes to O, unused in backward) */
    const int ck = y->ckpt;
    for (int j = L - 1; j >= 0; j--) {
        const int i = L - 1 - j, cs = a->ch[i], cu = a->dec_in[j] - cs, H = y->H[i], Wd = y->W[i];
        if (ck)
            TF_TRY(convblock_forward(d, L + j, A(d, y->dec_cat[j]), B, a->dec_in[j], a->dec_out[j],
                                     H, Wd, y->dec_c1[j], y->dec_o[j], W(d, y->O), FWD_RECOMPUTE));
        /* the input gradient in the block's insides, the chain in Dc and Dn; where it does
         * not fit there: in Dn, the chain in Dc's two halves (the layout sizes them) */
        const int own = y->dx_own[L + j];
        float *dx = own ? INS(d, y->dec_c1[j][0]) : Dn;
        float *other = own ? Dn : Dc + (size_t)B * a->dec_out[j] * H * Wd;
        TF_TRY(convblock_backward(d, L + j, A(d, y->dec_cat[j]), Dc, other, dx, B, a->dec_in[j],
                                  a->dec_out[j], H, Wd, y->dec_c1[j], y->dec_o[j]));
        /* dec_cat[j] is read for the last time above: the skip gradient may now live there */
        float *dsk = DSK(d, i);
        TF_TRY(zero(dsk, (size_t)B * cs * H * Wd));
        TF_TRY(zero(Dc, (size_t)B * cu * H * Wd));
        LAUNCH("concat backward", tf_cuda_concat_backward(Dc, dsk, dx, B, cu, cs, H, Wd, NULL));
        TF_TRY(zero(Dn, (size_t)B * cu * y->H[i + 1] * y->W[i + 1]));
        LAUNCH("upsample backward",
               tf_cuda_upsample2x_backward(Dn, Dc, B, cu, y->H[i + 1], y->W[i + 1], NULL));
        float *t = Dc;
        Dc = Dn;
        Dn = t;
    }
    /* bottleneck: Dc = d map (B, C, Hb, Wb) */
    const int C = a->ch[L - 1], Hb = y->H[L], Wb = y->W[L];
    const size_t ntok = (size_t)B * C * Hb * Wb;
    if (a->nblk > 0) {
        float *dt = W(d, y->tb[5]);
        TF_TRY(zero(dt, ntok));
        LAUNCH("tokens to map backward",
               tf_cuda_seq_to_map_backward(dt, Dc, B, C, Hb, Wb, 0, NULL));
        for (int k = a->nblk - 1; k >= 0; k--) {
            float *dtsa = NULL;
            if (ck) TF_TRY(tfswa_forward(d, k, B, W(d, y->tb[4])));
            TF_TRY(tfswa_backward(d, k, B, dt, &dtsa));
            TF_TRY(zero(dt, ntok));
            if (k > 0)
                LAUNCH("seq swap backward",
                       tf_cuda_seq_swap_backward(dt, dtsa, B, C, Hb, Wb, 0, NULL));
            else
                LAUNCH("map to tokens backward",
                       tf_cuda_map_to_seq_backward(dt, dtsa, B, C, Hb, Wb, 1, NULL));
        }
        Dc = dt;
    }
    LAUNCH("pool backward",
           tf_cuda_avgpool2x2_backward(DSK(d, L - 1), Dc, B, C, y->H[L - 1], y->W[L - 1], NULL));
    /* encoder, deepest first */
    Dn = W(d, y->D1);
    for (int l = L - 1; l >= 0; l--) {
        const int ci = l ? a->ch[l - 1] : a->cin, cl = a->ch[l], H = y->H[l], Wd = y->W[l];
        if (ck)
            TF_TRY(convblock_forward(d, l, A(d, y->enc_in[l]), B, ci, cl, H, Wd, y->enc_c1[l],
                                     y->enc_o[l], W(d, y->O), FWD_RECOMPUTE));
        float *dx = y->dx_own[l] ? INS(d, y->enc_c1[l][0]) : Dn; /* as in the decoder */
        TF_TRY(convblock_backward(d, l, A(d, y->enc_in[l]), DSK(d, l),
                                  y->dx_own[l] ? Dn : W(d, y->E), dx, B, ci, cl, H, Wd,
                                  y->enc_c1[l], y->enc_o[l]));
        if (l > 0)
            LAUNCH("pool backward", tf_cuda_avgpool2x2_backward(DSK(d, l - 1), dx, B, ci,
                                                                y->H[l - 1], y->W[l - 1], NULL));
    }
    return TF_OK;
}
