/* TFSWA-ResUNet: architecture, parameter table, memory plan (layout), allocation, init,
 * safetensors I/O. The forward and backward are in forward.c. Choices: model.h. */
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp/stft.h"
#include "model/model_internal.h"
#include "nn/attn.h"
#include "nn/conv.h"
#include "util/rng.h"
#include "util/safetensors.h"

enum { INIT_ONE, INIT_ZERO, INIT_UNIFORM, INIT_NORMAL002 };

#define ALIGN 64
static size_t align_up(size_t x) {
    return (x + ALIGN - 1) / ALIGN * ALIGN;
}
static size_t zmax(size_t a, size_t b) {
    return a > b ? a : b;
}

/* ------------------------------------------------------------------ architecture */

tf_status tf_arch_from_config(tf_arch *a, const tf_model_config *c) {
    memset(a, 0, sizeof *a);
    if (c->n_levels < 1 || c->n_levels > TF_MAX_LEVELS)
        return tf_err(TF_EUSER, "channels: %d levels (1..%d)", c->n_levels, TF_MAX_LEVELS);
    a->L = c->n_levels;
    for (int l = 0; l < a->L; l++) {
        if (c->channels[l] < 1 || c->channels[l] > 65536)
            return tf_err(TF_EUSER, "channels: entry %d is %d (1..65536)", l, c->channels[l]);
        a->ch[l] = c->channels[l];
    }
    if (c->rcms_per_block < 1 || c->rcms_per_block > TF_MAX_RCMS)
        return tf_err(TF_EUSER, "rcms_per_block: %d (1..%d)", c->rcms_per_block, TF_MAX_RCMS);
    if (c->tfswa_blocks < 0 || c->tfswa_blocks > TF_MAX_TFSWA)
        return tf_err(TF_EUSER, "tfswa_blocks: %d (0..%d)", c->tfswa_blocks, TF_MAX_TFSWA);
    if (c->heads < 1 || a->ch[a->L - 1] % c->heads != 0)
        return tf_err(TF_EUSER, "heads: %d must divide the bottleneck channels %d", c->heads,
                      a->ch[a->L - 1]);
    if (c->window_t < 1 || c->window_f < 1 || c->window_t > 64 || c->window_f > 64)
        return tf_err(TF_EUSER, "window: [%d, %d] (each 1..64)", c->window_t, c->window_f);
    if (!(c->mlp_ratio > 0) || c->mlp_ratio > 64)
        return tf_err(TF_EUSER, "mlp_ratio: %g (0 < r <= 64)", c->mlp_ratio);
    if (c->n_targets < 1 || c->n_targets > TF_MAX_TARGETS)
        return tf_err(TF_EUSER, "targets: %d targets (1..%d)", c->n_targets, TF_MAX_TARGETS);
    if (c->n_fft < 4 || c->n_fft % 2)
        return tf_err(TF_EUSER, "stft.window_size: %d (even, >= 4)", c->n_fft);
    if (c->hop < 1 || c->hop > c->n_fft / 2)
        return tf_err(TF_EUSER, "stft.hop_length: %d (1..window_size/2 = %d)", c->hop,
                      c->n_fft / 2);
    if (c->subbands < 1 || (c->n_fft / 2) % c->subbands)
        return tf_err(TF_EUSER, "subbands: %d must divide stft.window_size/2 = %d", c->subbands,
                      c->n_fft / 2);
    a->nrcm = c->rcms_per_block;
    a->nblk = c->tfswa_blocks;
    a->heads = c->heads;
    a->wt = c->window_t;
    a->wf = c->window_f;
    a->hidden = (int)lround(a->ch[a->L - 1] * c->mlp_ratio);
    if (a->hidden < 1) a->hidden = 1;
    a->K = c->subbands;
    a->S = c->n_targets;
    a->cin = 2 * a->K;
    a->n_fft = c->n_fft;
    a->hop = c->hop;
    a->output = c->output;
    a->act_dtype = c->activation_dtype;
    a->ckpt = c->checkpointing;
    a->backend = c->backend;
    a->compute = c->compute_dtype;
    int cur = a->ch[a->L - 1];
    for (int j = 0; j < a->L; j++) {
        int i = a->L - 1 - j;
        a->dec_in[j] = cur + a->ch[i];
        a->dec_out[j] = i > 0 ? a->ch[i - 1] : a->ch[0];
        cur = a->dec_out[j];
    }
    return TF_OK;
}

size_t tf_tblock_hidden(const tf_arch *a) {
    return (size_t)a->hidden;
}

/* ---------------------------------------------------------------- parameter table */

typedef struct {
    tf_param_info *t; /* NULL: count only */
    size_t n, np, nb; /* entries, param floats, buffer floats */
} table_b;

static void add(table_b *tb, int is_buffer, int init, int fan_in, int ndim, const int64_t *shape,
                const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void add(table_b *tb, int is_buffer, int init, int fan_in, int ndim, const int64_t *shape,
                const char *fmt, ...) {
    size_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= (size_t)shape[d];
    if (tb->t) {
        tf_param_info *p = &tb->t[tb->n];
        memset(p, 0, sizeof *p);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->name, sizeof p->name, fmt, ap);
        va_end(ap);
        p->ndim = ndim;
        for (int d = 0; d < ndim; d++) p->shape[d] = shape[d];
        p->numel = numel;
        p->is_buffer = is_buffer;
        p->init = init;
        p->fan_in = fan_in;
        p->offset = is_buffer ? tb->nb : tb->np;
    }
    if (is_buffer)
        tb->nb += numel;
    else
        tb->np += numel;
    tb->n++;
}

#define SH(...)                                                                                    \
    (const int64_t[]) {                                                                            \
        __VA_ARGS__                                                                                \
    }

static void add_rcm(table_b *tb, const char *pre, int r, int ci, int co) {
    add(tb, 0, INIT_ONE, 0, 1, SH(ci), "%s.rcm.%d.bn1.weight", pre, r);
    add(tb, 0, INIT_ZERO, 0, 1, SH(ci), "%s.rcm.%d.bn1.bias", pre, r);
    add(tb, 0, INIT_UNIFORM, ci * 9, 4, SH(co, ci, 3, 3), "%s.rcm.%d.conv1.weight", pre, r);
    add(tb, 0, INIT_UNIFORM, ci * 9, 1, SH(co), "%s.rcm.%d.conv1.bias", pre, r);
    add(tb, 0, INIT_ONE, 0, 1, SH(co), "%s.rcm.%d.bn2.weight", pre, r);
    add(tb, 0, INIT_ZERO, 0, 1, SH(co), "%s.rcm.%d.bn2.bias", pre, r);
    add(tb, 0, INIT_UNIFORM, co * 9, 4, SH(co, co, 3, 3), "%s.rcm.%d.conv2.weight", pre, r);
    add(tb, 0, INIT_UNIFORM, co * 9, 1, SH(co), "%s.rcm.%d.conv2.bias", pre, r);
    add(tb, 0, INIT_UNIFORM, ci, 4, SH(co, ci, 1, 1), "%s.rcm.%d.short.weight", pre, r);
    add(tb, 0, INIT_UNIFORM, ci, 1, SH(co), "%s.rcm.%d.short.bias", pre, r);
    add(tb, 1, INIT_ZERO, 0, 1, SH(ci), "%s.rcm.%d.bn1.running_mean", pre, r);
    add(tb, 1, INIT_ONE, 0, 1, SH(ci), "%s.rcm.%d.bn1.running_var", pre, r);
    add(tb, 1, INIT_ZERO, 0, 1, SH(co), "%s.rcm.%d.bn2.running_mean", pre, r);
    add(tb, 1, INIT_ONE, 0, 1, SH(co), "%s.rcm.%d.bn2.running_var", pre, r);
}

