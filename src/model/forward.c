/* TFSWA-ResUNet forward and backward (CPU). Every buffer is a slot or a workspace offset of
 * the layout computed by tf_layout (model.c); nothing here allocates. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "dsp/stft.h"
#include "model/model_internal.h"
#include "nn/act.h"
#include "nn/attn.h"
#include "nn/clones.h"
#include "nn/conv.h"
#include "nn/elem.h"
#include "util/bf16.h"

/* OpenBLAS: every heavy kernel here is parallel over OpenMP threads; BLAS threads on top
 * of them oversubscribe the cores (measured: 10x slower on 2 busy cores). */
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

/* the training forward, or its recomputation in backward (batch statistics, running
 * stats untouched); the eval forward is forward_eval.c */
enum { MODE_TRAIN = 1, MODE_RECOMPUTE = 2 };

/* ------------------------------------------------------------------ slot helpers */

static float *WS(tf_model *m, size_t off) {
    return (float *)(void *)(m->work + off);
}

static void *slot_ptr(tf_model *m, slot_t s) {
    return (s.where == IN_ACT ? m->acts : m->work) + s.off;
}

/* fp32 pointer to compute a slot's value into: the slot itself (fp32) or a work buffer */
static float *sw(tf_model *m, slot_t s, float *fallback) {
    return s.bf16 ? fallback : (float *)slot_ptr(m, s);
}

/* Store buf (s.n floats) into s. bf16: round to nearest even and ALSO round buf in place, so
 * the forward continues with exactly the values the backward will load. */
static void sstore(tf_model *m, slot_t s, float *buf) {
    if (!s.bf16) {
        float *d = slot_ptr(m, s);
        if (d != buf) memcpy(d, buf, s.n * sizeof(float));
        return;
    }
    tf_bf16 *d = slot_ptr(m, s);
    const size_t n = s.n;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        d[i] = tf_f32_to_bf16(buf[i]);
        buf[i] = tf_bf16_to_f32(d[i]);
    }
}

/* fp32 view of a slot: the slot itself (fp32) or its widened copy in a work buffer */
static float *sload(tf_model *m, slot_t s, float *fallback) {
    if (!s.bf16) return slot_ptr(m, s);
    float *d = fallback;
    tf_bf16_to_f32_array(d, slot_ptr(m, s), s.n);
    return d;
}

/* cat slot (B, Ccat, HW) channels [c0, c0 + Cs) = src (B, Cs, HW) (rounded if bf16) */
static void store_channels(tf_model *m, slot_t s, int Ccat, int c0, const float *src, int B, int Cs,
                           size_t HW) {
    const size_t rows = (size_t)B * Cs;
#pragma omp parallel for schedule(static) if (rows * HW > 65536)
    for (size_t r = 0; r < rows; r++) {
        size_t b = r / Cs, c = r % Cs;
        size_t o = (b * Ccat + c0 + c) * HW;
        const float *x = src + r * HW;
        if (s.bf16) {
            tf_bf16 *d = (tf_bf16 *)slot_ptr(m, s) + o;
            for (size_t i = 0; i < HW; i++) d[i] = tf_f32_to_bf16(x[i]);
        } else {
            memcpy((float *)slot_ptr(m, s) + o, x, HW * sizeof(float));
        }
    }
}

static void zero(float *x, size_t n) {
    memset(x, 0, n * sizeof(float));
}

/* --------------------------------------------------------------------- conv block */

/* Item i of a slot holding B items of equal size. */
static slot_t item_of(slot_t s, int B, int i) {
    const size_t per = s.n / (size_t)B;
    s.off += (size_t)i * per * (s.bf16 ? sizeof(tf_bf16) : sizeof(float));
    s.n = per;
    return s;
}

/* mean, rstd (C) = the batch statistics of slot s (B, C, hw), fp32 or bf16, computed as
 * tf_batchnorm2d_forward does (double sums, two passes, biased variance); rm, rv (C): the
 * running statistics, updated when not NULL (unbiased variance, momentum). */
TF_CLONES static void slot_stats(tf_model *m, slot_t s, int B, int C, size_t hw, float *mean,
                                 float *rstd, float *rm, float *rv) {
    const size_t n = (size_t)B * hw;
    const float *xf = s.bf16 ? NULL : slot_ptr(m, s);
    const tf_bf16 *xh = s.bf16 ? slot_ptr(m, s) : NULL;
#pragma omp parallel for schedule(static) num_threads(m->threads)
    for (int c = 0; c < C; c++) {
        double sum = 0.0;
        for (int b = 0; b < B; b++) {
            const size_t o = ((size_t)b * C + c) * hw;
            if (xh) {
#pragma omp simd reduction(+ : sum)
                for (size_t i = 0; i < hw; i++) sum += tf_bf16_to_f32(xh[o + i]);
            } else {
#pragma omp simd reduction(+ : sum)
                for (size_t i = 0; i < hw; i++) sum += xf[o + i];
            }
        }
        const double mu = sum / (double)n;
        double v = 0.0;
        for (int b = 0; b < B; b++) {
            const size_t o = ((size_t)b * C + c) * hw;
            if (xh) {
#pragma omp simd reduction(+ : v)
                for (size_t i = 0; i < hw; i++) {
                    double d = tf_bf16_to_f32(xh[o + i]) - mu;
                    v += d * d;
                }
            } else {
#pragma omp simd reduction(+ : v)
                for (size_t i = 0; i < hw; i++) {
                    double d = xf[o + i] - mu;
                    v += d * d;
                }
            }
        }
        tf_bn_stats_finish(mu, v, n, TF_BN_EPS, TF_BN_MOMENTUM, &mean[c], &rstd[c],
                           rm ? &rm[c] : NULL, rv ? &rv[c] : NULL);
    }
}

