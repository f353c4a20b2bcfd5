/* The device model's memory layout (see dlayout.h). */
#include "model/dlayout.h"

#include <string.h>

#include "model/model_internal.h"
#include "nn/attn.h"

static size_t zmax(size_t a, size_t b) {
    return a > b ? a : b;
}

/* 256-byte aligned (64 floats) bump allocation in floats */
static size_t bump(size_t *cur, size_t nfloats) {
    size_t off = *cur;
    *cur += (nfloats + 63) / 64 * 64;
    return off;
}

size_t tf_dlay_tblock_ws_floats(int N, int L, int C, int H, int Hd) {
    const size_t nl = (size_t)N * L, c = (size_t)C, hd = (size_t)Hd;
    const size_t chunk = N < 64 ? (size_t)N : 64; /* blas.cu ATTN_CHUNK */
    const size_t attn = (chunk + 1) * H * (size_t)L * L;
    size_t ln = (nl + 255) / 256; /* elem.cu ln_chunks: at most 4096 partial sums */
    if (ln > 4096) ln = 4096;
    return nl * (2 * c + zmax(hd, 3 * c) + zmax(hd, c)) + attn + ln * 2 * c;
}

/* the checks and map sizes both layouts share */
static tf_status dims(tf_dlay *y, const tf_arch *a, int B, int64_t N) {
    memset(y, 0, sizeof *y);
    if (a->act_dtype != TF_DT_FP32 && a->act_dtype != TF_DT_BF16)
        return tf_err(TF_EUSER, "activation_dtype %d: the cuda device stores fp32 or bf16",
                      (int)a->act_dtype);
    if (a->nrcm > TF_DLAY_MAX_RCMS || a->nblk > TF_DLAY_MAX_TFSWA)
        return tf_err(TF_EUSER,
                      "rcms_per_block %d / tfswa_blocks %d exceed the device model's %d / %d",
                      a->nrcm, a->nblk, TF_DLAY_MAX_RCMS, TF_DLAY_MAX_TFSWA);
    if (B < 1) return tf_err(TF_EUSER, "batch size %d (>= 1)", B);
    if (N < 1) return tf_err(TF_EUSER, "segment of %lld samples (>= 1)", (long long)N);
    tf_map_dims md;
    TF_TRY(tf_map_dims_of(&md, a, N));
    y->B = B;
    y->N = N;
    y->T = md.T, y->Fb = md.Fb, y->Fs = md.Fs, y->Fp = md.Fp, y->Tp = md.Tp, y->nW = md.nW;
    memcpy(y->H, md.H, sizeof y->H);
    memcpy(y->W, md.W, sizeof y->W);
    return TF_OK;
}

/* *cws = max(*cws, the workspace floats of every convolution of the model at batch B: the
 * Conv blocks' (encoder, then decoder) and the head's 1x1; train = 0: forward only */
static tf_status conv_ws_all(size_t *cws, const tf_dlay *y, const tf_arch *a, int B,
                             tf_kernels *kern, int train) {
    const int L = a->L;
    for (int l = 0; l < L; l++) {
        const int ci = l ? a->ch[l - 1] : a->cin;
        TF_TRY(tf_block_conv_ws(cws, kern, a, B, ci, a->ch[l], y->H[l], y->W[l], train, 1));
    }
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j;
        TF_TRY(tf_block_conv_ws(cws, kern, a, B, a->dec_in[j], a->dec_out[j], y->H[i], y->W[i],
                                train, 1));
    }
    return tf_conv_ws(cws, kern, B, a->ch[0], 2 * a->K * a->S, y->Fp, y->Tp, 1, train, 1);
}

/* A Conv block's insides, nrcm RCMs of n floats each, bumped at *cur. Saved (ck = 0):
 * c1[0], o[0], c1[1], ..., c1[R-1] (2R-1 maps, contiguous from c1[0]). In the recompute
 * scratch (ck): ONE c1 slot that every RCM shares, then o[0..R-2] (R maps): the block's
 * recompute leaves the last RCM's conv1 output there, and each other RCM's is recomputed
 * from its input (o[r-1], or the block input) just before that RCM's backward. */
static void put_block(size_t *c1, size_t *o, size_t *cur, int ck, int R, size_t n) {
    const size_t one = ck ? bump(cur, n) : 0;
    for (int r = 0; r < R; r++) {
        c1[r] = ck ? one : bump(cur, n);
        if (r < R - 1) o[r] = bump(cur, n);
    }
}