/* In tf_tblock_params_point's order: the tblock's params are one contiguous run. */
static void add_tblock(table_b *tb, const char *pre, int C, int Hd, int R, int heads) {
    add(tb, 0, INIT_ONE, 0, 1, SH(C), "%s.ln1.weight", pre);
    add(tb, 0, INIT_ZERO, 0, 1, SH(C), "%s.ln1.bias", pre);
    add(tb, 0, INIT_UNIFORM, C, 2, SH(3 * C, C), "%s.attn.qkv.weight", pre);
    add(tb, 0, INIT_UNIFORM, C, 1, SH(3 * C), "%s.attn.qkv.bias", pre);
    add(tb, 0, INIT_UNIFORM, C, 2, SH(C, C), "%s.attn.proj.weight", pre);
    add(tb, 0, INIT_UNIFORM, C, 1, SH(C), "%s.attn.proj.bias", pre);
    add(tb, 0, INIT_ONE, 0, 1, SH(C), "%s.ln2.weight", pre);
    add(tb, 0, INIT_ZERO, 0, 1, SH(C), "%s.ln2.bias", pre);
    add(tb, 0, INIT_UNIFORM, C, 2, SH(Hd, C), "%s.mlp.fc1.weight", pre);
    add(tb, 0, INIT_UNIFORM, C, 1, SH(Hd), "%s.mlp.fc1.bias", pre);
    add(tb, 0, INIT_UNIFORM, Hd, 2, SH(C, Hd), "%s.mlp.fc2.weight", pre);
    add(tb, 0, INIT_UNIFORM, Hd, 1, SH(C), "%s.mlp.fc2.bias", pre);
    if (R > 0) add(tb, 0, INIT_NORMAL002, 0, 2, SH(R, heads), "%s.attn.rel_bias", pre);
}

static void build_table(table_b *tb, const tf_arch *a) {
    char pre[48];
    int ci = a->cin;
    for (int l = 0; l < a->L; l++) {
        snprintf(pre, sizeof pre, "enc.%d", l);
        for (int r = 0; r < a->nrcm; r++) add_rcm(tb, pre, r, r ? a->ch[l] : ci, a->ch[l]);
        ci = a->ch[l];
    }
    int C = a->ch[a->L - 1], R = tf_swin_relpos_rows(a->wt, a->wf);
    for (int b = 0; b < a->nblk; b++) {
        snprintf(pre, sizeof pre, "tfswa.%d.tsa", b);
        add_tblock(tb, pre, C, a->hidden, 0, a->heads);
        snprintf(pre, sizeof pre, "tfswa.%d.fsa", b);
        add_tblock(tb, pre, C, a->hidden, 0, a->heads);
        for (int s = 0; s < 2; s++) {
            snprintf(pre, sizeof pre, "tfswa.%d.swin.%d", b, s);
            add_tblock(tb, pre, C, a->hidden, R, a->heads);
        }
    }
    for (int j = 0; j < a->L; j++) {
        snprintf(pre, sizeof pre, "dec.%d", j);
        for (int r = 0; r < a->nrcm; r++)
            add_rcm(tb, pre, r, r ? a->dec_out[j] : a->dec_in[j], a->dec_out[j]);
    }
    int co = 2 * a->K * a->S;
    add(tb, 0, INIT_UNIFORM, a->ch[0], 4, SH(co, a->ch[0], 1, 1), "head.weight");
    add(tb, 0, INIT_UNIFORM, a->ch[0], 1, SH(co), "head.bias");
}

tf_status tf_model_param_count(size_t *out, const tf_model_config *cfg) {
    tf_arch a;
    TF_TRY(tf_arch_from_config(&a, cfg));
    table_b tb = {0};
    build_table(&tb, &a);
    *out = tb.np;
    return TF_OK;
}

/* ------------------------------------------------------------------------ layout */

typedef struct {
    size_t act, work;
} cursor_t;

static slot_t put(cursor_t *c, int where, int bf16, size_t n) {
    slot_t s = {(unsigned char)where, (unsigned char)bf16, 0, n};
    size_t *cur = where == IN_ACT ? &c->act : &c->work;
    s.off = *cur;
    *cur += align_up(n * (bf16 ? 2 : 4));
    return s;
}

static size_t wput(cursor_t *c, size_t nfloats) {
    size_t off = c->work;
    c->work += align_up(nfloats * 4);
    return off;
}

static int ceil_mult(int x, int m) {
    return (x + m - 1) / m * m;
}

/* Conv-block internals: c1 for every RCM, o for all but the last. */
static void put_block(cursor_t *c, int where, int bf16, slot_t *c1, slot_t *o, int nrcm,
                      size_t n_out) {
    for (int r = 0; r < nrcm; r++) {
        c1[r] = put(c, where, bf16, n_out);
        if (r < nrcm - 1) o[r] = put(c, where, bf16, n_out);
    }
}

/* The recompute scratch's Conv-block internals (checkpointing): ONE c1 slot that every RCM
 * shares (each RCM's conv1 output is recomputed just before that RCM's backward, from the
 * RCM input o[r-1], forward.c), then o for all but the last RCM: nrcm slots, not 2nrcm-1. */
static void put_block_nested(cursor_t *c, int where, int bf16, slot_t *c1, slot_t *o, int nrcm,
                             size_t n_out) {
    const slot_t one = put(c, where, bf16, n_out);
    for (int r = 0; r < nrcm; r++) {
        c1[r] = one;
        if (r < nrcm - 1) o[r] = put(c, where, bf16, n_out);
    }
}

static size_t bump(size_t *cur, size_t nfloats) {
    size_t off = *cur;
    *cur += align_up(nfloats * 4);
    return off;
}

/* The eval forward's buffers (forward_eval.c), from byte 0 of the arena. Lifetimes: the
 * skips and the bottleneck map are kept, P0 holds every conv block's input; the stage
 * scratch is used in turn by the input STFT (re, im, mag), the conv blocks (P1, Q,
 * convws), the TFSWA stack (t, tsv, relidx, mask) and the head (re .. zk). */
/* *acc = max(*acc, workspace floats of conv (B, ci -> co, H x W, k x k, with bias) through
 * kern (registering the shape there), or through the ref kernels when kern is NULL;
 * train = 0: the forward's workspace only. */
tf_status tf_conv_ws(size_t *acc, tf_kernels *kern, int B, int ci, int co, int H, int W, int k,
                     int train, int threads) {
    size_t bytes;
    if (kern)
        TF_TRY(tf_kern_conv2d_add(kern, B, ci, co, H, W, k, 1, train, &bytes));
    else
        bytes =
            sizeof(float) * (train ? tf_conv2d_workspace_floats(ci, co, H, W, k, 0, threads)
                                   : tf_conv2d_forward_workspace_floats(ci, H, W, k, 0, threads));
    const size_t f = (bytes + sizeof(float) - 1) / sizeof(float);
    if (f > *acc) *acc = f;
    return TF_OK;
}

/* The convolutions of one Conv block (nrcm RCMs, ci -> co at H x W): conv1, conv2 and the
 * 1x1 shortcut of each RCM. */