/* One item: out (C, hw) = gelu(bn(x)) with the batch statistics mean, rstd (C); the
 * values of tf_batchnorm2d_gelu_forward. */
static void item_bn(tf_model *m, float *out, const float *x, const float *mean, const float *rstd,
                    const float *w, const float *b, int C, size_t hw) {
#pragma omp parallel for schedule(static) num_threads(m->threads)
    for (int c = 0; c < C; c++) {
        const size_t o = (size_t)c * hw;
        tf_bn_gelu(out + o, x + o, hw, mean[c], rstd[c], w[c], b[c]);
    }
}

/* One item: out (C, hw) = gelu'(bn(x)) * dG, bn(x) with the batch statistics mean, rstd
 * (C) as item_bn computes it; exactly tf_gelu_backward into zeros of the item_bn output. */
TF_CLONES static void item_bn_gelu_grad(tf_model *m, float *out, const float *dG, const float *x,
                                        const float *mean, const float *rstd, const float *w,
                                        const float *b, int C, size_t hw) {
#pragma omp parallel for schedule(static) num_threads(m->threads)
    for (int c = 0; c < C; c++) {
        const size_t o = (size_t)c * hw;
        const float mu = mean[c], scale = w[c] * rstd[c], bias = b[c];
        const float *xc = x + o, *dc = dG + o;
        float *oc = out + o;
#pragma omp simd
        for (size_t i = 0; i < hw; i++)
            oc[i] = dc[i] * tf_gelu_grad(tf_bn_affine(xc[i], mu, scale, bias));
    }
}

/* One item of BN backward's reductions: sd[c] += sum d, sdx[c] += sum d * xhat over
 * d, x (C, hw). */
static void item_bn_sums(tf_model *m, double *sd, double *sdx, const float *d, const float *x,
                         const float *mean, const float *rstd, int C, size_t hw) {
#pragma omp parallel for schedule(static) num_threads(m->threads)
    for (int c = 0; c < C; c++) {
        const float mu = mean[c], r = rstd[c];
        const float *dc = d + (size_t)c * hw, *xc = x + (size_t)c * hw;
        double a = 0.0, ax = 0.0;
#pragma omp simd reduction(+ : a, ax)
        for (size_t i = 0; i < hw; i++) {
            a += dc[i];
            ax += tf_bn_dxhat(dc[i], xc[i], mu, r);
        }
        sd[c] += a;
        sdx[c] += ax;
    }
}

/* One item of BN backward, in place: d (C, hw) = rstd * (d * w - mean(d w) - xhat *
 * mean(d w xhat)), the means over the batch (n values per channel) from the sums. */
static void item_bn_apply(tf_model *m, float *d, const float *x, const float *mean,
                          const float *rstd, const float *w, const double *sd, const double *sdx,
                          size_t n, int C, size_t hw) {
#pragma omp parallel for schedule(static) num_threads(m->threads)
    for (int c = 0; c < C; c++) {
        const float mu = mean[c], r = rstd[c], wc = w[c];
        const float mg = tf_bn_mean_grad(wc, sd[c], (double)n);
        const float mgx = tf_bn_mean_grad(wc, sdx[c], (double)n);
        float *dc = d + (size_t)c * hw;
        const float *xc = x + (size_t)c * hw;
#pragma omp simd
        for (size_t i = 0; i < hw; i++) dc[i] = tf_bn_backward_dx(dc[i], xc[i], mu, r, wc, mg, mgx);
    }
}

/* Where a Conv block's output goes, one item at a time (the output never exists whole):
 * an encoder level's into its skip (the decoder's cat slot) and, pooled, the next level's
 * input or the bottleneck; a decoder's, upsampled, into the next decoder's cat slot, or
 * the head input. */
typedef struct {
    int dec; /* 0: encoder level `lev`, 1: decoder `lev` */
    int lev;
} sink_t;

static tf_status sink_put(tf_model *m, const sink_t *k, int i, float *o, int B, int Cout, int H,
                          int W) {
    const tf_arch *a = &m->a;
    layout_t *y = &m->lay;
    const int L = a->L;
    const size_t hw = (size_t)H * W;
    char nm[32];
    snprintf(nm, sizeof nm, "%s.%d", k->dec ? "dec" : "enc", k->lev);
    TF_TRY(tf_model_tap_put_at(m, nm, (size_t)B * Cout * hw, (size_t)i * Cout * hw, o,
                               (size_t)Cout * hw));
    float *P = WS(m, y->it);
    if (!k->dec) {
        const int l = k->lev, j = L - 1 - l;
        store_channels(m, item_of(y->dec_cat[j], B, i), a->dec_in[j], a->dec_in[j] - Cout, o, 1,
                       Cout, hw);
        if (l == L - 1) {
            tf_avgpool2x2_forward(WS(m, y->bott) + (size_t)i * Cout * (hw / 4), o, 1, Cout, H, W);
        } else {
            slot_t xs = item_of(y->enc_in[l + 1], B, i);
            float *x = sw(m, xs, P);
            tf_avgpool2x2_forward(x, o, 1, Cout, H, W);
            sstore(m, xs, x);
        }
    } else if (k->lev < L - 1) {
        const int j = k->lev + 1;
        tf_upsample2x_forward(P, o, 1, Cout, H, W);
        store_channels(m, item_of(y->dec_cat[j], B, i), a->dec_in[j], 0, P, 1, Cout, hw * 4);
    } else {
        sstore(m, item_of(y->head_in, B, i), o);
    }
    return TF_OK;
}

/* The first half of RCM r of Conv block blk, one batch item at a time: the slot cs (B, Cout,
 * H, W) = conv1(gelu(bn1(in))), in the slot (B, ci, H, W); BatchNorm on the batch statistics
 * of the whole slot, the running ones updated in MODE_TRAIN only. Work buffers (one item):
 * A (a bf16 input widened, then the BN/GELU output in place; fp32: the BN/GELU output), cbuf
 * (a bf16 c1 before its store, Cout x H x W). */
