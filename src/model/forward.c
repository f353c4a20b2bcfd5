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
#include "nn/conv.h"
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
static float *sw(tf_model *m, slot_t s, size_t fallback) {
    return s.bf16 ? WS(m, fallback) : (float *)slot_ptr(m, s);
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
static float *sload(tf_model *m, slot_t s, size_t fallback) {
    if (!s.bf16) return slot_ptr(m, s);
    float *d = WS(m, fallback);
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

static void bn_gelu_forward(tf_model *m, float *out, const float *in, const float *w,
                            const float *b, float *rm, float *rv, int B, int C, int H, int W,
                            int mode) {
    layout_t *y = &m->lay;
    tf_batchnorm2d_gelu_forward(out, WS(m, y->st_m1), WS(m, y->st_r1),
                                mode == MODE_TRAIN ? rm : NULL, mode == MODE_TRAIN ? rv : NULL, in,
                                w, b, B, C, H, W, TF_BN_MOMENTUM, TF_BN_EPS);
}

/* One Conv block (nrcm RCMs): x (B, Cin, H, W) fp32 -> out (B, Cout, H, W) fp32. The
 * insides go to the slots c1s[r] (conv1 output) and os[r] (RCM output, r < nrcm-1). */
static void convblock_forward(tf_model *m, int blk, const float *x, float *out, int mode, int B,
                              int Cin, int Cout, int H, int W, const slot_t *c1s,
                              const slot_t *os) {
    layout_t *y = &m->lay;
    const int R = m->a.nrcm;
    const size_t px = (size_t)B * H * W;
    float *A = WS(m, y->A), *T = WS(m, y->ts), *cw = WS(m, y->convws);
    const float *in = x;
    for (int r = 0; r < R; r++) {
        const int ci = r ? Cout : Cin;
        const rcm_params *p = &m->rcm_p[blk * R + r];
        rcm_buffers *bu = &m->rcm_b[blk * R + r];
        bn_gelu_forward(m, A, in, p->bn1_w, p->bn1_b, bu->rm1, bu->rv1, B, ci, H, W, mode);
        float *c1 = sw(m, c1s[r], y->wc1);
        tf_kern_conv2d_forward(m->kern, c1, A, p->conv1_w, p->conv1_b, B, ci, Cout, H, W, 3, cw,
                               y->n_convws * sizeof(float));
        sstore(m, c1s[r], c1);
        bn_gelu_forward(m, A, c1, p->bn2_w, p->bn2_b, bu->rm2, bu->rv2, B, Cout, H, W, mode);
        float *o = r == R - 1 ? out : sw(m, os[r], (r & 1) ? y->wo1 : y->wo0);
        tf_kern_conv2d_forward(m->kern, o, A, p->conv2_w, p->conv2_b, B, Cout, Cout, H, W, 3, cw,
                               y->n_convws * sizeof(float));
        tf_kern_conv2d_forward(m->kern, T, in, p->short_w, p->short_b, B, ci, Cout, H, W, 1, cw,
                               y->n_convws * sizeof(float));
        tf_add_inplace(o, T, px * Cout);
        if (r < R - 1) sstore(m, os[r], o);
        in = o;
    }
}

/* dA (B, C, HW) = gelu'(bn(x)) * dG, the BN output bn(x) recomputed from x (B, C, HW) and
 * the batch statistics mu, rs (C) in per-thread tiles, never whole: exactly the values of
 * zeroing dA and calling tf_gelu_backward(dA, dG, bn(x)). */
static void bn_gelu_backward(tf_model *m, float *dA, const float *dG, const float *x,
                             const float *mu, const float *rs, const float *w, const float *bb,
                             int B, int C, size_t hw) {
    const size_t nch = (hw + TF_BN_TILE - 1) / TF_BN_TILE, ntask = (size_t)B * C * nch;
    float *tiles = WS(m, m->lay.tile);
#pragma omp parallel num_threads(m->threads)
    {
        float *ta = tiles + (size_t)omp_get_thread_num() * 2 * TF_BN_TILE, *td = ta + TF_BN_TILE;
#pragma omp for schedule(static)
        for (size_t t = 0; t < ntask; t++) {
            const size_t plane = t / nch, k = t % nch, c = plane % (size_t)C;
            const size_t off = plane * hw + k * TF_BN_TILE;
            const size_t n = hw - k * TF_BN_TILE < TF_BN_TILE ? hw - k * TF_BN_TILE : TF_BN_TILE;
            tf_batchnorm_normalize(ta, x + off, n, mu[c], rs[c], w[c], bb[c]);
            memset(td, 0, n * sizeof(float));
            tf_gelu_backward(td, dG + off, ta, n);
            memcpy(dA + off, td, n * sizeof(float));
        }
    }
}

/* Backward of a Conv block whose insides are in the slots (saved or recomputed); xs is
 * the block input slot.
 * dout (B, Cout, H, W) is CLOBBERED (used as scratch); dx (B, Cin, H, W) +=. */
static void convblock_backward(tf_model *m, int blk, slot_t xs, float *dout, float *dx, int B,
                               int Cin, int Cout, int H, int W, const slot_t *c1s,
                               const slot_t *os) {
    layout_t *y = &m->lay;
    const int R = m->a.nrcm;
    const size_t px = (size_t)B * H * W;
    float *G = WS(m, y->G), *dA = WS(m, y->dA), *dG = WS(m, y->dG);
    float *dC1 = WS(m, y->dC1), *E = WS(m, y->E), *cw = WS(m, y->convws);
    float *mu = WS(m, y->st_m1), *rs = WS(m, y->st_r1);
    float *dcur = dout;
    for (int r = R - 1; r >= 0; r--) {
        const int ci = r ? Cout : Cin;
        const rcm_params *p = &m->rcm_p[blk * R + r];
        const rcm_params *g = &m->rcm_g[blk * R + r];
        /* the RCM input: the block input (slot xs) or the previous RCM's output */
        const float *in = sload(m, r ? os[r - 1] : xs, y->wx);
        const float *c1 = sload(m, c1s[r], y->wc1);
        float *dnext = r ? (dcur == dout ? E : dout) : dx;
        /* second half: out = conv2(gelu(bn2(c1))) + short(in) */
        tf_batchnorm2d_gelu_forward(G, mu, rs, NULL, NULL, c1, p->bn2_w, p->bn2_b, B, Cout, H, W,
                                    TF_BN_MOMENTUM, TF_BN_EPS);
        /* dG = (set), dnext = for r > 0 (a fresh buffer), += into the block's dx for r = 0 */
        tf_kern_conv2d_backward(m->kern, dG, g->conv2_w, g->conv2_b, dcur, G, p->conv2_w, B, Cout,
                                Cout, H, W, 3, cw, y->n_convws * sizeof(float), 1);
        tf_kern_conv2d_backward(m->kern, dnext, g->short_w, g->short_b, dcur, in, p->short_w, B, ci,
                                Cout, H, W, 1, cw, y->n_convws * sizeof(float), r > 0);
        bn_gelu_backward(m, dA, dG, c1, mu, rs, p->bn2_w, p->bn2_b, B, Cout, (size_t)H * W);
        zero(dC1, px * Cout);
        tf_batchnorm2d_backward(dC1, g->bn2_w, g->bn2_b, dA, c1, p->bn2_w, mu, rs, B, Cout, H, W);
        /* first half: c1 = conv1(gelu(bn1(in))) */
        tf_batchnorm2d_gelu_forward(G, mu, rs, NULL, NULL, in, p->bn1_w, p->bn1_b, B, ci, H, W,
                                    TF_BN_MOMENTUM, TF_BN_EPS);
        tf_kern_conv2d_backward(m->kern, dG, g->conv1_w, g->conv1_b, dC1, G, p->conv1_w, B, ci,
                                Cout, H, W, 3, cw, y->n_convws * sizeof(float), 1);
        bn_gelu_backward(m, dA, dG, in, mu, rs, p->bn1_w, p->bn1_b, B, ci, (size_t)H * W);
        tf_batchnorm2d_backward(dnext, g->bn1_w, g->bn1_b, dA, in, p->bn1_w, mu, rs, B, ci, H, W);
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
    TF_TRY(tf_layout(y, a, B, N, m->threads, m->mode, m->kern));
    if (y->act_bytes > m->plan.activations || y->work_bytes > m->plan.workspace)
        return tf_err(TF_EINTERNAL, "layout of %d x %lld exceeds the plan", B, (long long)N);
    if (!training) return tf_model_forward_eval(m, out, mix);
    const int L = a->L, K = a->K, S = a->S, Fb = y->Fb, T = y->T, Fp = y->Fp, Tp = y->Tp;
    const int mode = MODE_TRAIN;
    const size_t nspec = (size_t)B * 2 * Fb * T;
    tf_stft *st = m->stft;
    /* STFT, magnitude and phase */
    float *re = WS(m, y->spec_re), *im = WS(m, y->spec_im), *mag = WS(m, y->mag_in);
    float *pr = slot_ptr(m, y->pr), *pi = slot_ptr(m, y->pi);
    TF_TRY(tf_stft_forward(st, re, im, mix, 2 * B, N));
    tf_magphase(mag, pr, pi, re, im, nspec);
    /* subbands (B, 2K, Fs, T) in re, padded into x0 (B, 2K, Fp, Tp) */
    TF_TRY(tf_subband_split(re, mag, B, 2, Fb, T, K));
    float *x = sw(m, y->enc_in[0], y->wx);
    tf_copy_corner(x, Fp, Tp, re, y->Fs, T, (size_t)B * a->cin);
    sstore(m, y->enc_in[0], x);
    TF_TRY(tf_model_tap_put(m, "input_spec", x, y->enc_in[0].n));
    /* encoder */
    float *bout = WS(m, y->bout);
    for (int l = 0; l < L; l++) {
        const int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l], H = y->H[l], W = y->W[l];
        convblock_forward(m, l, x, bout, mode, B, ci, co, H, W, y->enc_c1[l], y->enc_o[l]);
        {
            char nm[32];
            snprintf(nm, sizeof nm, "enc.%d", l);
            TF_TRY(tf_model_tap_put(m, nm, bout, (size_t)B * co * H * W));
        }
        const int j = L - 1 - l;
        store_channels(m, y->dec_cat[j], a->dec_in[j], a->dec_in[j] - co, bout, B, co,
                       (size_t)H * W);
        if (l < L - 1) {
            x = sw(m, y->enc_in[l + 1], y->wx);
            tf_avgpool2x2_forward(x, bout, B, co, H, W);
            sstore(m, y->enc_in[l + 1], x);
        } else {
            tf_avgpool2x2_forward(WS(m, y->bott), bout, B, co, H, W);
        }
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
    /* decoder */
    const float *prev = bott;
    float *A = WS(m, y->A);
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j, cu = a->dec_in[j] - a->ch[i], H = y->H[i], W = y->W[i];
        tf_upsample2x_forward(A, prev, B, cu, y->H[i + 1], y->W[i + 1]);
        store_channels(m, y->dec_cat[j], a->dec_in[j], 0, A, B, cu, (size_t)H * W);
        const float *xin = sload(m, y->dec_cat[j], y->wx);
        float *dst = j == L - 1 ? sw(m, y->head_in, y->bout) : bout;
        convblock_forward(m, L + j, xin, dst, mode, B, a->dec_in[j], a->dec_out[j], H, W,
                          y->dec_c1[j], y->dec_o[j]);
        if (j == L - 1) sstore(m, y->head_in, dst);
        char nm[32];
        snprintf(nm, sizeof nm, "dec.%d", j);
        TF_TRY(tf_model_tap_put(m, nm, dst, (size_t)B * a->dec_out[j] * H * W));
        prev = dst;
    }
    /* head: z (B, 2KS, Fp, Tp) -> magnitudes. bf16: the head input (in bout, which the
     * head's buffers reuse) is read back from its slot (the same, rounded, values) */
    if (y->head_in.bf16) prev = sload(m, y->head_in, y->wx);
    const int co = 2 * K * S;
    const size_t hw = (size_t)Fp * Tp;
    float *zb = sw(m, y->z, y->zbuf);
    tf_kern_conv2d_forward(m->kern, zb, prev, m->head_w, m->head_b, B, a->ch[0], co, Fp, Tp, 1,
                           WS(m, y->convws), y->n_convws * sizeof(float));
    sstore(m, y->z, zb);
    const float *x0 = a->output == TF_OUT_MASK ? sload(m, y->enc_in[0], y->wx) : NULL;
    /* per (item, target): its 2K channels cropped to (2K, Fs, T), the activation (ReLU, or
     * sigmoid times the input magnitude), subbands merged -> (2, Fb, T), times the phase,
     * ISTFT */
    float *hc = WS(m, y->oyr), *om = WS(m, y->om), *yi = WS(m, y->oyi);
    const size_t nc = (size_t)2 * Fb * T, ncrop = (size_t)2 * K * y->Fs * T;
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            const size_t r0 = (size_t)b * co + (size_t)s * 2 * K; /* first channel of z */
            tf_copy_corner(hc, y->Fs, T, zb + r0 * hw, Fp, Tp, (size_t)2 * K);
            if (x0) {
                const int Fs = y->Fs;
#pragma omp parallel for schedule(static)
                for (int c = 0; c < 2 * K; c++) {
                    const float *xi = x0 + ((size_t)b * 2 * K + c) * hw;
                    float *h = hc + (size_t)c * Fs * T;
                    for (int f = 0; f < Fs; f++)
                        for (int t = 0; t < T; t++)
                            h[(size_t)f * T + t] =
                                xi[(size_t)f * Tp + t] / (1.f + expf(-h[(size_t)f * T + t]));
                }
            } else {
#pragma omp parallel for schedule(static) if (ncrop > 65536)
                for (size_t i = 0; i < ncrop; i++) hc[i] = hc[i] > 0 ? hc[i] : 0.f;
            }
            TF_TRY(tf_subband_merge(om, hc, 1, 2, Fb, T, K));
            const size_t row = (size_t)b * S + s; /* (b, s) */
            TF_TRY(tf_model_tap_put_at(m, "mag", (size_t)B * S * nc, row * nc, om, nc));
            tf_combine_forward(hc, yi, om, pr + b * nc, pi + b * nc, nc);
            TF_TRY(tf_istft_forward(st, out + row * 2 * N, hc, yi, 2, N));
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
    for (int l = 0; l < L; l++) zero(WS(m, y->dskip[l]), (size_t)B * a->ch[l] * y->H[l] * y->W[l]);
    /* per (item, target): ISTFT, phase, subband merge, crop -> its 2K channels of dz */
    const int co = 2 * K * S;
    const size_t hw = (size_t)Fp * Tp, nz = (size_t)B * co * hw;
    float *dz = WS(m, y->zbuf);
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            const size_t row = (size_t)b * S + s, r0 = (size_t)b * co + (size_t)s * 2 * K;
            zero(yr, nc);
            zero(yi, nc);
            TF_TRY(tf_istft_backward(st, yr, yi, dout + row * 2 * N, 2, N));
            zero(om, nc);
            tf_combine_backward(om, yr, yi, pr + b * nc, pi + b * nc, nc);
            zero(yr, (size_t)2 * K * y->Fs * T);
            TF_TRY(tf_subband_merge_backward(yr, om, 1, 2, Fb, T, K));
            tf_copy_corner(dz + r0 * hw, Fp, Tp, yr, y->Fs, T, (size_t)2 * K);
        }
    /* head activation */
    const float *z = sload(m, y->z, y->zload);
    if (a->output == TF_OUT_MASK) {
        const float *x0 = sload(m, y->enc_in[0], y->wx); /* wx: free until hin below */
#pragma omp parallel for schedule(static)
        for (size_t r = 0; r < (size_t)B * co; r++) {
            size_t b = r / co, c = r % (2 * K);
            const float *xi = x0 + (b * 2 * K + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                float s = 1.f / (1.f + expf(-z[r * hw + i]));
                dz[r * hw + i] *= xi[i] * s * (1.f - s);
            }
        }
    } else {
#pragma omp parallel for schedule(static) if (nz > 65536)
        for (size_t i = 0; i < nz; i++)
            if (!(z[i] > 0)) dz[i] = 0.f;
    }
    float *Dc = WS(m, y->D0), *Dn = WS(m, y->D1);
    {
        const float *hin = sload(m, y->head_in, y->wx);
        tf_kern_conv2d_backward(m->kern, Dc, m->ghead_w, m->ghead_b, dz, hin, m->head_w, B,
                                a->ch[0], co, Fp, Tp, 1, WS(m, y->convws),
                                y->n_convws * sizeof(float), 1);
    }
    /* decoder, last block first */
    for (int j = L - 1; j >= 0; j--) {
        const int i = L - 1 - j, cs = a->ch[i], cu = a->dec_in[j] - cs, H = y->H[i], W = y->W[i];
        const size_t px = (size_t)B * H * W;
        if (ck)
            convblock_forward(m, L + j, sload(m, y->dec_cat[j], y->wx), WS(m, y->bout),
                              MODE_RECOMPUTE, B, a->dec_in[j], a->dec_out[j], H, W, y->dec_c1[j],
                              y->dec_o[j]);
        zero(Dn, px * a->dec_in[j]);
        convblock_backward(m, L + j, y->dec_cat[j], Dc, Dn, B, a->dec_in[j], a->dec_out[j], H, W,
                           y->dec_c1[j], y->dec_o[j]);
        zero(Dc, px * cu);
        tf_concat_backward(Dc, WS(m, y->dskip[i]), Dn, B, cu, cs, H, W);
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
    tf_avgpool2x2_backward(WS(m, y->dskip[L - 1]), Dc, B, C, y->H[L - 1], y->W[L - 1]);
    /* encoder, deepest first */
    Dn = WS(m, y->D1);
    for (int l = L - 1; l >= 0; l--) {
        const int ci = l ? a->ch[l - 1] : a->cin, cl = a->ch[l], H = y->H[l], W = y->W[l];
        if (ck)
            convblock_forward(m, l, sload(m, y->enc_in[l], y->wx), WS(m, y->bout), MODE_RECOMPUTE,
                              B, ci, cl, H, W, y->enc_c1[l], y->enc_o[l]);
        zero(Dn, (size_t)B * ci * H * W);
        convblock_backward(m, l, y->enc_in[l], WS(m, y->dskip[l]), Dn, B, ci, cl, H, W,
                           y->enc_c1[l], y->enc_o[l]);
        if (l > 0)
            tf_avgpool2x2_backward(WS(m, y->dskip[l - 1]), Dn, B, ci, y->H[l - 1], y->W[l - 1]);
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