tf_status tf_block_conv_ws(size_t *acc, tf_kernels *kern, const tf_arch *a, int B, int ci, int co,
                           int H, int W, int train, int threads) {
    for (int r = 0; r < a->nrcm; r++) {
        const int c0 = r ? co : ci;
        if (r > 1) break; /* RCMs after the first repeat the shapes of the second */
        TF_TRY(tf_conv_ws(acc, kern, B, c0, co, H, W, 3, train, threads));
        TF_TRY(tf_conv_ws(acc, kern, B, co, co, H, W, 3, train, threads));
        TF_TRY(tf_conv_ws(acc, kern, B, c0, co, H, W, 1, train, threads));
    }
    return TF_OK;
}

static tf_status eval_layout(evlay_t *e, const tf_arch *a, const layout_t *y, int threads,
                             tf_kernels *kern) {
    memset(e, 0, sizeof *e);
    const int L = a->L, K = a->K, C = a->ch[L - 1], Hd = a->hidden, Ls = a->wt * a->wf;
    const size_t b = (size_t)y->B;
    size_t c = 0;
    size_t big = 0, q = 0, cw = 0;
    for (int l = 0; l < L; l++) {
        const int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l], H = y->H[l], W = y->W[l];
        const size_t px = b * H * W;
        e->skip[l] = bump(&c, px * co);
        big = zmax(big, px * zmax(ci, co));
        q = zmax(q, px * co);
        TF_TRY(tf_block_conv_ws(&cw, kern, a, y->B, ci, co, H, W, 0, threads));
    }
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j, ci = a->dec_in[j], co = a->dec_out[j], H = y->H[i], W = y->W[i];
        const size_t px = b * H * W;
        big = zmax(big, px * zmax(ci, co));
        q = zmax(q, px * co);
        TF_TRY(tf_block_conv_ws(&cw, kern, a, y->B, ci, co, H, W, 0, threads));
    }
    const size_t ntok = b * y->H[L] * y->W[L] * C;
    e->bott = bump(&c, ntok);
    e->P0 = bump(&c, big);
    e->stage = c;
    /* conv blocks */
    size_t s = c;
    e->P1 = bump(&s, big);
    e->Q = bump(&s, q);
    e->n_convws = cw;
    e->convws = bump(&s, cw);
    size_t end = s;
    /* TFSWA stack */
    if (a->nblk > 0) {
        const int Hb = y->H[L], Wb = y->W[L], B = y->B;
        s = c;
        for (int k = 0; k < 3; k++) e->t[k] = bump(&s, ntok);
        size_t sv = tf_tblock_saved_floats(B * Hb, Wb, C, a->heads, Hd);
        sv = zmax(sv, tf_tblock_saved_floats(B * Wb, Hb, C, a->heads, Hd));
        sv = zmax(sv, tf_tblock_saved_floats(B * y->nW, Ls, C, a->heads, Hd));
        e->tsv = bump(&s, sv);
        e->relidx = bump(&s, (size_t)Ls * Ls); /* ints, same size as floats */
        e->mask = bump(&s, (size_t)y->nW * Ls * Ls);
        end = zmax(end, s);
    }
    /* input STFT and head, one audio channel of one item at a time */
    s = c;
    const size_t nf = (size_t)y->Fb * y->T, nk = (size_t)K * y->Fp * y->Tp;
    e->re = bump(&s, nf);
    e->im = bump(&s, nf);
    e->mag = bump(&s, nf);
    e->pr = bump(&s, nf);
    e->pi = bump(&s, nf);
    e->zk = bump(&s, nk);
    if (a->output == TF_OUT_MASK) e->xk = bump(&s, nk);
    end = zmax(end, s);
    e->bytes = end;
    return TF_OK;
}

tf_status tf_map_dims_of(tf_map_dims *d, const tf_arch *a, int64_t N) {
    memset(d, 0, sizeof *d);
    int64_t T = 1 + N / a->hop;
    if (T > (1 << 26)) return tf_err(TF_EUSER, "segment of %lld samples is too long", (long long)N);
    d->T = (int)T;
    d->Fb = a->n_fft / 2 + 1;
    d->Fs = (d->Fb - 1) / a->K;
    const int m = 1 << a->L;
    d->Fp = ceil_mult(d->Fs, m * a->wf);
    d->Tp = ceil_mult(d->T, m * a->wt);
    for (int l = 0; l <= a->L; l++) {
        d->H[l] = d->Fp >> l;
        d->W[l] = d->Tp >> l;
    }
    d->nW = (d->W[a->L] / a->wt) * (d->H[a->L] / a->wf);
    return TF_OK;
}