static void rcm_first_half(tf_model *m, int blk, int r, slot_t in, slot_t cs, int mode, int B,
                           int ci, int Cout, int H, int W, float *A, float *cbuf) {
    layout_t *y = &m->lay;
    const int R = m->a.nrcm, tr = mode == MODE_TRAIN;
    const size_t hw = (size_t)H * W, cwb = y->n_convws * sizeof(float);
    const rcm_params *p = &m->rcm_p[blk * R + r];
    rcm_buffers *bu = &m->rcm_b[blk * R + r];
    float *cw = WS(m, y->convws);
    float *mu = WS(m, y->st_m1), *rs = WS(m, y->st_r1);
    slot_stats(m, in, B, ci, hw, mu, rs, tr ? bu->rm1 : NULL, tr ? bu->rv1 : NULL);
    for (int i = 0; i < B; i++) {
        const float *x = sload(m, item_of(in, B, i), A);
        item_bn(m, A, x, mu, rs, p->bn1_w, p->bn1_b, ci, hw);
        const slot_t csi = item_of(cs, B, i);
        float *c1 = sw(m, csi, cbuf);
        tf_kern_conv2d_forward(m->kern, c1, A, p->conv1_w, p->conv1_b, 1, ci, Cout, H, W, 3, cw,
                               cwb);
        sstore(m, csi, c1);
    }
}

/* One Conv block (nrcm RCMs), one batch item at a time: its input is slot xs (B, Cin, H,
 * W); the insides go to the slots c1s[r] (conv1 output) and os[r] (RCM output, r <
 * nrcm-1); the output (B, Cout, H, W), item by item, to `sink` (NULL in a recompute, which
 * only refills the slots). BatchNorm's batch statistics come from the whole slots. Work
 * buffers: region R's fwd view (y->it, the loaded input, which the BN/GELU output then
 * takes in place (fp32: the BN/GELU output), and the sink's copy after it; y->fo, the RCM
 * output) and `stage` (at least Cout x H x W floats, a block-gradient buffer free
 * at the time): a bf16 c1 before its store, then the shortcut output, which is computed
 * first (the input is spent before c1 is loaded into its bytes). */
static tf_status convblock_forward(tf_model *m, int blk, slot_t xs, int mode, int B, int Cin,
                                   int Cout, int H, int W, const slot_t *c1s, const slot_t *os,
                                   const sink_t *sink, float *stage) {
    layout_t *y = &m->lay;
    const int R = m->a.nrcm;
    const size_t hw = (size_t)H * W, cwb = y->n_convws * sizeof(float);
    float *A = WS(m, y->it), *T = stage, *cw = WS(m, y->convws);
    float *mu = WS(m, y->st_m1), *rs = WS(m, y->st_r1);
    for (int r = 0; r < R; r++) {
        const int ci = r ? Cout : Cin;
        const rcm_params *p = &m->rcm_p[blk * R + r];
        rcm_buffers *bu = &m->rcm_b[blk * R + r];
        const slot_t in = r ? os[r - 1] : xs;
        const int tr = mode == MODE_TRAIN;
        /* first half: c1 = conv1(gelu(bn1(in))) */
        rcm_first_half(m, blk, r, in, c1s[r], mode, B, ci, Cout, H, W, A, stage);
        /* second half: out = conv2(gelu(bn2(c1))) + short(in) */
        slot_stats(m, c1s[r], B, Cout, hw, mu, rs, tr ? bu->rm2 : NULL, tr ? bu->rv2 : NULL);
        for (int i = 0; i < B; i++) {
            const float *x = sload(m, item_of(in, B, i), A);
            tf_kern_conv2d_forward(m->kern, T, x, p->short_w, p->short_b, 1, ci, Cout, H, W, 1, cw,
                                   cwb);
            const float *c1 = sload(m, item_of(c1s[r], B, i), A);
            item_bn(m, A, c1, mu, rs, p->bn2_w, p->bn2_b, Cout, hw);
            const slot_t osi = r < R - 1 ? item_of(os[r], B, i) : (slot_t){0};
            float *o = r < R - 1 ? sw(m, osi, WS(m, y->fo)) : WS(m, y->fo);
            tf_kern_conv2d_forward(m->kern, o, A, p->conv2_w, p->conv2_b, 1, Cout, Cout, H, W, 3,
                                   cw, cwb);
            tf_add_inplace(o, T, hw * Cout);
            if (r < R - 1)
                sstore(m, osi, o);
            else if (sink) /* a recompute (no sink) discards the block output */
                TF_TRY(sink_put(m, sink, i, o, B, Cout, H, W));
        }
    }
    return TF_OK;
}

/* Backward of one half of an RCM, y = conv3x3(gelu(bn(x))) + b (half 1: bn1, conv1;
 * half 2: bn2, conv2), one batch item at a time: x is slot xs (B, C, H, W), loaded through
 * the item buffer y->it; dx (B, C, H, W) = d x (overwritten) from dy (B, Co, H, W); the
 * BN and conv gradients +=. Half 1 also adds the shortcut's part, y' = conv1x1(x), to dx
 * from dys (B, Co, H, W). dx may be dy itself (C == Co): an item's dy is spent by the
 * convolution's backward before its dx is written, which then goes through the item
 * buffer bdg; otherwise the convolution writes the GELU-output gradient into dx and the
 * BN/GELU gradient is taken there in place. */