tf_status tf_dlayout(tf_dlay *y, const tf_arch *a, int B, int64_t N, tf_kernels *kern) {
    TF_TRY(dims(y, a, B, N));
    const int L = a->L, R = a->nrcm, S = a->S, K = a->K, C = a->ch[L - 1];
    const int Hb = y->H[L], Wb = y->W[L], Hd = a->hidden, Ls = a->wt * a->wf;
    const size_t b = (size_t)B;
    const size_t nspec = b * 2 * y->Fb * y->T;
    /* ---- saved ----
     * Without checkpointing a block's insides follow its input in the activation block; with
     * it (ck) they go to the recompute scratch: offsets from its start (ins, reset for every
     * block; scr is added once the scratch has its place in the workspace), n_scr the
     * largest block's. A Conv block's insides (put_block) are contiguous from c1[0]
     * (dx_own below): c1[0], o[0], c1[1], ..., c1[R-1] saved; with ck one shared c1
     * slot, then o[0..R-2]. */
    const int ck = a->ckpt == TF_CKPT_BLOCKS, bf = a->act_dtype == TF_DT_BF16;
    y->ckpt = ck;
    y->bf = bf;
#define HB(n) (bf ? ((n) + 1) / 2 : (n)) /* floats of a map of n stored values */
    size_t c = 0, ins = 0;
    size_t *const ic = ck ? &ins : &c; /* where the insides are bumped */
    y->pr = bump(&c, nspec);
    y->pi = bump(&c, nspec);
    size_t cmax = 0, omax = 0, pmax = 0; /* per item: max(Cin, Cout) HW, Cout HW, resampled */
    for (int l = 0; l < L; l++) {
        const size_t hw = (size_t)y->H[l] * y->W[l];
        const int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l];
        y->enc_in[l] = bump(&c, HB(b * ci * hw));
        ins = 0;
        put_block(y->enc_c1[l], y->enc_o[l], ic, ck, R, HB(b * co * hw));
        y->n_scr = zmax(y->n_scr, ins);
        cmax = zmax(cmax, (size_t)(ci > co ? ci : co) * hw);
        omax = zmax(omax, (size_t)co * hw);
    }
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j;
        const size_t hw = (size_t)y->H[i] * y->W[i];
        const int ci = a->dec_in[j], co = a->dec_out[j], cu = ci - a->ch[i];
        y->dec_cat[j] = bump(&c, HB(b * ci * hw));
        ins = 0;
        put_block(y->dec_c1[j], y->dec_o[j], ic, ck, R, HB(b * co * hw));
        y->n_scr = zmax(y->n_scr, ins);
        cmax = zmax(cmax, (size_t)(ci > co ? ci : co) * hw);
        omax = zmax(omax, (size_t)co * hw);
        pmax = zmax(pmax, (size_t)cu * hw); /* the upsampled map this decoder takes */
    }
    const size_t hwp = (size_t)y->Fp * y->Tp;
    y->head_in = bump(&c, HB(b * a->ch[0] * hwp));
    y->z = bump(&c, HB(b * 2 * K * S * hwp));
    const size_t ntok = b * Hb * Wb * C;
    const int Ns[4] = {B * Hb, B * Wb, B * y->nW, B * y->nW}, Lq[4] = {Wb, Hb, Ls, Ls};
    for (int k = 0; k < a->nblk; k++) {
        ins = 0;
        for (int s = 0; s < 4; s++) {
            y->tok[k][s] = bump(s ? ic : &c, ntok);
            y->tsv[k][s] = bump(ic, tf_tblock_saved_floats(Ns[s], Lq[s], C, a->heads, Hd));
        }
        y->n_scr = zmax(y->n_scr, ins);
    }
    y->act_floats = c;
    if (!ck) y->n_scr = 0;
    /* ---- workspace ----
     * Region R: phases that never overlap in time share its bytes (views from R's start):
     *   io     the input STFT (re, im, mag); the head forward and backward (hc, om, yr, yi,
     *          dz: dz is spent by the head conv's backward into D0 before any block runs);
     *   blk    a Conv block's forward and backward: Y, G (its gradient dY reuses G once
     *          the convolution's backward has read G), dG, the shortcut and block outputs
     *          Tb, O and the resampled map P;
     *   tfswa  the TFSWA stack: token buffers and the tblock backward workspace.
     * With checkpointing the recompute scratch is live during blk and tfswa (a block's
     * insides, forward and recompute, next to the phase's buffers) but never during io or
     * head (the input STFT is spent into x0 and the phase before the first block runs, the
     * head runs after the last block's forward and before the first recompute): it sits in
     * R after the blk and tfswa phases, over io and head.
     * The skip gradients live in the decoder inputs they come from (dec_cat, saved), once
     * that decoder's backward is done; a block's input gradient in its own insides (c1,
     * o: free by the time it is written; with checkpointing the recompute scratch, whose
     * next user, the next block's recompute, runs after the gradient is consumed by the
     * concat or pool backward) where they fit, else in the block's scratch gradient buffer
     * (D1 or D0). */
    size_t w = 0, v;
    const size_t r0 = w;
    v = r0;
    y->re = bump(&v, nspec);
    y->im = bump(&v, nspec);
    y->mag = bump(&v, nspec);
    size_t rend = v;
    const size_t nout = b * S * 2 * y->Fb * y->T;
    v = r0;
    y->hc = bump(&v, b * S * 2 * K * y->Fs * y->T);
    y->om = bump(&v, nout);
    y->yr = bump(&v, nout);
    y->yi = bump(&v, nout);
    y->dz = bump(&v, b * 2 * K * S * hwp);
    rend = zmax(rend, v);
    v = r0;
    y->Y = bump(&v, b * cmax);
    y->G = bump(&v, b * cmax);
    y->dY = y->G;
    y->dG = bump(&v, b * cmax);
    y->Tb = bump(&v, b * omax);
    y->O = bump(&v, b * omax);
    y->P = bump(&v, b * pmax);
    size_t sc = v; /* the scratch: after blk and tfswa */
    rend = zmax(rend, v);
    if (a->nblk > 0) {
        v = r0;
        for (int t = 0; t < 6; t++) y->tb[t] = bump(&v, ntok);
        size_t tw = 0;
        for (int s = 0; s < 4; s++)
            tw = zmax(tw, tf_dlay_tblock_ws_floats(Ns[s], Lq[s], C, a->heads, Hd));
        y->n_tbws = tw;
        y->tbws = bump(&v, tw);
        sc = zmax(sc, v);
        rend = zmax(rend, v);
    }
    if (ck) {
        y->scr = bump(&sc, y->n_scr);
        rend = zmax(rend, sc);
        for (int l = 0; l < L; l++)
            for (int r = 0; r < R; r++) {
                y->enc_c1[l][r] += y->scr, y->dec_c1[l][r] += y->scr;
                if (r < R - 1) y->enc_o[l][r] += y->scr, y->dec_o[l][r] += y->scr;
            }
        for (int k = 0; k < a->nblk; k++)
            for (int s = 0; s < 4; s++) {
                if (s) y->tok[k][s] += y->scr;
                y->tsv[k][s] += y->scr;
            }
    }
    w = rend;
    /* D0, D1 swap roles at every decoder level: dout (then the upsampled part of the input
     * gradient) and scratch (then the upsampling's input gradient); D1 is the encoder's
     * scratch. The RCM chain's gradients take turns in dout and the scratch (an RCM's input
     * gradient overwrites its conv1-output gradient in place); a block whose input
     * gradient does not fit its insides (!dx_own) puts it in the scratch and the chain's
     * second buffer after dout's first (B, Cout, H, W) (a decoder: D sized for both) or in
     * E (an encoder) */
    size_t ne = 0;
    {
        size_t d[2] = {b * a->ch[0] * hwp, 0}; /* the head's input gradient: D0 */
        int dc = 0;
        for (int j = L - 1; j >= 0; j--) {
            const int i = L - 1 - j, cu = a->dec_in[j] - a->ch[i];
            const size_t px = b * y->H[i] * y->W[i], px1 = b * y->H[i + 1] * y->W[i + 1];
            y->dx_own[L + j] =
                ck ? y->n_scr >= px * a->dec_in[j]
                   : (size_t)(2 * R - 1) * HB(px * a->dec_out[j]) >= px * a->dec_in[j];
            d[dc] = zmax(d[dc], px * zmax(a->dec_out[j], cu));
            d[!dc] = zmax(d[!dc], zmax(px * a->dec_out[j], px1 * cu));
            if (!y->dx_own[L + j]) {
                d[!dc] = zmax(d[!dc], px * a->dec_in[j]);
                d[dc] = zmax(d[dc], 2 * px * a->dec_out[j]);
            }
            dc = !dc;
        }
        for (int l = 0; l < L; l++) {
            const size_t px = b * y->H[l] * y->W[l];
            const int ci = l ? a->ch[l - 1] : a->cin;
            y->dx_own[l] =
                ck ? y->n_scr >= px * ci : (size_t)(2 * R - 1) * HB(px * a->ch[l]) >= px * ci;
            d[1] = zmax(d[1], px * (y->dx_own[l] ? (size_t)a->ch[l] : zmax(ci, a->ch[l])));
            if (!y->dx_own[l]) ne = zmax(ne, px * a->ch[l]);
        }
        y->D0 = bump(&w, d[0]);
        y->D1 = bump(&w, d[1]);
    }
    y->E = bump(&w, ne);
    int chmax = a->cin;
    for (int l = 0; l < L; l++) chmax = a->ch[l] > chmax ? a->ch[l] : chmax;
    for (int j = 0; j < L; j++) chmax = a->dec_in[j] > chmax ? a->dec_in[j] : chmax;
    y->mean = bump(&w, (size_t)chmax);
    y->rstd = bump(&w, (size_t)chmax);
    for (int l = 0; l < L; l++) { /* in the activation block, where the bytes suffice */
        const size_t n = b * a->ch[l] * y->H[l] * y->W[l];
        const int j = L - 1 - l;
        y->dskip_w[l] = HB(b * a->dec_in[j] * y->H[l] * y->W[l]) < n;
        y->dskip[l] = y->dskip_w[l] ? bump(&w, n) : y->dec_cat[j];
    }
    if (bf) { /* the fp32 staging of the bf16 maps (dlayout.h) */
        y->XW = bump(&w, b * zmax(cmax, zmax((size_t)2 * K * S, a->ch[0]) * hwp));
        if (a->output == TF_OUT_MASK) y->X0W = bump(&w, b * a->cin * hwp);
    }
    y->bott = bump(&w, b * C * Hb * Wb);
    if (a->nblk > 0) {
        y->relidx = bump(&w, (size_t)Ls * Ls); /* ints: the same size as floats */
        y->mask = bump(&w, (size_t)y->nW * Ls * Ls);
    }
    /* convolutions: every shape, whole batch (kern sizes them: threads does not apply) */
    size_t cws = 0;
    TF_TRY(conv_ws_all(&cws, y, a, B, kern, 1));
    y->n_convws = cws;
    y->convws = bump(&w, y->n_convws);
    y->work_floats = w;
    return TF_OK;