tf_status tf_layout(layout_t *y, const tf_arch *a, int B, int64_t N, int threads,
                    tf_model_mode mode, tf_kernels *kern) {
    memset(y, 0, sizeof *y);
    if (B < 1) return tf_err(TF_EUSER, "batch size %d (>= 1)", B);
    if (N < 1) return tf_err(TF_EUSER, "segment of %lld samples (>= 1)", (long long)N);
    y->B = B;
    y->N = N;
    tf_map_dims md;
    TF_TRY(tf_map_dims_of(&md, a, N));
    y->T = md.T, y->Fb = md.Fb, y->Fs = md.Fs, y->Fp = md.Fp, y->Tp = md.Tp, y->nW = md.nW;
    memcpy(y->H, md.H, sizeof y->H);
    memcpy(y->W, md.W, sizeof y->W);
    const int L = a->L, R = a->nrcm, S = a->S, K = a->K, C = a->ch[L - 1];
    const int Hb = y->H[L], Wb = y->W[L];
    const int bf = a->act_dtype == TF_DT_BF16;
    const int ck = a->ckpt == TF_CKPT_BLOCKS;
    const size_t b = (size_t)B;
    const size_t nspec = b * 2 * y->Fb * y->T;
    const size_t nz = b * 2 * K * S * y->Fp * y->Tp;
    if (mode == TF_MODEL_INFER) {
        TF_TRY(eval_layout(&y->ev, a, y, threads, kern));
        y->act_bytes = 0;
        y->work_bytes = y->ev.bytes;
        return TF_OK;
    }
    {
        /* a training model's eval forward runs one batch item at a time (tf_model_forward),
         * so its buffers never set the arena's size */
        layout_t y1 = *y;
        y1.B = 1;
        TF_TRY(eval_layout(&y->ev, a, &y1, threads, kern));
    }
    cursor_t c = {0, 0};
    /* ---- saved activations ---- */
    y->pr = put(&c, IN_ACT, 0, nspec);
    y->pi = put(&c, IN_ACT, 0, nspec);
    for (int l = 0; l < L; l++) {
        size_t px = b * y->H[l] * y->W[l];
        int ci = l ? a->ch[l - 1] : a->cin;
        y->enc_in[l] = put(&c, IN_ACT, bf, px * ci);
        if (!ck) put_block(&c, IN_ACT, bf, y->enc_c1[l], y->enc_o[l], R, px * a->ch[l]);
    }
    for (int j = 0; j < L; j++) {
        int i = L - 1 - j;
        size_t px = b * y->H[i] * y->W[i];
        y->dec_cat[j] = put(&c, IN_ACT, bf, px * a->dec_in[j]);
        if (!ck) put_block(&c, IN_ACT, bf, y->dec_c1[j], y->dec_o[j], R, px * a->dec_out[j]);
    }
    y->head_in = put(&c, IN_ACT, bf, b * a->ch[0] * y->Fp * y->Tp);
    y->z = put(&c, IN_ACT, bf, nz);
    const int Hd = a->hidden, Ls = a->wt * a->wf;
    const size_t ntok = b * Hb * Wb * C;
    size_t nsv[4] = {tf_tblock_saved_floats(B * Hb, Wb, C, a->heads, Hd),
                     tf_tblock_saved_floats(B * Wb, Hb, C, a->heads, Hd),
                     tf_tblock_saved_floats(B * y->nW, Ls, C, a->heads, Hd),
                     tf_tblock_saved_floats(B * y->nW, Ls, C, a->heads, Hd)};
    for (int k = 0; k < a->nblk; k++) {
        y->tok[k][0] = put(&c, IN_ACT, 0, ntok);
        if (ck) continue;
        for (int s = 1; s < 4; s++) y->tok[k][s] = put(&c, IN_ACT, 0, ntok);
        for (int s = 0; s < 4; s++) y->tsv[k][s] = put(&c, IN_ACT, 0, nsv[s]);
    }
    /* ---- workspace ----
     * Outside region R: block gradients in backward. D0 and D1 swap roles at every decoder
     * level: dout (then the upsampled part of the input gradient) and scratch (then the
     * upsampling's input gradient). The RCM chain's gradients (B, Cout, H, W) take turns in
     * two buffers (convblock_backward): dout and the block's scratch (D1 or D0; the
     * encoder's: D1), where its input gradient (B, Cin, H, W) goes into its own insides;
     * where they are too small for it (dx_d1), it goes into the scratch and the chain's
     * second buffer is a decoder's dout after its first (B, Cout, H, W) (D sized for both)
     * or, for an encoder block, E. Both D buffers hold at least (B, Cout, H, W) of every
     * Conv block (D1 of every encoder block): a block's forward (and recompute) stages its
     * c1 and shortcut output, one item, in D1 (the recompute in backward: in the scratch
     * gradient buffer, free until the block's backward starts). */
    int dx_d1[2 * TF_MAX_LEVELS];
    size_t d[2] = {b * a->ch[0] * y->Fp * y->Tp, 0}, ne = 0; /* the head's input gradient: D0 */
    {
        const size_t e = bf ? 2 : 4;
        const int nins = ck ? R : 2 * R - 1; /* a block's insides: slots of (B, Cout, H, W) */
        int dc = 0;
        for (int j = L - 1; j >= 0; j--) {
            const int i = L - 1 - j, cu = a->dec_in[j] - a->ch[i];
            const size_t px = b * y->H[i] * y->W[i], px1 = b * y->H[i + 1] * y->W[i + 1];
            const size_t own = (size_t)nins * align_up(px * a->dec_out[j] * e);
            dx_d1[L + j] = own < px * a->dec_in[j] * 4;
            d[dc] = zmax(d[dc], px * zmax(a->dec_out[j], cu));
            d[!dc] = zmax(d[!dc], zmax(px * a->dec_out[j], px1 * cu));
            if (dx_d1[L + j]) {
                d[dc] = zmax(d[dc], 2 * px * a->dec_out[j]);
                d[!dc] = zmax(d[!dc], px * a->dec_in[j]);
            }
            dc = !dc;
        }
        for (int l = 0; l < L; l++) {
            const size_t px = b * y->H[l] * y->W[l];
            const int ci = l ? a->ch[l - 1] : a->cin;
            const size_t own = (size_t)nins * align_up(px * a->ch[l] * e);
            dx_d1[l] = own < px * ci * 4;
            d[1] = zmax(d[1], px * (dx_d1[l] ? zmax(ci, a->ch[l]) : (size_t)a->ch[l]));
            if (dx_d1[l]) ne = zmax(ne, px * a->ch[l]);
        }
    }
    /* Region R: buffers of phases that never overlap in time share its bytes (views, each
     * from R's start):
     *   in     the input STFT (computed into the phase slots): the magnitude, the subbands
     *          (in D0 where they fit) and, bf16, x0 before its store (in D1 where it fits);
     *   head   the head and its backward, one item at a time: the head input load, whose
     *          bytes the output spectra take when it is spent; z before its store or its
     *          load; x0 (mask); dz (in D1 where it fits: free in the head's forward and
     *          backward);
     *   fwd    the conv-block forward (also its recompute in backward), one batch item at a
     *          time: the loaded input, which c1 loaded and the BN/GELU output then take
     *          (in place; fp32: the BN/GELU output), then the pooled or upsampled copy of
     *          the block output; the RCM output after the largest of those;
     *   bwd    a conv block's backward, one item at a time: its loaded input or c1 (bf16,
     *          which then takes the GELU output too) or the GELU output (fp32); where an
     *          RCM's input gradient overwrites its conv1-output gradient in place (Cout
     *          channels in and out), the item's GELU-output gradient after the first
     *          Cout x H x W (else it goes straight to the input gradient); with
     *          checkpointing, the nested recompute of an RCM's conv1 output (one item's load
     *          and BN/GELU output; c1 before its store in the chain's free buffer), between
     *          two RCM backwards;
     *   tfswa  the TFSWA stack and its backward: token buffers and tblock workspace.
     * A block's recompute in backward runs before the block's backward uses the bwd view:
     * its results go to the scratch slots, outside R. */
    size_t i_max = 0, i_out = 0, i_pool = 0; /* one item: largest conv-side tensor, output */
    for (int l = 0; l < L; l++) {
        const size_t hw = (size_t)y->H[l] * y->W[l];
        const int ci = l ? a->ch[l - 1] : a->cin;
        i_max = zmax(i_max, hw * zmax(ci, a->ch[l]));
        i_out = zmax(i_out, hw * a->ch[l]);
        if (l < L - 1) i_pool = zmax(i_pool, hw / 4 * a->ch[l]);
    }
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j;
        const size_t hw = (size_t)y->H[i] * y->W[i];
        i_max = zmax(i_max, hw * zmax(a->dec_in[j], a->dec_out[j]));
        i_out = zmax(i_out, hw * a->dec_out[j]);
        /* the decoder's input: the upsampled map of the level below */
        i_pool = zmax(i_pool, hw * (a->dec_in[j] - a->ch[i]));
    }
    const size_t hwp = (size_t)y->Fp * y->Tp, nzi = (size_t)2 * K * S * hwp;
    const size_t nsub = b * a->cin * y->Fs * y->T, nx0 = b * a->cin * hwp, nci = nspec / b;
    const int sub_d0 = nsub <= d[0], wx_d1 = nx0 <= d[1], dz_d1 = nzi <= d[1];
    const size_t r0 = c.work;
    size_t v = r0, rend = r0;
    y->mag_in = bump(&v, nspec);
    if (!sub_d0) y->spec_re = bump(&v, nsub);
    if (bf && !wx_d1) y->wx = bump(&v, nx0);
    rend = zmax(rend, v);
    v = r0;
    y->om = bump(&v, nci); /* the head runs per (item, target): (2, Fb, T) */
    y->oyr = bump(&v, nci);
    y->oyi = bump(&v, nci);
    if (bf) {
        size_t h = r0;
        y->hin = bump(&h, (size_t)a->ch[0] * hwp);
        v = zmax(v, h);
        y->zi = bump(&v, nzi); /* z before its store (forward), its load (backward) */
        if (a->output == TF_OUT_MASK) y->x0i = bump(&v, (size_t)a->cin * hwp);
    }
    if (!dz_d1) y->dzi = bump(&v, nzi);
    rend = zmax(rend, v);
    {
        /* fwd and bwd: the item buffer from r0; the RCM output after the BN/GELU output and
         * the sink's copy; the staged GELU-output gradient after i_out */
        const size_t oo = align_up(zmax(i_out, i_pool) * 4);
        y->it = r0;
        y->fo = r0 + oo;
        rend = zmax(rend, r0 + zmax(align_up(i_max * 4), oo + align_up(i_out * 4)));
        y->bdg = r0 + align_up(i_out * 4);
        rend = zmax(rend, r0 + zmax(align_up(i_max * 4), 2 * align_up(i_out * 4)));
    }
    if (a->nblk > 0) {
        v = r0;
        for (int k = 0; k < 8; k++) y->tb[k] = bump(&v, ntok);
        size_t tw = tf_tblock_workspace_floats(B * Hb, Wb, C, a->heads, Hd);
        tw = zmax(tw, tf_tblock_workspace_floats(B * Wb, Hb, C, a->heads, Hd));
        tw = zmax(tw, tf_tblock_workspace_floats(B * y->nW, Ls, C, a->heads, Hd));
        y->n_tbws = tw;
        y->tbws = bump(&v, tw);
        rend = zmax(rend, v);
    }
    c.work = rend;
    y->D0 = wput(&c, d[0]);
    y->D1 = wput(&c, d[1]);
    y->E = ne ? wput(&c, ne) : 0;
    if (sub_d0) y->spec_re = y->D0;
    if (bf && wx_d1) y->wx = y->D1;
    if (dz_d1) y->dzi = y->D1;
    /* the convolutions run one batch item at a time */
    int cmax = a->cin;
    size_t cw = 0;
    TF_TRY(tf_conv_ws(&cw, kern, 1, a->ch[0], 2 * K * S, y->Fp, y->Tp, 1, 1, threads));
    for (int l = 0; l < L; l++) {
        int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l];
        cmax = (int)zmax((size_t)cmax, (size_t)co);
        TF_TRY(tf_block_conv_ws(&cw, kern, a, 1, ci, co, y->H[l], y->W[l], 1, threads));
    }
    for (int j = 0; j < L; j++) {
        int i = L - 1 - j, ci = a->dec_in[j], co = a->dec_out[j];
        cmax = (int)zmax((size_t)cmax, (size_t)ci);
        TF_TRY(tf_block_conv_ws(&cw, kern, a, 1, ci, co, y->H[i], y->W[i], 1, threads));
    }
    y->st_m1 = wput(&c, (size_t)cmax);
    y->st_r1 = wput(&c, (size_t)cmax);
    y->st_sd = wput(&c, (size_t)cmax * 4); /* 2 x cmax doubles */
    y->n_convws = cw;
    y->convws = wput(&c, cw);
    for (int l = 0; l < L; l++) {
        const size_t n = b * a->ch[l] * y->H[l] * y->W[l];
        const slot_t cat = y->dec_cat[L - 1 - l];
        if (cat.n * (cat.bf16 ? 2 : 4) >= n * 4) {
            y->dskip[l] = (slot_t){IN_ACT, 0, cat.off, n};
        } else {
            y->dskip[l] = (slot_t){IN_WORK, 0, c.work, n};
            c.work += align_up(n * 4);
        }
    }
    y->bott = wput(&c, b * C * Hb * Wb);
    if (a->nblk > 0) {
        y->relidx = wput(&c, (size_t)Ls * Ls); /* ints, same size as floats */
        y->mask = wput(&c, (size_t)y->nW * Ls * Ls);
    }
    /* recompute scratch: one Conv block's or one TFSWA block's insides */
    y->scratch = c.work;
    if (ck) {
        size_t need = 0;
        for (int l = 0; l < L; l++) {
            cursor_t s = {0, 0};
            put_block_nested(&s, IN_WORK, bf, y->enc_c1[l], y->enc_o[l], R,
                             b * y->H[l] * y->W[l] * a->ch[l]);
            need = zmax(need, s.work);
        }
        for (int j = 0; j < L; j++) {
            int i = L - 1 - j;
            cursor_t s = {0, 0};
            put_block_nested(&s, IN_WORK, bf, y->dec_c1[j], y->dec_o[j], R,
                             b * y->H[i] * y->W[i] * a->dec_out[j]);
            need = zmax(need, s.work);
        }
        if (a->nblk > 0) {
            cursor_t s = {0, 0};
            for (int k = 0; k < a->nblk; k++) {
                s.work = 0;
                for (int q = 1; q < 4; q++) y->tok[k][q] = put(&s, IN_WORK, 0, ntok);
                for (int q = 0; q < 4; q++) y->tsv[k][q] = put(&s, IN_WORK, 0, nsv[q]);
            }
            need = zmax(need, s.work);
        }
        /* scratch slots are relative to the scratch start */
        for (int l = 0; l < L; l++)
            for (int r = 0; r < R; r++) {
                y->enc_c1[l][r].off += y->scratch;
                if (r < R - 1) y->enc_o[l][r].off += y->scratch;
                y->dec_c1[l][r].off += y->scratch;
                if (r < R - 1) y->dec_o[l][r].off += y->scratch;
            }
        for (int k = 0; k < a->nblk; k++) {
            for (int q = 1; q < 4; q++) y->tok[k][q].off += y->scratch;
            for (int q = 0; q < 4; q++) y->tsv[k][q].off += y->scratch;
        }
        c.work += need;
    }
    for (int k = 0; k < 2 * L; k++) {
        const int l = k < L ? k : L - 1 - (k - L); /* the block's level */
        const int ci = k < L ? (k ? a->ch[k - 1] : a->cin) : a->dec_in[k - L];
        const size_t n = b * ci * y->H[l] * y->W[l];
        const slot_t c1 = k < L ? y->enc_c1[k][0] : y->dec_c1[k - L][0];
        y->dx[k] = dx_d1[k] ? (slot_t){IN_TMP, 0, 0, n} : (slot_t){c1.where, 0, c1.off, n};
    }
    y->act_bytes = c.act;
    y->work_bytes = c.work;
    /* the eval forward runs in the arena (activations + workspace) */
    if (y->ev.bytes > c.act + c.work) y->work_bytes = y->ev.bytes - c.act;
    return TF_OK;
}