static void rcm_half_backward(tf_model *m, const rcm_params *p, const rcm_params *g, int half,
                              slot_t xs, int B, int C, int Co, int H, int W, const float *dy,
                              float *dx, const float *dys) {
    layout_t *y = &m->lay;
    const size_t hw = (size_t)H * W, cwb = y->n_convws * sizeof(float), n = (size_t)B * hw;
    const size_t ni = (size_t)C * hw, no = (size_t)Co * hw;
    /* G, the BN/GELU output, in the item buffer: bf16 slots are loaded into it, G overwrites
     * x there, and x is loaded again after the convolution (fp32 slots are read in place) */
    const int g_in_load = xs.bf16, in_place = dx == dy;
    float *G = WS(m, y->it);
    float *cw = WS(m, y->convws);
    float *mu = WS(m, y->st_m1), *rs = WS(m, y->st_r1);
    double *sd = (double *)(void *)WS(m, y->st_sd), *sdx = sd + C;
    const float *bw = half == 1 ? p->bn1_w : p->bn2_w, *bb = half == 1 ? p->bn1_b : p->bn2_b;
    const float *w = half == 1 ? p->conv1_w : p->conv2_w;
    float *gbw = half == 1 ? g->bn1_w : g->bn2_w, *gbb = half == 1 ? g->bn1_b : g->bn2_b;
    float *gw = half == 1 ? g->conv1_w : g->conv2_w, *gb = half == 1 ? g->conv1_b : g->conv2_b;
    slot_stats(m, xs, B, C, hw, mu, rs, NULL, NULL);
    memset(sd, 0, 2 * (size_t)C * sizeof(double));
    for (int i = 0; i < B; i++) {
        const float *x = sload(m, item_of(xs, B, i), G);
        float *dG = in_place ? WS(m, y->bdg) : dx + i * ni; /* (C, H, W) */
        item_bn(m, G, x, mu, rs, bw, bb, C, hw);
        tf_kern_conv2d_backward(m->kern, dG, gw, gb, dy + i * no, G, w, 1, C, Co, H, W, 3, cw, cwb,
                                1);
        if (g_in_load) x = sload(m, item_of(xs, B, i), G);
        item_bn_gelu_grad(m, dx + i * ni, dG, x, mu, rs, bw, bb, C, hw);
        item_bn_sums(m, sd, sdx, dx + i * ni, x, mu, rs, C, hw);
    }
    for (int c = 0; c < C; c++) {
        gbw[c] += (float)sdx[c];
        gbb[c] += (float)sd[c];
    }
    for (int i = 0; i < B; i++) {
        const float *x = sload(m, item_of(xs, B, i), G);
        item_bn_apply(m, dx + i * ni, x, mu, rs, bw, sd, sdx, n, C, hw);
        if (dys)
            tf_kern_conv2d_backward(m->kern, dx + i * ni, g->short_w, g->short_b, dys + i * no, x,
                                    p->short_w, 1, C, Co, H, W, 1, cw, cwb, 0);
    }
}

/* Backward of a Conv block whose insides are in the slots (saved or recomputed), one
 * batch item at a time; xs is the block input slot. The RCM chain's gradients (B, Cout,
 * H, W) take turns in dout and other (both CLOBBERED): RCM r's conv1-output gradient goes
 * into the one its output gradient is not in, and its input gradient (r > 0) overwrites it
 * there. dx (B, Cin, H, W) = the input gradient (overwritten), written last, by the first
 * RCM's first half, neither dout nor other: the block's scratch or the bytes of its
 * insides c1s, os. */
static void convblock_backward(tf_model *m, int blk, slot_t xs, float *dout, float *other,
                               float *dx, int B, int Cin, int Cout, int H, int W, const slot_t *c1s,
                               const slot_t *os, int nested) {
    layout_t *y = &m->lay;
    const int R = m->a.nrcm;
    float *dcur = dout;
    for (int r = R - 1; r >= 0; r--) {
        const int ci = r ? Cout : Cin;
        const rcm_params *p = &m->rcm_p[blk * R + r];
        const rcm_params *g = &m->rcm_g[blk * R + r];
        const slot_t in = r ? os[r - 1] : xs;
        /* F: this RCM's conv1-output gradient (B, Cout, H, W); dnext: its input gradient */
        float *F = dcur == dout ? other : dout;
        float *dnext = r ? F : dx;
        /* nested (checkpointing): the RCMs share one c1 slot, which the block's recompute
         * left holding the last RCM's; the others' are recomputed here, from their input */
        if (nested && r < R - 1)
            rcm_first_half(m, blk, r, in, c1s[r], MODE_RECOMPUTE, B, ci, Cout, H, W, WS(m, y->it),
                           F); /* F: not yet written */
        /* second half: out = conv2(gelu(bn2(c1))) + short(in); F = d c1 */
        rcm_half_backward(m, p, g, 2, c1s[r], B, Cout, Cout, H, W, dcur, F, NULL);
        /* first half: c1 = conv1(gelu(bn1(in))); dnext = d in, with the shortcut's part */
        rcm_half_backward(m, p, g, 1, in, B, ci, Cout, H, W, F, dnext, dcur);
        dcur = dnext;
    }
}

/* -------------------------------------------------------------------- TFSWA block */

typedef struct {
    tf_tblock_params P[4], G[4];
    tf_tblock_saved S[4];
    int N[4], Ls[4];
    int C, heads, Hd, Hb, Wb, st, sf;
} tfswa_ctx;