#undef HB
}

tf_status tf_dlayout_infer(tf_dlay *y, const tf_arch *a, int B, int64_t N, tf_kernels *kern) {
    TF_TRY(dims(y, a, B, N));
    y->infer = 1;
    const int L = a->L, R = a->nrcm, S = a->S, K = a->K, C = a->ch[L - 1];
    const int Hb = y->H[L], Wb = y->W[L], Hd = a->hidden, Ls = a->wt * a->wf;
    const int mask_out = a->output == TF_OUT_MASK;
    const size_t b = (size_t)B, hwp = (size_t)y->Fp * y->Tp;
    const size_t nspec = b * 2 * y->Fb * y->T, ntok = b * Hb * Wb * C;
    /* ---- live throughout (see dlayout.h) ---- */
    size_t c = 0;
    y->pr = bump(&c, nspec);
    y->pi = bump(&c, nspec);
    if (mask_out) y->enc_in[0] = bump(&c, b * a->cin * hwp); /* x0: the head reads it */
    size_t xmax = ntok, omax = 0, cmax = 0, pmax = 0;        /* X: level inputs and bottleneck */
    for (int l = 0; l < L; l++) {
        const size_t hw = (size_t)y->H[l] * y->W[l];
        const int ci = l ? a->ch[l - 1] : a->cin, co = a->ch[l];
        if (l || !mask_out) xmax = zmax(xmax, b * ci * hw);
        cmax = zmax(cmax, (size_t)(ci > co ? ci : co) * hw);
        omax = zmax(omax, (size_t)co * hw);
    }
    for (int j = 0; j < L; j++) {
        const int i = L - 1 - j;
        const size_t hw = (size_t)y->H[i] * y->W[i];
        const int ci = a->dec_in[j], co = a->dec_out[j];
        y->dec_cat[j] = bump(&c, b * ci * hw);
        cmax = zmax(cmax, (size_t)(ci > co ? ci : co) * hw);
        omax = zmax(omax, (size_t)co * hw);
        pmax = zmax(pmax, (size_t)(ci - a->ch[i]) * hw);
    }
    const size_t X = bump(&c, xmax);
    for (int l = mask_out; l < L; l++) y->enc_in[l] = X;
    y->bott = X;
    if (a->nblk > 0) {
        y->relidx = bump(&c, (size_t)Ls * Ls); /* ints: the same size as floats */
        y->mask = bump(&c, (size_t)y->nW * Ls * Ls);
    }
    size_t cws = 0; /* every convolution, forward only, whole batch */
    TF_TRY(conv_ws_all(&cws, y, a, B, kern, 0));
    y->n_convws = cws;
    y->convws = bump(&c, cws);
    /* ---- region R: one step's buffers at a time, each step's from R's start ---- */
    const size_t r0 = c;
    size_t v = r0, rend = r0;
    /* input STFT */
    y->re = bump(&v, nspec);
    y->im = bump(&v, nspec);
    y->mag = bump(&v, nspec);
    rend = zmax(rend, v);
    /* Conv blocks: the insides in three buffers, c1[r] in the first, o[r] alternating
     * between the second and the third (o[r - 1] is RCM r's input while o[r] is written) */
    v = r0;
    y->Y = bump(&v, b * cmax);
    y->Tb = bump(&v, b * omax);
    y->O = bump(&v, b * omax);
    y->P = bump(&v, b * pmax);
    const size_t s0 = bump(&v, b * omax);
    const size_t s1 = R > 1 ? bump(&v, b * omax) : 0, s2 = R > 2 ? bump(&v, b * omax) : 0;
    for (int l = 0; l < L; l++)
        for (int r = 0; r < R; r++) {
            y->enc_c1[l][r] = y->dec_c1[l][r] = s0;
            if (r < R - 1) y->enc_o[l][r] = y->dec_o[l][r] = r % 2 ? s2 : s1;
        }
    /* the head input: the last decoder block's output, so after the blocks' buffers */
    y->head_in = bump(&v, b * a->ch[0] * hwp);
    const size_t hend = v;
    rend = zmax(rend, v);
    /* TFSWA stack: one token input for every block (the previous block's output is
     * swapped into it once it is spent), tb[0..4], one buffer for each block's
     * tok[k][1..3] (the FSA input, spent before the Swin input is written, itself spent
     * before the shifted Swin input is written) and one transient saved block tsv for all
     * four sublayers of every block (only the sublayer's own forward reads it) */
    if (a->nblk > 0) {
        v = r0;
        const int Ns[4] = {B * Hb, B * Wb, B * y->nW, B * y->nW}, Lq[4] = {Wb, Hb, Ls, Ls};
        const size_t tin = bump(&v, ntok), tins = bump(&v, ntok);
        for (int t = 0; t < 5; t++) y->tb[t] = bump(&v, ntok);
        size_t sv = 0;
        for (int s = 0; s < 4; s++)
            sv = zmax(sv, tf_tblock_saved_floats(Ns[s], Lq[s], C, a->heads, Hd));
        const size_t tsv = bump(&v, sv);
        for (int k = 0; k < a->nblk; k++)
            for (int s = 0; s < 4; s++) {
                y->tok[k][s] = s ? tins : tin;
                y->tsv[k][s] = tsv;
            }
        rend = zmax(rend, v);
    }
    /* head: head_in where the blocks left it, z after it; hc, om, yr, yi from R's start
     * (head_in is spent into z before hc is written) */
    v = r0;
    y->hc = bump(&v, b * S * 2 * K * y->Fs * y->T);
    const size_t nout = b * S * 2 * y->Fb * y->T;
    y->om = bump(&v, nout);
    y->yr = bump(&v, nout);
    y->yi = bump(&v, nout);
    v = zmax(v, hend);
    y->z = bump(&v, b * 2 * K * S * hwp);
    rend = zmax(rend, v);
    y->act_floats = 0;
    y->work_floats = rend;
    return TF_OK;
}