static int resolve_threads(const tf_model_config *cfg, int threads) {
    if (threads <= 0) threads = cfg->threads;
    if (threads <= 0) threads = omp_get_max_threads();
    return threads < 1 ? 1 : threads;
}

tf_status tf_model_plan(tf_model_sizes *out, const tf_model_config *cfg, int batch, int64_t frames,
                        int threads) {
    return tf_model_plan_mode(out, cfg, batch, frames, threads, TF_MODEL_TRAIN);
}

/* The plan with the convolutions registered in kern (created for a's backend, compute
 * dtype and `threads`), or in a temporary kernels object when kern is NULL. */
static tf_status plan_with(tf_model_sizes *out, const tf_model_config *cfg, int batch,
                           int64_t frames, int threads, tf_model_mode mode, tf_kernels *kern) {
    memset(out, 0, sizeof *out);
    if (mode != TF_MODEL_TRAIN && mode != TF_MODEL_INFER)
        return tf_err(TF_EINTERNAL, "model mode %d", (int)mode);
    tf_arch a;
    TF_TRY(tf_arch_from_config(&a, cfg));
    threads = resolve_threads(cfg, threads);
    table_b tb = {0};
    build_table(&tb, &a);
    layout_t y;
    tf_kernels *tmp = NULL;
    if (!kern) TF_TRY(tf_kernels_create(&tmp, a.backend, a.compute, threads));
    tf_status s = tf_layout(&y, &a, batch, frames, threads, mode, kern ? kern : tmp);
    snprintf(out->arithmetic, sizeof out->arithmetic, "%s", tf_kernels_describe(kern ? kern : tmp));
    tf_kernels_free(tmp);
    TF_TRY(s);
    /* the convolutions' share of the forward this plan is for: a training model's own
     * (one batch item at a time), an inference model's eval forward (the whole batch) */
    out->conv_workspace = (mode == TF_MODEL_TRAIN ? y.n_convws : y.ev.n_convws) * sizeof(float);
    out->mode = mode;
    out->n_params = tb.np;
    out->n_buffers = tb.nb;
    out->params = tb.np * sizeof(float);
    out->grads = mode == TF_MODEL_TRAIN ? tb.np * sizeof(float) : 0;
    out->buffers = tb.nb * sizeof(float);
    out->activations = y.act_bytes;
    out->workspace = y.work_bytes;
    out->total = out->params + out->grads + out->buffers + out->activations + out->workspace;
    out->eval_arena = mode == TF_MODEL_TRAIN ? y.ev.bytes : y.work_bytes;
    out->batch = batch;
    out->frames = frames;
    out->stft_frames = y.T;
    out->fpad = y.Fp;
    out->tpad = y.Tp;
    out->threads = threads;
    return TF_OK;
}