static void tfswa_setup(tf_model *m, int k, tfswa_ctx *c) {
    const tf_arch *a = &m->a;
    layout_t *y = &m->lay;
    c->C = a->ch[a->L - 1];
    c->heads = a->heads;
    c->Hd = a->hidden;
    c->Hb = y->H[a->L];
    c->Wb = y->W[a->L];
    c->st = a->wt / 2;
    c->sf = a->wf / 2;
    const int B = y->B, R = tf_swin_relpos_rows(a->wt, a->wf);
    c->N[0] = B * c->Hb, c->Ls[0] = c->Wb;
    c->N[1] = B * c->Wb, c->Ls[1] = c->Hb;
    c->N[2] = c->N[3] = B * y->nW;
    c->Ls[2] = c->Ls[3] = a->wt * a->wf;
    for (int s = 0; s < 4; s++) {
        size_t off = m->tb_off[k * 4 + s];
        tf_tblock_params_point(&c->P[s], m->params + off, c->C, c->heads, c->Hd, s >= 2 ? R : 0);
        tf_tblock_params_point(&c->G[s], m->grads + off, c->C, c->heads, c->Hd, s >= 2 ? R : 0);
        tf_tblock_saved_point(&c->S[s], slot_ptr(m, y->tsv[k][s]), c->N[s], c->Ls[s], c->C,
                              c->heads, c->Hd);
    }
}

/* tokens tok[k][0] (B, F, T, C) -> out (B, T, F, C) */
static void tfswa_forward(tf_model *m, int k, float *out) {
    const tf_arch *a = &m->a;
    layout_t *y = &m->lay;
    tfswa_ctx c;
    tfswa_setup(m, k, &c);
    const int B = y->B, C = c.C, H = c.heads, Hd = c.Hd, F = c.Hb, T = c.Wb;
    const int *idx = (const int *)(void *)WS(m, y->relidx);
    const float *mask = WS(m, y->mask);
    float *tsa_in = slot_ptr(m, y->tok[k][0]), *fsa_in = slot_ptr(m, y->tok[k][1]);
    float *w0 = slot_ptr(m, y->tok[k][2]), *w1 = slot_ptr(m, y->tok[k][3]);
    float *t0 = WS(m, y->tb[0]), *yb = WS(m, y->tb[1]), *wo = WS(m, y->tb[2]), *z = WS(m, y->tb[3]);
    tf_tblock_forward(t0, &c.S[0], tsa_in, &c.P[0], NULL, NULL, 0, c.N[0], c.Ls[0], C, H, Hd);
    tf_seq_swap_forward(fsa_in, t0, B, C, F, T, TF_SEQ_TIME);
    tf_tblock_forward(yb, &c.S[1], fsa_in, &c.P[1], NULL, NULL, 0, c.N[1], c.Ls[1], C, H, Hd);
    tf_window_partition_forward(w0, yb, B, T, F, C, a->wt, a->wf, 0, 0);
    tf_tblock_forward(wo, &c.S[2], w0, &c.P[2], idx, NULL, 0, c.N[2], c.Ls[2], C, H, Hd);
    tf_window_reverse_forward(z, wo, B, T, F, C, a->wt, a->wf, 0, 0);
    tf_window_partition_forward(w1, z, B, T, F, C, a->wt, a->wf, c.st, c.sf);
    tf_tblock_forward(wo, &c.S[3], w1, &c.P[3], idx, mask, y->nW, c.N[3], c.Ls[3], C, H, Hd);
    tf_window_reverse_forward(z, wo, B, T, F, C, a->wt, a->wf, c.st, c.sf);
    const size_t n = (size_t)B * T * F * C;
    for (size_t i = 0; i < n; i++) out[i] = yb[i] + z[i];
}

/* dout (B, T, F, C) (clobbered) -> returns the gradient of tok[k][0] (B, F, T, C) in tb[2] */
static float *tfswa_backward(tf_model *m, int k, float *dout) {
    const tf_arch *a = &m->a;
    layout_t *y = &m->lay;
    tfswa_ctx c;
    tfswa_setup(m, k, &c);
    const int B = y->B, C = c.C, H = c.heads, Hd = c.Hd, F = c.Hb, T = c.Wb;
    const size_t n = (size_t)B * T * F * C;
    const int *idx = (const int *)(void *)WS(m, y->relidx);
    float *ws = WS(m, y->tbws);
    float *tsa_in = slot_ptr(m, y->tok[k][0]), *fsa_in = slot_ptr(m, y->tok[k][1]);
    float *w0 = slot_ptr(m, y->tok[k][2]), *w1 = slot_ptr(m, y->tok[k][3]);
    float *b0 = WS(m, y->tb[0]), *b1 = WS(m, y->tb[1]), *b2 = WS(m, y->tb[2]),
          *b3 = WS(m, y->tb[3]);
    /* out = y + z2: dz2 = dout, dy = dout + (through the Swin pair) */
    zero(b2, n);
    tf_window_reverse_backward(b2, dout, B, T, F, C, a->wt, a->wf, c.st, c.sf);
    zero(b3, n);
    tf_tblock_backward(b3, &c.G[3], b2, &c.S[3], w1, &c.P[3], idx, c.N[3], c.Ls[3], C, H, Hd, ws);
    zero(b0, n);
    tf_window_partition_backward(b0, b3, B, T, F, C, a->wt, a->wf, c.st, c.sf);
    zero(b2, n);
    tf_window_reverse_backward(b2, b0, B, T, F, C, a->wt, a->wf, 0, 0);
    zero(b3, n);
    tf_tblock_backward(b3, &c.G[2], b2, &c.S[2], w0, &c.P[2], idx, c.N[2], c.Ls[2], C, H, Hd, ws);
    tf_window_partition_backward(dout, b3, B, T, F, C, a->wt, a->wf, 0, 0);
    zero(b0, n);
    tf_tblock_backward(b0, &c.G[1], dout, &c.S[1], fsa_in, &c.P[1], NULL, c.N[1], c.Ls[1], C, H, Hd,
                       ws);
    zero(b1, n);
    tf_seq_swap_backward(b1, b0, B, C, F, T, TF_SEQ_TIME);
    zero(b2, n);
    tf_tblock_backward(b2, &c.G[0], b1, &c.S[0], tsa_in, &c.P[0], NULL, c.N[0], c.Ls[0], C, H, Hd,
                       ws);
    return b2;
}