size_t tf_dlay_mrstft_bins_frames(int64_t N) {
    static const int win[3] = {512, 1024, 2048};
    size_t m = 0;
    for (int r = 0; r < 3; r++)
        m = zmax(m, (size_t)(win[r] / 2 + 1) * (size_t)(1 + N / (win[r] / 4)));
    return m;
}

void tf_dlay_trainer(tf_dtrl *o, size_t n_params, size_t n_buffers, int ema, int B, int S,
                     int64_t N, size_t spec_bins_frames) {
    memset(o, 0, sizeof *o);
    size_t c = 0;
    const size_t nio = (size_t)B * S * 2 * (size_t)N;
    o->m = bump(&c, n_params);
    o->v = bump(&c, n_params);
    if (ema) o->ema = bump(&c, n_params);
    o->bufsave = bump(&c, n_buffers);
    o->mix = bump(&c, (size_t)B * 2 * (size_t)N);
    o->tgt = bump(&c, nio);
    o->out = bump(&c, nio);
    o->dout = bump(&c, nio);
    o->n_spec = spec_bins_frames * (size_t)B * S * 2;
    o->spec = bump(&c, 6 * o->n_spec);
    o->dbl = bump(&c, 2 * (TF_DLAY_LOSS_WS_DOUBLES + 8)); /* doubles: 2 floats each */
    o->floats = c;
}
