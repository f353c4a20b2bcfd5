/* TFSWA-ResUNet eval forward (training = 0), streaming through the few buffers of the
 * eval layout (evlay_t, model.c): nothing is saved for a backward. The same code runs on
 * an inference model (in its workspace, the whole batch) and on a training model (in its
 * activation + workspace arena, one item at a time: tf_model_forward), so both give
 * bitwise the same output for the same item shapes. It performs the same kernel
 * calls on the same values as the training forward's structure, with the running
 * statistics: BN, GELU and the head activation run in place, the head per (item, target,
 * audio channel), and the input STFT is taken again at the head for the phase. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dsp/stft.h"
#include "model/model_internal.h"
#include "nn/act.h"
#include "nn/attn.h"
#include "nn/conv.h"

static float *EV(tf_model *m, size_t off) {
    return (float *)(void *)(m->arena + off);
}

/* One Conv block in eval mode. x (B, Cin, H, W) in X is CLOBBERED; the block output
 * (B, Cout, H, W) goes to out (which may be X). Y, Q hold (B, Cout, H, W) scratch. Per RCM:
 *   Q = short(x); x = gelu(bn1(x)) in place; Y = conv1(x); Y = gelu(bn2(Y)) in place;
 *   o = conv2(Y) + Q into X (or out for the last RCM). */
static void convblock_eval(tf_model *m, int blk, float *X, float *out, float *Y, float *Q, int B,
                           int Cin, int Cout, int H, int W) {
    const int R = m->a.nrcm;
    const size_t px = (size_t)B * H * W;
    float *cw = EV(m, m->lay.ev.convws);
    for (int r = 0; r < R; r++) {
        const int ci = r ? Cout : Cin;
        const rcm_params *p = &m->rcm_p[blk * R + r];
        const rcm_buffers *bu = &m->rcm_b[blk * R + r];
        tf_kern_conv2d_forward(m->kern, Q, X, p->short_w, p->short_b, B, ci, Cout, H, W, 1, cw,
                               m->lay.ev.n_convws * sizeof(float));
        tf_batchnorm2d_gelu_eval_forward(X, X, p->bn1_w, p->bn1_b, bu->rm1, bu->rv1, B, ci, H, W,
                                         TF_BN_EPS);
        tf_kern_conv2d_forward(m->kern, Y, X, p->conv1_w, p->conv1_b, B, ci, Cout, H, W, 3, cw,
                               m->lay.ev.n_convws * sizeof(float));
        tf_batchnorm2d_gelu_eval_forward(Y, Y, p->bn2_w, p->bn2_b, bu->rm2, bu->rv2, B, Cout, H, W,
                                         TF_BN_EPS);
        float *o = r == R - 1 ? out : X;
        tf_kern_conv2d_forward(m->kern, o, Y, p->conv2_w, p->conv2_b, B, Cout, Cout, H, W, 3, cw,
                               m->lay.ev.n_convws * sizeof(float));
        tf_add_inplace(o, Q, px * Cout);
    }
}

/* One TFSWA block: tokens io (B, F, T, C) -> io (B, T, F, C); t1, t2 token scratch. */
static void tfswa_eval(tf_model *m, int k, float *io, float *t1, float *t2) {
    const tf_arch *a = &m->a;
    const layout_t *y = &m->lay;
    const int B = y->B, C = a->ch[a->L - 1], H = a->heads, Hd = a->hidden;
    const int F = y->H[a->L], T = y->W[a->L], st = a->wt / 2, sf = a->wf / 2;
    const int R = tf_swin_relpos_rows(a->wt, a->wf), Ls = a->wt * a->wf;
    const int N[4] = {B * F, B * T, B * y->nW, B * y->nW}, Lq[4] = {T, F, Ls, Ls};
    const int *idx = (const int *)(void *)EV(m, y->ev.relidx);
    const float *mask = EV(m, y->ev.mask);
    tf_tblock_params P[4];
    tf_tblock_saved S[4];
    for (int s = 0; s < 4; s++) {
        tf_tblock_params_point(&P[s], m->params + m->tb_off[k * 4 + s], C, H, Hd, s >= 2 ? R : 0);
        tf_tblock_saved_point(&S[s], EV(m, y->ev.tsv), N[s], Lq[s], C, H, Hd);
    }
    tf_tblock_forward(t1, &S[0], io, &P[0], NULL, NULL, 0, N[0], Lq[0], C, H, Hd); /* TSA */
    tf_seq_swap_forward(io, t1, B, C, F, T, TF_SEQ_TIME);
    tf_tblock_forward(t1, &S[1], io, &P[1], NULL, NULL, 0, N[1], Lq[1], C, H, Hd); /* FSA: y */
    tf_window_partition_forward(io, t1, B, T, F, C, a->wt, a->wf, 0, 0);
    tf_tblock_forward(t2, &S[2], io, &P[2], idx, NULL, 0, N[2], Lq[2], C, H, Hd);
    tf_window_reverse_forward(io, t2, B, T, F, C, a->wt, a->wf, 0, 0);
    tf_window_partition_forward(t2, io, B, T, F, C, a->wt, a->wf, st, sf);
    tf_tblock_forward(io, &S[3], t2, &P[3], idx, mask, y->nW, N[3], Lq[3], C, H, Hd);
    tf_window_reverse_forward(t2, io, B, T, F, C, a->wt, a->wf, st, sf);
    const size_t n = (size_t)B * T * F * C;
    for (size_t i = 0; i < n; i++) io[i] = t1[i] + t2[i]; /* y + SwinSW(SwinW(y)) */
}