/* ------------------------------------------------------------------------ forward */

static tf_status forward(tf_model *m, float *out, const float *mix, int B, int64_t N,
                         int training) {
    const tf_arch *a = &m->a;
    layout_t *y = &m->lay;
    m->have_fwd = 0;
    if (training && m->mode != TF_MODEL_TRAIN)
        return tf_err(TF_EINTERNAL, "tf_model_forward: a training forward on a model created "
                                    "for inference (TF_MODEL_INFER)");
    if (B > m->plan.batch || N > m->plan.frames)
        return tf_err(TF_EUSER,
                      "model input of batch %d x %lld samples exceeds the planned %d x %lld", B,
                      (long long)N, m->plan.batch, (long long)m->plan.frames);
    if (!training && m->mode == TF_MODEL_TRAIN) {
        /* a training model's eval forward: one item at a time in the B = 1 eval layout
         * (tf_layout), which the arena always holds; BN uses the running statistics, so
         * the items are independent */
        TF_TRY(tf_layout(y, a, 1, N, m->threads, m->mode, m->kern));
        if (y->ev.bytes > m->plan.activations + m->plan.workspace)
            return tf_err(TF_EINTERNAL, "eval layout of 1 x %lld exceeds the plan", (long long)N);
        tf_status s = TF_OK;
        m->tap_items = B;
        for (int b = 0; b < B && s == TF_OK; b++) {
            m->tap_item = b;
            s = tf_model_forward_eval(m, out + (size_t)b * a->S * 2 * N, mix + (size_t)b * 2 * N);
        }
        m->tap_item = m->tap_items = 0;
        return s;
    }
    TF_TRY(tf_layout(y, a, B, N, m->threads, m->mode, m->kern));
    if (y->act_bytes > m->plan.activations || y->work_bytes > m->plan.workspace)
        return tf_err(TF_EINTERNAL, "layout of %d x %lld exceeds the plan", B, (long long)N);
    if (!training) return tf_model_forward_eval(m, out, mix);
    const int L = a->L, K = a->K, S = a->S, Fb = y->Fb, T = y->T, Fp = y->Fp, Tp = y->Tp;
    const int mode = MODE_TRAIN;
    const size_t nspec = (size_t)B * 2 * Fb * T;
    tf_stft *st = m->stft;
    /* STFT into the phase slots, then magnitude and phase (in place) */
    float *sub = WS(m, y->spec_re), *mag = WS(m, y->mag_in);
    float *pr = slot_ptr(m, y->pr), *pi = slot_ptr(m, y->pi);
    TF_TRY(tf_stft_forward(st, pr, pi, mix, 2 * B, N));
    tf_magphase(mag, pr, pi, pr, pi, nspec);
    /* subbands (B, 2K, Fs, T) in sub, padded into x0 (B, 2K, Fp, Tp) */
    TF_TRY(tf_subband_split(sub, mag, B, 2, Fb, T, K));
    float *x = sw(m, y->enc_in[0], WS(m, y->wx));
    tf_copy_corner(x, Fp, Tp, sub, y->Fs, T, (size_t)B * a->cin);
    sstore(m, y->enc_in[0], x);
    TF_TRY(tf_model_tap_put(m, "input_spec", x, y->enc_in[0].n));
    /* encoder: each block's output goes, item by item, to its skip and (pooled) to the
     * next level's input or the bottleneck */
    for (int l = 0; l < L; l++) {
        const int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l], H = y->H[l], W = y->W[l];
        const sink_t sk = {0, l};
        TF_TRY(convblock_forward(m, l, y->enc_in[l], mode, B, ci, co, H, W, y->enc_c1[l],
                                 y->enc_o[l], &sk, WS(m, y->D1)));
    }
    /* bottleneck */
    const int C = a->ch[L - 1], Hb = y->H[L], Wb = y->W[L];
    float *bott = WS(m, y->bott);
    if (a->nblk > 0) {
        TF_TRY(tf_swin_check_dims(Wb, Hb, a->wt, a->wf, a->wt / 2, a->wf / 2));
        tf_swin_relpos_index((int *)(void *)WS(m, y->relidx), a->wt, a->wf);
        tf_swin_attn_mask(WS(m, y->mask), Wb, Hb, a->wt, a->wf, a->wt / 2, a->wf / 2);
        tf_map_to_seq_forward(slot_ptr(m, y->tok[0][0]), bott, B, C, Hb, Wb, TF_SEQ_TIME);
        float *o = WS(m, y->tb[4]);
        for (int k = 0; k < a->nblk; k++) {
            tfswa_forward(m, k, o);
            if (k < a->nblk - 1)
                tf_seq_swap_forward(slot_ptr(m, y->tok[k + 1][0]), o, B, C, Hb, Wb, TF_SEQ_FREQ);
            tf_seq_to_map_forward(bott, o, B, C, Hb, Wb, TF_SEQ_FREQ);
            char nm[32];
            snprintf(nm, sizeof nm, "tfswa.%d", k);
            TF_TRY(tf_model_tap_put(m, nm, bott, (size_t)B * C * Hb * Wb));
        }
    }
    /* decoder: the bottleneck map upsampled into the first decoder's input; each block's
     * output, item by item, upsampled into the next one's, or the head input */
    {
        const int cu = a->dec_in[0] - a->ch[L - 1];
        float *P = WS(m, y->it);
        for (int i = 0; i < B; i++) {
            tf_upsample2x_forward(P, bott + (size_t)i * cu * Hb * Wb, 1, cu, Hb, Wb);
            store_channels(m, item_of(y->dec_cat[0], B, i), a->dec_in[0], 0, P, 1, cu,
                           (size_t)4 * Hb * Wb);
        }
    }
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j, H = y->H[i], W = y->W[i];
        const sink_t sk = {1, j};
        TF_TRY(convblock_forward(m, L + j, y->dec_cat[j], mode, B, a->dec_in[j], a->dec_out[j], H,
                                 W, y->dec_c1[j], y->dec_o[j], &sk, WS(m, y->D1)));
    }
    /* head, one item at a time: z (2KS, Fp, Tp) = conv1x1(head input), then per target
     * its 2K channels cropped to (2K, Fs, T), the activation (ReLU, or sigmoid times the
     * input magnitude), subbands merged -> (2, Fb, T), times the phase, ISTFT */
    const int co = 2 * K * S;
    const size_t hw = (size_t)Fp * Tp;
    float *hc = WS(m, y->oyr), *om = WS(m, y->om), *yi = WS(m, y->oyi);
    const size_t nc = (size_t)2 * Fb * T, ncrop = (size_t)2 * K * y->Fs * T;
    for (int b = 0; b < B; b++) {
        const float *hin = sload(m, item_of(y->head_in, B, b), WS(m, y->hin));
        const slot_t zs = item_of(y->z, B, b);
        float *zb = sw(m, zs, WS(m, y->zi));
        tf_kern_conv2d_forward(m->kern, zb, hin, m->head_w, m->head_b, 1, a->ch[0], co, Fp, Tp, 1,
                               WS(m, y->convws), y->n_convws * sizeof(float));
        sstore(m, zs, zb);
        const float *x0 =
            a->output == TF_OUT_MASK ? sload(m, item_of(y->enc_in[0], B, b), WS(m, y->x0i)) : NULL;
        for (int s = 0; s < S; s++) {
            tf_copy_corner(hc, y->Fs, T, zb + (size_t)s * 2 * K * hw, Fp, Tp, (size_t)2 * K);
            if (x0) {
                const int Fs = y->Fs;
#pragma omp parallel for schedule(static)
                for (int c = 0; c < 2 * K; c++) {
                    const float *xi = x0 + (size_t)c * hw;
                    float *h = hc + (size_t)c * Fs * T;
                    for (int f = 0; f < Fs; f++)
                        for (int t = 0; t < T; t++)
                            h[(size_t)f * T + t] =
                                tf_mask_act(xi[(size_t)f * Tp + t], h[(size_t)f * T + t]);
                }
            } else {
#pragma omp parallel for schedule(static) if (ncrop > 65536)
                for (size_t i = 0; i < ncrop; i++) hc[i] = tf_relu(hc[i]);
            }
            TF_TRY(tf_subband_merge(om, hc, 1, 2, Fb, T, K));
            const size_t row = (size_t)b * S + s; /* (b, s) */
            TF_TRY(tf_model_tap_put_at(m, "mag", (size_t)B * S * nc, row * nc, om, nc));
            tf_combine_forward(hc, yi, om, pr + b * nc, pi + b * nc, nc);
            TF_TRY(tf_istft_forward(st, out + row * 2 * N, hc, yi, 2, N));
        }
    }
    TF_TRY(tf_model_tap_put(m, "wave", out, (size_t)B * S * 2 * N));
    m->have_fwd = 1;
    return TF_OK;
}