tf_status tf_model_plan_mode(tf_model_sizes *out, const tf_model_config *cfg, int batch,
                             int64_t frames, int threads, tf_model_mode mode) {
    return plan_with(out, cfg, batch, frames, threads, mode, NULL);
}

tf_status tf_model_plan_kern(tf_model_sizes *out, const tf_model_config *cfg, int batch,
                             int64_t frames, int threads, tf_model_mode mode, tf_kernels *kern) {
    if (!kern) return tf_err(TF_EINTERNAL, "tf_model_plan_kern: no kernels object");
    if (tf_kernels_backend(kern) != cfg->backend)
        return tf_err(TF_EINTERNAL, "tf_model_plan_kern: kernels of backend %d for a model of %d",
                      (int)tf_kernels_backend(kern), (int)cfg->backend);
    return plan_with(out, cfg, batch, frames, threads, mode, kern);
}

/* ---------------------------------------------------------------------- create */

/* Pointers of every block into (params, grads, buffers) from the build-order table. */
static void resolve_into(tf_param_map *pm, const tf_arch *a, float *params, float *grads,
                         float *buffers) {
    const tf_param_info *info = pm->build;
    size_t k = 0;
    int nconv = 2 * a->L * a->nrcm;
    for (int blk = 0; blk < nconv; blk++) {
        rcm_params *p = &pm->rcm_p[blk], *g = &pm->rcm_g[blk];
        rcm_buffers *bu = &pm->rcm_b[blk];
        float **pf[10] = {&p->bn1_w, &p->bn1_b,   &p->conv1_w, &p->conv1_b, &p->bn2_w,
                          &p->bn2_b, &p->conv2_w, &p->conv2_b, &p->short_w, &p->short_b};
        float **gf[10] = {&g->bn1_w, &g->bn1_b,   &g->conv1_w, &g->conv1_b, &g->bn2_w,
                          &g->bn2_b, &g->conv2_w, &g->conv2_b, &g->short_w, &g->short_b};
        for (int q = 0; q < 10; q++, k++) {
            *pf[q] = params + info[k].offset;
            *gf[q] = grads ? grads + info[k].offset : NULL;
        }
        bu->rm1 = buffers + info[k++].offset;
        bu->rv1 = buffers + info[k++].offset;
        bu->rm2 = buffers + info[k++].offset;
        bu->rv2 = buffers + info[k++].offset;
        /* encoder blocks come first, then the TFSWA tblocks, then the decoder */
        if (blk == a->L * a->nrcm - 1) {
            for (int b = 0; b < a->nblk; b++)
                for (int s = 0; s < 4; s++) {
                    pm->tb_off[b * 4 + s] = info[k].offset;
                    k += s < 2 ? 12 : 13;
                }
        }
    }
    pm->head_w = params + info[k].offset;
    pm->ghead_w = grads ? grads + info[k].offset : NULL;
    k++;
    pm->head_b = params + info[k].offset;
    pm->ghead_b = grads ? grads + info[k].offset : NULL;
}

tf_status tf_param_map_create(tf_param_map *pm, const tf_arch *a) {
    memset(pm, 0, sizeof *pm);
    table_b tb = {0};
    build_table(&tb, a);
    pm->n_tensors = tb.n;
    const int nconv = 2 * a->L * a->nrcm;
    pm->info = tf_calloc(tb.n, sizeof *pm->info, "parameter table");
    pm->build = tf_calloc(tb.n, sizeof *pm->build, "parameter table");
    pm->rcm_p = tf_calloc((size_t)nconv, sizeof *pm->rcm_p, "parameter table");
    pm->rcm_g = tf_calloc((size_t)nconv, sizeof *pm->rcm_g, "parameter table");
    pm->rcm_b = tf_calloc((size_t)nconv, sizeof *pm->rcm_b, "parameter table");
    pm->tb_off = tf_calloc((size_t)a->nblk * 4 + 1, sizeof *pm->tb_off, "parameter table");
    if (!pm->info || !pm->build || !pm->rcm_p || !pm->rcm_g || !pm->rcm_b || !pm->tb_off) {
        tf_param_map_free(pm);
        return TF_EINTERNAL;
    }
    tb = (table_b){pm->build, 0, 0, 0};
    build_table(&tb, a);
    pm->n_params = tb.np;
    pm->n_buffers = tb.nb;
    /* parameters first in the table order of tf_model_tensor: buffers at the end */
    size_t w = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < tb.n; i++)
            if (pm->build[i].is_buffer == pass) pm->info[w++] = pm->build[i];
    for (size_t i = 0; i < tb.n; i++) pm->n_param_tensors += !pm->build[i].is_buffer;
    return TF_OK;
}

void tf_param_map_point(tf_param_map *pm, const tf_arch *a, float *params, float *grads,
                        float *buffers) {
    resolve_into(pm, a, params, grads, buffers);
}

void tf_param_map_free(tf_param_map *pm) {
    free(pm->info);
    free(pm->build);
    free(pm->rcm_p);
    free(pm->rcm_g);
    free(pm->rcm_b);
    free(pm->tb_off);
    memset(pm, 0, sizeof *pm);
}

tf_status tf_model_create(tf_model **out, const tf_model_config *cfg, int batch, int64_t frames,
                          int threads) {
    return tf_model_create_mode(out, cfg, batch, frames, threads, TF_MODEL_TRAIN);
}

