/* Swin window helpers and feature-map <-> token layout changes (see nn/attn.h). All the
 * rearrangements are permutations written as gathers over the destination, so each
 * destination element is written by one thread and the adjoints are exact. */
#include <stddef.h>

#include "nn/attn.h"
#include "nn/elem.h"

tf_status tf_swin_check_dims(int T, int F, int wt, int wf, int st, int sf) {
    if (wt <= 0 || wf <= 0)
        return tf_err(TF_EUSER, "window: size %d x %d (time x frequency) must be positive", wt, wf);
    if (T <= 0 || F <= 0)
        return tf_err(TF_EUSER, "window: feature map %d x %d (time x frequency) is empty", T, F);
    if (T % wt)
        return tf_err(TF_EUSER,
                      "window: time size %d is not a multiple of the window's %d (pad the map)", T,
                      wt);
    if (F % wf)
        return tf_err(TF_EUSER,
                      "window: frequency size %d is not a multiple of the window's %d (pad the "
                      "map)",
                      F, wf);
    if (st < 0 || st >= wt || sf < 0 || sf >= wf)
        return tf_err(TF_EUSER, "window: shift (%d, %d) must lie in [0, %d) x [0, %d)", st, sf, wt,
                      wf);
    return TF_OK;
}

/* to_win: win (B*nW, wt*wf, C) (+)= x rolled by (-st, -sf) and partitioned;
 * else:   x (B, T, F, C) (+)= the inverse permutation of win. */
static void window_permute(float *dst, const float *src, int B, int T, int F, int C, int wt, int wf,
                           int st, int sf, int to_win, int acc) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * T * F * C > 65536)
    for (int b = 0; b < B; b++)
        for (int tr = 0; tr < T; tr++) { /* tr: time on the rolled map */
            int t, wi, ti;
            tf_window_axis(tr, T, wt, st, &t, &wi, &ti);
            for (int fr = 0; fr < F; fr++) { /* fr: frequency on the rolled map */
                int f, wj, fj;
                size_t iw, ix;
                tf_window_axis(fr, F, wf, sf, &f, &wj, &fj);
                tf_window_compose(b, t, wi, ti, f, wj, fj, T, F, C, wt, wf, &iw, &ix);
                float *d = dst + (to_win ? iw : ix);
                const float *s = src + (to_win ? ix : iw);
                if (acc)
                    for (int c = 0; c < C; c++) d[c] += s[c];
                else
                    for (int c = 0; c < C; c++) d[c] = s[c];
            }
        }
}

// win (B*nWt*nWf, wt*wf, C), x (B, T, F, C)
void tf_window_partition_forward(float *win, const float *x, int B, int T, int F, int C, int wt,
                                 int wf, int st, int sf) {
    window_permute(win, x, B, T, F, C, wt, wf, st, sf, 1, 0);
}

// dx (B, T, F, C) +=, dwin (B*nW, wt*wf, C)
void tf_window_partition_backward(float *dx, const float *dwin, int B, int T, int F, int C, int wt,
                                  int wf, int st, int sf) {
    window_permute(dx, dwin, B, T, F, C, wt, wf, st, sf, 0, 1);
}

// x (B, T, F, C), win (B*nW, wt*wf, C)
void tf_window_reverse_forward(float *x, const float *win, int B, int T, int F, int C, int wt,
                               int wf, int st, int sf) {
    window_permute(x, win, B, T, F, C, wt, wf, st, sf, 0, 0);
}

// dwin (B*nW, wt*wf, C) +=, dx (B, T, F, C)
void tf_window_reverse_backward(float *dwin, const float *dx, int B, int T, int F, int C, int wt,
                                int wf, int st, int sf) {
    window_permute(dwin, dx, B, T, F, C, wt, wf, st, sf, 1, 1);
}

int tf_swin_relpos_rows(int wt, int wf) {
    return (2 * wt - 1) * (2 * wf - 1);
}

// index (L, L), L = wt*wf
void tf_swin_relpos_index(int *index, int wt, int wf) {
    const int L = wt * wf;
    for (int a = 0; a < L; a++)
        for (int b = 0; b < L; b++) {
            int r0 = a / wf - b / wf + wt - 1, r1 = a % wf - b % wf + wf - 1;
            index[a * L + b] = r0 * (2 * wf - 1) + r1;
        }
}

/* Swin's img_mask slices on one rolled axis of size n, window w, shift s:
 * [0, n-w) -> 0, [n-w, n-s) -> 1, [n-s, n) -> 2; no shift: one region. */
static int region(int x, int n, int w, int s) {
    if (s == 0) return 0;
    return x < n - w ? 0 : (x < n - s ? 1 : 2);
}