/* ----------------------------------------------------------------------- backward */

static tf_status backward(tf_model *m, const float *dout) {
    if (m->mode != TF_MODEL_TRAIN)
        return tf_err(TF_EINTERNAL, "tf_model_backward: the model was created for inference "
                                    "(TF_MODEL_INFER)");
    if (!m->have_fwd)
        return tf_err(TF_EINTERNAL, "tf_model_backward needs a training forward first");
    const tf_arch *a = &m->a;
    layout_t *y = &m->lay;
    const int B = y->B, L = a->L, K = a->K, S = a->S, Fb = y->Fb, T = y->T, Fp = y->Fp, Tp = y->Tp;
    const int ck = a->ckpt == TF_CKPT_BLOCKS;
    const int64_t N = y->N;
    tf_stft *st = m->stft;
    const size_t nc = (size_t)2 * Fb * T;
    float *om = WS(m, y->om), *yr = WS(m, y->oyr), *yi = WS(m, y->oyi);
    float *pr = slot_ptr(m, y->pr), *pi = slot_ptr(m, y->pi);
    /* the head, one item at a time: per target ISTFT, phase, subband merge, crop -> its 2K
     * channels of dz (2KS, Fp, Tp); the activation; the 1x1 conv -> the item's head-input
     * gradient in D0 */
    const int co = 2 * K * S, c0 = a->ch[0];
    const size_t hw = (size_t)Fp * Tp, nzi = (size_t)co * hw;
    float *dz = WS(m, y->dzi), *Dc = WS(m, y->D0), *Dn = WS(m, y->D1);
    for (int b = 0; b < B; b++) {
        for (int s = 0; s < S; s++) {
            const size_t row = (size_t)b * S + s;
            zero(yr, nc);
            zero(yi, nc);
            TF_TRY(tf_istft_backward(st, yr, yi, dout + row * 2 * N, 2, N));
            zero(om, nc);
            tf_combine_backward(om, yr, yi, pr + b * nc, pi + b * nc, nc);
            zero(yr, (size_t)2 * K * y->Fs * T);
            TF_TRY(tf_subband_merge_backward(yr, om, 1, 2, Fb, T, K));
            tf_copy_corner(dz + (size_t)s * 2 * K * hw, Fp, Tp, yr, y->Fs, T, (size_t)2 * K);
        }
        const float *z = sload(m, item_of(y->z, B, b), WS(m, y->zi));
        if (a->output == TF_OUT_MASK) {
            const float *x0 = sload(m, item_of(y->enc_in[0], B, b), WS(m, y->x0i));
#pragma omp parallel for schedule(static)
            for (int r = 0; r < co; r++) {
                const float *xi = x0 + (size_t)(r % (2 * K)) * hw;
                for (size_t i = 0; i < hw; i++)
                    dz[r * hw + i] *= tf_mask_act_grad(xi[i], z[r * hw + i]);
            }
        } else {
#pragma omp parallel for schedule(static) if (nzi > 65536)
            for (size_t i = 0; i < nzi; i++) dz[i] = tf_relu_backward(dz[i], z[i]);
        }
        const float *hin = sload(m, item_of(y->head_in, B, b), WS(m, y->hin));
        tf_kern_conv2d_backward(m->kern, Dc + (size_t)b * c0 * hw, m->ghead_w, m->ghead_b, dz, hin,
                                m->head_w, 1, c0, co, Fp, Tp, 1, WS(m, y->convws),
                                y->n_convws * sizeof(float), 1);
    }
    /* decoder, last block first */
    for (int j = L - 1; j >= 0; j--) {
        const int i = L - 1 - j, cs = a->ch[i], cu = a->dec_in[j] - cs, H = y->H[i], W = y->W[i];
        const size_t px = (size_t)B * H * W;
        if (ck)
            TF_TRY(convblock_forward(m, L + j, y->dec_cat[j], MODE_RECOMPUTE, B, a->dec_in[j],
                                     a->dec_out[j], H, W, y->dec_c1[j], y->dec_o[j], NULL, Dn));
        /* the input gradient in the block's insides, the chain in Dc and Dn; where it does
         * not fit there: in Dn, the chain in Dc's two halves (the layout sizes them) */
        const int tmp = y->dx[L + j].where == IN_TMP;
        float *dx = tmp ? Dn : slot_ptr(m, y->dx[L + j]);
        convblock_backward(m, L + j, y->dec_cat[j], Dc, tmp ? Dc + px * a->dec_out[j] : Dn, dx, B,
                           a->dec_in[j], a->dec_out[j], H, W, y->dec_c1[j], y->dec_o[j], ck);
        /* dec_cat[j] is read for the last time above: the skip gradient may now live there */
        float *dsk = slot_ptr(m, y->dskip[i]);
        zero(dsk, y->dskip[i].n);
        zero(Dc, px * cu);
        tf_concat_backward(Dc, dsk, dx, B, cu, cs, H, W);
        zero(Dn, (size_t)B * cu * y->H[i + 1] * y->W[i + 1]);
        tf_upsample2x_backward(Dn, Dc, B, cu, y->H[i + 1], y->W[i + 1]);
        float *t = Dc;
        Dc = Dn;
        Dn = t;
    }
    /* bottleneck: Dc = d map (B, C, Hb, Wb) */
    const int C = a->ch[L - 1], Hb = y->H[L], Wb = y->W[L];
    const size_t ntok = (size_t)B * C * Hb * Wb;
    if (a->nblk > 0) {
        float *dt = WS(m, y->tb[5]);
        zero(dt, ntok);
        tf_seq_to_map_backward(dt, Dc, B, C, Hb, Wb, TF_SEQ_FREQ);
        for (int k = a->nblk - 1; k >= 0; k--) {
            if (ck) tfswa_forward(m, k, WS(m, y->tb[4]));
            float *dtsa = tfswa_backward(m, k, dt);
            zero(dt, ntok);
            if (k > 0)
                tf_seq_swap_backward(dt, dtsa, B, C, Hb, Wb, TF_SEQ_FREQ);
            else
                tf_map_to_seq_backward(dt, dtsa, B, C, Hb, Wb, TF_SEQ_TIME);
        }
        Dc = dt;
    }
    tf_avgpool2x2_backward(slot_ptr(m, y->dskip[L - 1]), Dc, B, C, y->H[L - 1], y->W[L - 1]);
    /* encoder, deepest first */
    Dn = WS(m, y->D1);
    for (int l = L - 1; l >= 0; l--) {
        const int ci = l ? a->ch[l - 1] : a->cin, cl = a->ch[l], H = y->H[l], W = y->W[l];
        if (ck)
            TF_TRY(convblock_forward(m, l, y->enc_in[l], MODE_RECOMPUTE, B, ci, cl, H, W,
                                     y->enc_c1[l], y->enc_o[l], NULL, Dn));
        const int tmp = y->dx[l].where == IN_TMP; /* as in the decoder; the chain: E */
        float *dx = tmp ? Dn : slot_ptr(m, y->dx[l]);
        convblock_backward(m, l, y->enc_in[l], slot_ptr(m, y->dskip[l]), tmp ? WS(m, y->E) : Dn, dx,
                           B, ci, cl, H, W, y->enc_c1[l], y->enc_o[l], ck);
        if (l > 0)
            tf_avgpool2x2_backward(slot_ptr(m, y->dskip[l - 1]), dx, B, ci, y->H[l - 1],
                                   y->W[l - 1]);
    }
    return TF_OK;
}

tf_status tf_model_forward(tf_model *m, float *out, const float *mix, int B, int64_t N,
                           int training) {
    int saved = openblas_get_num_threads();
    if (saved != 1) openblas_set_num_threads(1);
    tf_status s = forward(m, out, mix, B, N, training);
    if (saved > 1) openblas_set_num_threads(saved);
    /* a failure inside a kernel call (recorded by the backend) fails the forward */
    if (s == TF_OK) s = tf_kernels_status(m->kern);
    return s;
}

tf_status tf_model_backward(tf_model *m, const float *dout) {
    int saved = openblas_get_num_threads();
    if (saved != 1) openblas_set_num_threads(1);
    tf_status s = backward(m, dout);
    if (saved > 1) openblas_set_num_threads(saved);
    if (s == TF_OK) s = tf_kernels_status(m->kern);
    return s;
}