tf_status tf_model_create_mode(tf_model **out, const tf_model_config *cfg, int batch,
                               int64_t frames, int threads, tf_model_mode mode) {
    *out = NULL;
    tf_model *m = tf_calloc(1, sizeof *m, "model");
    if (!m) return TF_EINTERNAL;
    tf_status s = tf_arch_from_config(&m->a, cfg);
    if (s != TF_OK) goto fail;
    if ((s = tf_kernels_create(&m->kern, m->a.backend, m->a.compute,
                               resolve_threads(cfg, threads))) != TF_OK)
        goto fail;
    if ((s = plan_with(&m->plan, cfg, batch, frames, threads, mode, m->kern)) != TF_OK) goto fail;
    m->mode = mode;
    m->threads = m->plan.threads;
    tf_param_map pm;
    if ((s = tf_param_map_create(&pm, &m->a)) != TF_OK) goto fail;
    /* the model owns the table and the pointer arrays from here */
    m->n_tensors = pm.n_tensors;
    m->n_param_tensors = pm.n_param_tensors;
    m->n_params = pm.n_params;
    m->n_buffers = pm.n_buffers;
    m->info = pm.info;
    m->rcm_p = pm.rcm_p;
    m->rcm_g = pm.rcm_g;
    m->rcm_b = pm.rcm_b;
    m->tb_off = pm.tb_off;
    {
        const size_t arena = m->plan.activations + m->plan.workspace;
        m->params = tf_malloc(m->plan.params ? m->plan.params : 4, "parameters");
        if (mode == TF_MODEL_TRAIN)
            m->grads = tf_malloc(m->plan.grads ? m->plan.grads : 4, "gradients");
        m->buffers = tf_malloc(m->plan.buffers ? m->plan.buffers : 4, "BatchNorm buffers");
        m->arena = tf_malloc(arena ? arena : 4,
                             mode == TF_MODEL_TRAIN ? "activations and workspace" : "workspace");
        if (mode == TF_MODEL_TRAIN) m->acts = m->arena;
        m->work = m->arena ? m->arena + m->plan.activations : NULL;
        if (!m->params || (mode == TF_MODEL_TRAIN && !m->grads) || !m->buffers || !m->arena) {
            free(pm.build);
            s = TF_EINTERNAL;
            goto fail;
        }
        tf_param_map_point(&pm, &m->a, m->params, m->grads, m->buffers);
        m->head_w = pm.head_w;
        m->head_b = pm.head_b;
        m->ghead_w = pm.ghead_w;
        m->ghead_b = pm.ghead_b;
        free(pm.build);
    }
    tf_stft *st = NULL;
    if ((s = tf_stft_create(&st, m->a.n_fft, m->a.hop)) != TF_OK) goto fail;
    m->stft = st;
    /* every convolution's primitives, once (JIT code: outside the plan's five blocks) */
    if ((s = tf_kernels_commit(m->kern)) != TF_OK) goto fail;
    tf_model_init(m, cfg->seed);
    tf_model_zero_grad(m);
    *out = m;
    return TF_OK;
fail:
    tf_model_free(m);
    return s;
}

void tf_model_free(tf_model *m) {
    if (!m) return;
    tf_stft_destroy((tf_stft *)m->stft);
    tf_kernels_free(m->kern);
    free(m->info);
    free(m->rcm_p);
    free(m->rcm_g);
    free(m->rcm_b);
    free(m->tb_off);
    free(m->params);
    free(m->grads);
    free(m->buffers);
    free(m->arena);
    for (size_t i = 0; i < m->n_taps; i++) free(m->tap[i]);
    free(m->tap);
    free(m->tap_name);
    free(m->tap_n);
    free(m);
}

size_t tf_model_spare_bytes(const tf_model_sizes *p) {
    const size_t arena = p->activations + p->workspace;
    return arena > p->eval_arena + 64 ? arena - p->eval_arena - 64 : 0;
}

unsigned char *tf_model_spare(tf_model *m, size_t *bytes) {
    const size_t arena = m->plan.activations + m->plan.workspace;
    /* 64-byte aligned start (the arena itself comes from malloc) */
    size_t off = m->plan.eval_arena;
    off += (64 - (size_t)((uintptr_t)(m->arena + off) % 64)) % 64;
    if (!m->arena || off >= arena) {
        *bytes = 0;
        return NULL;
    }
    *bytes = arena - off;
    return m->arena + off;
}

const tf_model_sizes *tf_model_get_plan(const tf_model *m) {
    return &m->plan;
}
const tf_arch *tf_model_arch(const tf_model *m) {
    return &m->a;
}
size_t tf_model_kernel_shapes(const tf_model *m) {
    return tf_kernels_n_shapes(m->kern);
}

const char *tf_model_kernels_describe(const tf_model *m) {
    return tf_kernels_describe(m->kern);
}
size_t tf_model_n_tensors(const tf_model *m) {
    return m->n_tensors;
}
const tf_param_info *tf_model_tensor(const tf_model *m, size_t i) {
    return i < m->n_tensors ? &m->info[i] : NULL;
}
const tf_param_info *tf_model_find(const tf_model *m, const char *name) {
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->info[i].name, name)) return &m->info[i];
    return NULL;
}
float *tf_model_data(tf_model *m, const tf_param_info *p) {
    return (p->is_buffer ? m->buffers : m->params) + p->offset;
}
float *tf_model_grad(tf_model *m, const tf_param_info *p) {
    return p->is_buffer || !m->grads ? NULL : m->grads + p->offset;
}
float *tf_model_params(tf_model *m) {
    return m->params;
}
float *tf_model_grads(tf_model *m) {
    return m->grads;
}
float *tf_model_buffers(tf_model *m) {
    return m->buffers;
}

void tf_model_zero_grad(tf_model *m) {
    if (m->grads) memset(m->grads, 0, m->n_params * sizeof(float));
}

void tf_model_init(tf_model *m, uint64_t seed) {
    for (size_t i = 0; i < m->n_tensors; i++) {
        const tf_param_info *p = &m->info[i];
        float *d = tf_model_data(m, p);
        tf_rng r;
        tf_rng_seed(&r, seed, 0x706172616dULL /* "param" */, i, 0);
        double bound = p->fan_in > 0 ? 1.0 / sqrt((double)p->fan_in) : 0;
        for (size_t k = 0; k < p->numel; k++) {
            switch (p->init) {
            case INIT_ONE:
                d[k] = 1.f;
                break;
            case INIT_ZERO:
                d[k] = 0.f;
                break;
            case INIT_UNIFORM:
                d[k] = (float)tf_rng_range(&r, -bound, bound);
                break;
            default:
                d[k] = (float)(0.02 * tf_rng_normal(&r));
                break;
            }
        }
    }
}

/* ------------------------------------------------------------------ safetensors */

tf_status tf_model_load(tf_model *m, const char *path) {
    tf_safetensors st;
    TF_TRY(tf_st_open(&st, path));
    tf_status s = TF_OK;
    for (size_t i = 0; i < m->n_tensors && s == TF_OK; i++) {
        const tf_param_info *p = &m->info[i];
        s = tf_st_read_f32(&st, p->name, tf_model_data(m, p), p->ndim, p->shape);
    }
    tf_st_close(&st);
    return s;
}

tf_status tf_model_save(const tf_model *m, const char *path, const char *const *meta,
                        size_t n_meta) {
    tf_st_entry *e = tf_calloc(m->n_tensors ? m->n_tensors : 1, sizeof *e, "safetensors entries");
    if (!e) return TF_EINTERNAL;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const tf_param_info *p = &m->info[i];
        e[i].name = p->name;
        e[i].dtype = TF_ST_F32;
        e[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) e[i].shape[d] = p->shape[d];
        e[i].data = (p->is_buffer ? m->buffers : m->params) + p->offset;
    }
    tf_status s = tf_st_write(path, e, m->n_tensors, meta, n_meta);
    free(e);
    return s;
}

/* ------------------------------------------------------------------------ flops */