// mask (nWt*nWf, L, L), L = wt*wf
void tf_swin_attn_mask(float *mask, int T, int F, int wt, int wf, int st, int sf) {
    const int nWt = T / wt, nWf = F / wf, L = wt * wf;
    for (int wi = 0; wi < nWt; wi++)
        for (int wj = 0; wj < nWf; wj++) {
            float *m = mask + ((size_t)wi * nWf + wj) * L * L;
            for (int a = 0; a < L; a++) {
                int ra =
                    region(wi * wt + a / wf, T, wt, st) * 3 + region(wj * wf + a % wf, F, wf, sf);
                for (int b = 0; b < L; b++) {
                    int rb = region(wi * wt + b / wf, T, wt, st) * 3 +
                             region(wj * wf + b % wf, F, wf, sf);
                    m[(size_t)a * L + b] = ra == rb ? 0.f : -100.f;
                }
            }
        }
}

/* token index of map element (b, f, t) for the axis, in units of C (nn/elem.h) */
static inline size_t tok_index(int b, int f, int t, int F, int T, tf_seq_axis ax) {
    return tf_seq_token(b, f, t, F, T, ax == TF_SEQ_TIME);
}

// tok (B*F, T, C) or (B*T, F, C) (+)= x (B, C, F, T)
static void map_gather_tokens(float *tok, const float *x, int B, int C, int F, int T,
                              tf_seq_axis ax, int acc) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * C * F * T > 65536)
    for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++)
            for (int t = 0; t < T; t++) {
                float *d = tok + tok_index(b, f, t, F, T, ax) * C;
                const float *s = x + ((size_t)b * C * F + f) * T + t;
                const size_t cs = (size_t)F * T;
                if (acc)
                    for (int c = 0; c < C; c++) d[c] += s[c * cs];
                else
                    for (int c = 0; c < C; c++) d[c] = s[c * cs];
            }
}

// x (B, C, F, T) (+)= tokens
static void map_scatter_tokens(float *x, const float *tok, int B, int C, int F, int T,
                               tf_seq_axis ax, int acc) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * C * F * T > 65536)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int f = 0; f < F; f++) {
                float *d = x + (((size_t)b * C + c) * F + f) * T;
                if (acc)
                    for (int t = 0; t < T; t++) d[t] += tok[tok_index(b, f, t, F, T, ax) * C + c];
                else
                    for (int t = 0; t < T; t++) d[t] = tok[tok_index(b, f, t, F, T, ax) * C + c];
            }
}

void tf_map_to_seq_forward(float *tok, const float *x, int B, int C, int F, int T, tf_seq_axis ax) {
    map_gather_tokens(tok, x, B, C, F, T, ax, 0);
}

void tf_map_to_seq_backward(float *dx, const float *dtok, int B, int C, int F, int T,
                            tf_seq_axis ax) {
    map_scatter_tokens(dx, dtok, B, C, F, T, ax, 1);
}

void tf_seq_to_map_forward(float *x, const float *tok, int B, int C, int F, int T, tf_seq_axis ax) {
    map_scatter_tokens(x, tok, B, C, F, T, ax, 0);
}

void tf_seq_to_map_backward(float *dtok, const float *dx, int B, int C, int F, int T,
                            tf_seq_axis ax) {
    map_gather_tokens(dtok, dx, B, C, F, T, ax, 1);
}

/* dst (B, A2, A1, C) (+)= src (B, A1, A2, C) transposed in the middle two axes */
static void swap_mid(float *dst, const float *src, int B, int A1, int A2, int C, int acc) {
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * A1 * A2 * C > 65536)
    for (int b = 0; b < B; b++)
        for (int a2 = 0; a2 < A2; a2++)
            for (int a1 = 0; a1 < A1; a1++) {
                float *d = dst + (((size_t)b * A2 + a2) * A1 + a1) * C;
                const float *s = src + (((size_t)b * A1 + a1) * A2 + a2) * C;
                if (acc)
                    for (int c = 0; c < C; c++) d[c] += s[c];
                else
                    for (int c = 0; c < C; c++) d[c] = s[c];
            }
}

void tf_seq_swap_forward(float *out, const float *in, int B, int C, int F, int T,
                         tf_seq_axis from_ax) {
    if (from_ax == TF_SEQ_TIME)
        swap_mid(out, in, B, F, T, C, 0); /* (B, F, T, C) -> (B, T, F, C) */
    else
        swap_mid(out, in, B, T, F, C, 0); /* (B, T, F, C) -> (B, F, T, C) */
}

void tf_seq_swap_backward(float *din, const float *dout, int B, int C, int F, int T,
                          tf_seq_axis from_ax) {
    if (from_ax == TF_SEQ_TIME)
        swap_mid(din, dout, B, T, F, C, 1); /* dout (B, T, F, C) -> din (B, F, T, C) */
    else
        swap_mid(din, dout, B, F, T, C, 1);
}