/* STFT of one audio channel x (N) -> re, im (Fb, T); mag = |X| when mag != NULL, phase
 * into pr, pi when they are not NULL */
static tf_status stft_channel(tf_model *m, const float *x, int64_t N, float *mag, float *pr,
                              float *pi) {
    const layout_t *y = &m->lay;
    float *re = EV(m, y->ev.re), *im = EV(m, y->ev.im);
    TF_TRY(tf_stft_forward(m->stft, re, im, x, 1, N));
    tf_magphase(mag, pr, pi, re, im, (size_t)y->Fb * y->T);
    return TF_OK;
}

/* magnitude mag (Fb, T) of one audio channel -> its K subbands padded, dst (K, Fp, Tp) */
static tf_status subbands_padded(tf_model *m, float *dst, const float *mag) {
    const layout_t *y = &m->lay;
    float *re = EV(m, y->ev.re);
    TF_TRY(tf_subband_split(re, mag, 1, 1, y->Fb, y->T, m->a.K));
    tf_copy_corner(dst, y->Fp, y->Tp, re, y->Fs, y->T, (size_t)m->a.K);
    return TF_OK;
}

tf_status tf_model_forward_eval(tf_model *m, float *out, const float *mix) {
    const tf_arch *a = &m->a;
    const layout_t *y = &m->lay;
    const evlay_t *e = &y->ev;
    const int B = y->B, L = a->L, K = a->K, S = a->S, Fb = y->Fb, T = y->T, Fp = y->Fp, Tp = y->Tp,
              th = m->threads;
    const int64_t N = y->N;
    const size_t hw = (size_t)Fp * Tp, nf = (size_t)Fb * T;
    float *P[2] = {EV(m, e->P0), EV(m, e->P1)}, *Q = EV(m, e->Q);
    float *mag = EV(m, e->mag);
    /* input: subbands of |STFT| (B, 2K, Fp, Tp) into P0, one audio channel at a time */
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < 2; ch++) {
            TF_TRY(stft_channel(m, mix + ((size_t)b * 2 + ch) * N, N, mag, NULL, NULL));
            TF_TRY(subbands_padded(m, P[0] + ((size_t)b * 2 + ch) * K * hw, mag));
        }
    TF_TRY(tf_model_tap_put(m, "input_spec", P[0], (size_t)B * a->cin * hw));
    /* encoder: block input in P0, output into skip l, pooled into P0 (or the bottleneck) */
    float *bott = EV(m, e->bott);
    for (int l = 0; l < L; l++) {
        const int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l], H = y->H[l], W = y->W[l];
        float *skip = EV(m, e->skip[l]);
        convblock_eval(m, l, P[0], skip, P[1], Q, B, ci, co, H, W);
        char nm[32];
        snprintf(nm, sizeof nm, "enc.%d", l);
        TF_TRY(tf_model_tap_put(m, nm, skip, (size_t)B * co * H * W));
        tf_avgpool2x2_forward(l < L - 1 ? P[0] : bott, skip, B, co, H, W);
    }
    /* bottleneck */
    const int C = a->ch[L - 1], Hb = y->H[L], Wb = y->W[L];
    if (a->nblk > 0) {
        TF_TRY(tf_swin_check_dims(Wb, Hb, a->wt, a->wf, a->wt / 2, a->wf / 2));
        tf_swin_relpos_index((int *)(void *)EV(m, e->relidx), a->wt, a->wf);
        tf_swin_attn_mask(EV(m, e->mask), Wb, Hb, a->wt, a->wf, a->wt / 2, a->wf / 2);
        float *t[3] = {EV(m, e->t[0]), EV(m, e->t[1]), EV(m, e->t[2])};
        tf_map_to_seq_forward(t[0], bott, B, C, Hb, Wb, TF_SEQ_TIME);
        for (int k = 0; k < a->nblk; k++) {
            tfswa_eval(m, k, t[0], t[1], t[2]);
            tf_seq_to_map_forward(bott, t[0], B, C, Hb, Wb, TF_SEQ_FREQ);
            if (k < a->nblk - 1) { /* the next block's input in t[1] */
                tf_seq_swap_forward(t[1], t[0], B, C, Hb, Wb, TF_SEQ_FREQ);
                float *tmp = t[0];
                t[0] = t[1], t[1] = tmp;
            }
            char nm[32];
            snprintf(nm, sizeof nm, "tfswa.%d", k);
            TF_TRY(tf_model_tap_put(m, nm, bott, (size_t)B * C * Hb * Wb));
        }
    }
    /* decoder: decoder j's input [up(prev), skip] in P[(L-1-j) & 1], so the last one
     * (the head input) ends in P0 */
    const float *prev = bott;
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j, cs = a->ch[i], cu = a->dec_in[j] - cs, H = y->H[i], W = y->W[i];
        const size_t HW = (size_t)H * W, hw1 = (size_t)y->H[i + 1] * y->W[i + 1];
        float *X = P[(L - 1 - j) & 1], *other = P[(L - j) & 1];
        const float *skip = EV(m, e->skip[i]);
        for (int b = 0; b < B; b++) {
            float *xb = X + (size_t)b * a->dec_in[j] * HW;
            tf_upsample2x_forward(xb, prev + (size_t)b * cu * hw1, 1, cu, y->H[i + 1], y->W[i + 1]);
            memcpy(xb + (size_t)cu * HW, skip + (size_t)b * cs * HW, sizeof(float) * cs * HW);
        }
        convblock_eval(m, L + j, X, X, other, Q, B, a->dec_in[j], a->dec_out[j], H, W);
        char nm[32];
        snprintf(nm, sizeof nm, "dec.%d", j);
        TF_TRY(tf_model_tap_put(m, nm, X, (size_t)B * a->dec_out[j] * HW));
        prev = X;
    }
    /* head, per item b and audio channel ch: the phase (and for masks the input
     * subbands) from the STFT again; per target s the 1x1 conv to its K channels
     * (s, ch, k), activation, crop, subband merge, times the phase, ISTFT */
    const int c0 = a->ch[0];
    float *re = EV(m, e->re), *im = EV(m, e->im), *pr = EV(m, e->pr), *pi = EV(m, e->pi);
    float *zk = EV(m, e->zk), *xk = a->output == TF_OUT_MASK ? EV(m, e->xk) : NULL;
    const size_t nk = (size_t)K * hw;
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < 2; ch++) {
            TF_TRY(stft_channel(m, mix + ((size_t)b * 2 + ch) * N, N, xk ? mag : NULL, pr, pi));
            if (xk) TF_TRY(subbands_padded(m, xk, mag));
            for (int s = 0; s < S; s++) {
                const int c = s * 2 * K + ch * K; /* first head channel of (s, ch) */
                tf_conv2d_forward(zk, P[0] + (size_t)b * c0 * hw, m->head_w + (size_t)c * c0,
                                  m->head_b + c, 1, c0, K, Fp, Tp, 1, NULL, 0, th);
                if (xk) {
#pragma omp parallel for schedule(static) if (nk > 65536)
                    for (size_t i = 0; i < nk; i++) zk[i] = xk[i] / (1.f + expf(-zk[i]));
                } else {
#pragma omp parallel for schedule(static) if (nk > 65536)
                    for (size_t i = 0; i < nk; i++) zk[i] = zk[i] > 0 ? zk[i] : 0.f;
                }
                tf_copy_corner(re, y->Fs, T, zk, Fp, Tp, (size_t)K);
                TF_TRY(tf_subband_merge(im, re, 1, 1, Fb, T, K));
                const size_t row = ((size_t)b * S + s) * 2 + ch; /* (b, s, ch) */
                TF_TRY(tf_model_tap_put_at(m, "mag", (size_t)B * S * 2 * nf, row * nf, im, nf));
                tf_combine_forward(re, mag, im, pr, pi, nf);
                TF_TRY(tf_istft_forward(m->stft, out + row * N, re, mag, 1, N));
            }
        }
    TF_TRY(tf_model_tap_put(m, "wave", out, (size_t)B * S * 2 * N));
    return TF_OK;
}