double tf_model_forward_flops(const tf_arch *a, int B, int64_t N) {
    layout_t y;
    if (tf_layout(&y, a, B, N, 1, TF_MODEL_INFER, NULL) != TF_OK) return 0;
    double f = 0;
    for (int l = 0; l < a->L; l++) {
        int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l];
        for (int r = 0; r < a->nrcm; r++) {
            int c0 = r ? co : ci;
            f += tf_conv2d_flops(B, c0, co, y.H[l], y.W[l], 3) +
                 tf_conv2d_flops(B, co, co, y.H[l], y.W[l], 3) +
                 tf_conv2d_flops(B, c0, co, y.H[l], y.W[l], 1);
        }
    }
    for (int j = 0; j < a->L; j++) {
        int i = a->L - 1 - j, ci = a->dec_in[j], co = a->dec_out[j];
        for (int r = 0; r < a->nrcm; r++) {
            int c0 = r ? co : ci;
            f += tf_conv2d_flops(B, c0, co, y.H[i], y.W[i], 3) +
                 tf_conv2d_flops(B, co, co, y.H[i], y.W[i], 3) +
                 tf_conv2d_flops(B, c0, co, y.H[i], y.W[i], 1);
        }
    }
    f += tf_conv2d_flops(B, a->ch[0], 2 * a->K * a->S, y.Fp, y.Tp, 1);
    double C = a->ch[a->L - 1], Hd = a->hidden;
    double ntok = (double)B * y.H[a->L] * y.W[a->L];
    double lin = 2 * ntok * (3 * C * C + C * C + 2 * C * Hd); /* qkv, proj, fc1, fc2 */
    double Ls[4] = {y.W[a->L], y.H[a->L], a->wt * a->wf, a->wt * a->wf};
    for (int s = 0; s < 4; s++) f += a->nblk * (lin + 4 * ntok * Ls[s] * C); /* QK^T and AV */
    return f;
}

/* The training step, layer by layer (see model.h). */
double tf_model_train_flops(const tf_arch *a, int B, int64_t N, tf_train_flops *out) {
    tf_train_flops t = {0};
    if (out) *out = t;
    layout_t y;
    if (tf_layout(&y, a, B, N, 1, TF_MODEL_INFER, NULL) != TF_OK) return 0;
    const int ck = a->ckpt == TF_CKPT_BLOCKS;
    /* Conv blocks: encoder l at level l, then decoder j at level L-1-j (forward.c passes
     * dinp to tf_conv2d_backward for every conv, so each one costs data + weights) */
    for (int blk = 0; blk < 2 * a->L; blk++) {
        const int enc = blk < a->L, j = blk - a->L, lev = enc ? blk : a->L - 1 - j;
        const int ci = enc ? (blk ? a->ch[blk - 1] : a->cin) : a->dec_in[j];
        const int co = enc ? a->ch[blk] : a->dec_out[j], H = y.H[lev], W = y.W[lev];
        for (int r = 0; r < a->nrcm; r++) {
            const int c0 = r ? co : ci;
            const double convs[3] = {tf_conv2d_flops(B, c0, co, H, W, 3),  /* conv1 */
                                     tf_conv2d_flops(B, co, co, H, W, 3),  /* conv2 */
                                     tf_conv2d_flops(B, c0, co, H, W, 1)}; /* shortcut */
            for (int k = 0; k < 3; k++) {
                t.forward += convs[k];
                t.backward_data += convs[k];
                t.backward_weights += convs[k];
                if (ck) t.recompute += convs[k];
            }
            /* checkpointing: an RCM's conv1 output is recomputed again (nested) just before
             * its backward, but for the last RCM's, which the block's recompute left */
            if (ck && r < a->nrcm - 1) t.recompute += convs[0];
        }
    }
    /* head 1x1 conv: not recomputed (its input is saved in both modes) */
    const double head = tf_conv2d_flops(B, a->ch[0], 2 * a->K * a->S, y.Fp, y.Tp, 1);
    t.forward += head;
    t.backward_data += head;
    t.backward_weights += head;
    /* TFSWA blocks: TSA (L = W), FSA (L = H), Swin W and SW (L = wt*wf), each over all
     * B*H*W bottleneck tokens */
    const double C = a->ch[a->L - 1], Hd = a->hidden;
    const double ntok = (double)B * y.H[a->L] * y.W[a->L];
    const double lin = 2 * ntok * (3 * C * C + C * C + C * Hd + Hd * C); /* qkv proj fc1 fc2 */
    const double Ls[4] = {y.W[a->L], y.H[a->L], a->wt * a->wf, a->wt * a->wf};
    for (int k = 0; k < a->nblk; k++)
        for (int s = 0; s < 4; s++) {
            const double mm = 2 * ntok * Ls[s] * C; /* one of QK^T, AV: 2*N*H*L*L*D */
            t.forward += lin + 2 * mm;
            t.backward_data += lin + 4 * mm; /* dP, dV, dQ, dK */
            t.backward_weights += lin;
            if (ck) t.recompute += lin + 2 * mm;
        }
    t.total = t.forward + t.backward_data + t.backward_weights + t.recompute;
    if (out) *out = t;
    return t.total;
}

/* ------------------------------------------------------------------------- taps */

tf_status tf_model_debug_taps(tf_model *m, int on) {
    m->taps_on = on;
    return TF_OK;
}

tf_status tf_model_tap_put(tf_model *m, const char *name, const float *x, size_t n) {
    return tf_model_tap_put_at(m, name, n, 0, x, n);
}

tf_status tf_model_tap_put_at(tf_model *m, const char *name, size_t total, size_t off,
                              const float *x, size_t n) {
    if (!m->taps_on) return TF_OK;
    if (m->tap_items > 1) { /* one item of a batch-major tensor of tap_items items */
        off += (size_t)m->tap_item * total;
        total *= (size_t)m->tap_items;
    }
    if (off + n > total) return tf_err(TF_EINTERNAL, "tap %s: part past its end", name);
    size_t i = 0;
    while (i < m->n_taps && strcmp(m->tap_name[i], name)) i++;
    if (i == m->n_taps) {
        void *a = realloc(m->tap, (i + 1) * sizeof *m->tap);
        if (!a) return tf_err(TF_EINTERNAL, "out of memory (debug taps)");
        m->tap = a;
        a = realloc(m->tap_name, (i + 1) * sizeof *m->tap_name);
        if (!a) return tf_err(TF_EINTERNAL, "out of memory (debug taps)");
        m->tap_name = a;
        a = realloc(m->tap_n, (i + 1) * sizeof *m->tap_n);
        if (!a) return tf_err(TF_EINTERNAL, "out of memory (debug taps)");
        m->tap_n = a;
        m->tap[i] = NULL;
        m->tap_n[i] = 0;
        snprintf(m->tap_name[i], sizeof m->tap_name[i], "%s", name);
        m->n_taps++;
    }
    if (m->tap_n[i] != total) {
        float *b = realloc(m->tap[i], (total ? total : 1) * sizeof(float));
        if (!b) return tf_err(TF_EINTERNAL, "out of memory (debug taps)");
        m->tap[i] = b;
        m->tap_n[i] = total;
    }
    memcpy(m->tap[i] + off, x, n * sizeof(float));
    return TF_OK;
}

const float *tf_model_tap(const tf_model *m, const char *name, size_t *numel) {
    for (size_t i = 0; i < m->n_taps; i++)
        if (!strcmp(m->tap_name[i], name)) {
            if (numel) *numel = m->tap_n[i];
            return m->tap[i];
        }
    return NULL;
}
