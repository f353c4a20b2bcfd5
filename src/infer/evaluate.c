/* tfswa evaluate: see evaluate.h. */
#include "infer/evaluate.h"

#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "data/valtrack.h"
#include "dsp/stft.h"
#include "infer/figures.h"
#include "dsp/ola.h"
#include "infer/separate.h"
#include "metrics/eval_track.h"
#include "metrics/sdr.h"
#include "model/checkpoint.h"
#include "util/fsutil.h"
#include "util/image.h"
#include "util/clock.h"

enum { READ_BLOCK = 65536 };

static const char *EST_KEY[TF_EST_COUNT] = {"model", "mixture", "oracle_irm"};
static const char *EST_LABEL[TF_EST_COUNT] = {"model", "mixture", "oracle IRM"};

const char *tf_est_key(tf_est e) {
    return (unsigned)e < TF_EST_COUNT ? EST_KEY[e] : "?";
}

void tf_evaluate_defaults(tf_evaluate_opts *o) {
    memset(o, 0, sizeof *o);
    o->split = TF_SPLIT_TEST;
    o->overlap = 0.25;
    o->batch_size = 1;
    o->precision = TF_PRECISION_AUTO;
    o->backend = TF_BACKEND_DNNL;
    o->figure_seconds = 5.0;
}

void tf_evaluation_free(tf_evaluation *e) {
    for (int i = 0; i < e->n_tracks; i++) free(e->tracks[i].name);
    free(e->tracks);
    memset(e, 0, sizeof *e);
}

typedef struct { /* a sink writing overlap-add output into rows of the estimate buffer */
    float *est;  /* (T, 2, N) */
    int64_t N, pos;
    int n;
    const int *row;
} est_sink;

static tf_status sink_fn(void *ctx, const float *stems, int64_t n, int64_t stride) {
    est_sink *k = ctx;
    if (k->pos + n > k->N) return tf_err(TF_EINTERNAL, "evaluate: more output than input");
    for (int t = 0; t < k->n; t++)
        for (int c = 0; c < 2; c++)
            memcpy(k->est + ((size_t)k->row[t] * 2 + c) * (size_t)k->N + k->pos,
                   stems + ((size_t)t * 2 + c) * (size_t)stride, sizeof(float) * (size_t)n);
    k->pos += n;
    return TF_OK;
}

/* ---- the ideal ratio mask as an overlap-add "model" ---- */

typedef struct {
    tf_stft *st;
    const float *ref; /* (S, 2, N): targets first */
    int S, T;
    int64_t N, L, hop, next; /* next: index of the next chunk (the engine runs them in order) */
    float *x;                /* (S + 1, 2, L): sources, then the mixture */
    float *re, *im;          /* (S + 1, 2, F, Tf) */
} oracle;

static tf_status oracle_fn(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    oracle *o = ctx;
    const int S = o->S, T = o->T;
    const size_t FT = (size_t)tf_stft_bins(o->st) * (size_t)tf_stft_frames(o->st, L);
    for (int j = 0; j < nb; j++) {
        const int64_t start = (o->next++) * o->hop;
        int64_t have = o->N - start;
        if (have < 0) have = 0;
        if (have > L) have = L;
        for (int r = 0; r < S * 2; r++) {
            float *x = o->x + (size_t)r * L;
            if (have) memcpy(x, o->ref + (size_t)r * o->N + start, sizeof(float) * (size_t)have);
            memset(x + have, 0, sizeof(float) * (size_t)(L - have));
        }
        memcpy(o->x + (size_t)S * 2 * L, mix + (size_t)j * 2 * L, sizeof(float) * 2 * (size_t)L);
        TF_TRY(tf_stft_forward(o->st, o->re, o->im, o->x, (S + 1) * 2, L));
        for (int c = 0; c < 2; c++) {
            const float *xr = o->re + ((size_t)S * 2 + c) * FT,
                        *xi = o->im + ((size_t)S * 2 + c) * FT;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < FT; i++) {
                double den = 0;
                for (int s = 0; s < S; s++)
                    den += hypotf(o->re[((size_t)s * 2 + c) * FT + i],
                                  o->im[((size_t)s * 2 + c) * FT + i]);
                for (int t = 0; t < T; t++) {
                    float *yr = o->re + ((size_t)t * 2 + c) * FT + i,
                          *yi = o->im + ((size_t)t * 2 + c) * FT + i;
                    float m = den > 0 ? (float)(hypotf(*yr, *yi) / den) : 0.f;
                    *yr = m * xr[i], *yi = m * xi[i];
                }
            }
        }
        /* targets are the first T sources: rows (t, c) = out (T, 2, L) of chunk j */
        TF_TRY(tf_istft_forward(o->st, out + (size_t)j * T * 2 * L, o->re, o->im, T * 2, L));
    }
    return TF_OK;
}

/* ---- the evaluation ---- */

typedef struct {
    const tf_evaluate_opts *o;
    tf_evaluation *e;
    tf_config dc; /* data config (root, rate, sources) */
    tf_index *ix;
    int n_models;
    tf_separator *sep; /* the checkpoints, as `tfswa separate` runs them */
    tf_sep_params sp;
    int owner[TF_MAX_TARGETS]; /* checkpoint providing each target */
    int T, S;
    int perm[TF_MAX_TARGETS]; /* reference row r holds index stem perm[r]; targets first */
    int n_fft, hop;
    int64_t L;
    tf_ola_cfg oc; /* the oracle's overlap-add (that of the separator) */
    tf_bss_params bss;
    /* per track */
    int64_t N;
    float *ref, *mix, *est; /* (S, 2, N), (2, N), (T, 2, N) */
    char path[TF_PATH_MAX + 512];
} ev;

static int silent_whole(const float *x, int64_t N) { /* museval: sum over channels is 0 */
    for (int64_t i = 0; i < N; i++)
        if (x[i] + x[N + i] != 0) return 0;
    return 1;
}

/* tf_eval_track, or all-NaN frames when a source is silent over the whole track. */
static tf_status score(ev *E, const float *est, tf_eval_result *r, int *silent) {
    const int T = E->T;
    const int64_t N = E->N;
    const char *names[TF_MAX_TARGETS];
    for (int t = 0; t < T; t++) names[t] = E->e->targets[t];
    *silent = 0;
    for (int t = 0; t < T; t++)
        *silent |=
            silent_whole(E->ref + (size_t)t * 2 * N, N) || silent_whole(est + (size_t)t * 2 * N, N);
    if (!*silent)
        return tf_eval_track(&E->bss, names, T, E->ref, est, N, E->dc.sample_rate, r, NULL);
    /* the layout tf_eval_track makes (and tf_eval_result_free frees): one block of
     * (4, T, nwin) doubles, sdr at its start */
    memset(r, 0, sizeof *r);
    int64_t nwin = tf_bss_nwin(N, E->bss.window, E->bss.hop);
    r->t = tf_calloc((size_t)T, sizeof *r->t, "evaluation targets");
    double *buf = tf_malloc((size_t)4 * T * nwin * sizeof(double), "evaluation frames");
    if (!r->t || !buf) return free(r->t), free(buf), r->t = NULL, TF_EINTERNAL;
    for (size_t i = 0; i < (size_t)4 * T * nwin; i++) buf[i] = NAN;
    r->ntargets = T, r->nwin = nwin;
    r->win_s = (double)E->bss.window / E->dc.sample_rate;
    r->hop_s = (double)E->bss.hop / E->dc.sample_rate;
    for (int t = 0; t < T; t++) {
        tf_eval_target *x = &r->t[t];
        snprintf(x->name, sizeof x->name, "%s", names[t]);
        x->sdr = buf + ((size_t)0 * T + t) * nwin, x->isr = buf + ((size_t)1 * T + t) * nwin;
        x->sir = buf + ((size_t)2 * T + t) * nwin, x->sar = buf + ((size_t)3 * T + t) * nwin;
        x->csdr = x->csir = x->csar = x->cisr = NAN;
        tf_sdr_acc acc = {0, 0, 0, 0};
        tf_sdr_acc_add(&acc, E->ref + (size_t)t * 2 * N, est + (size_t)t * 2 * N, 2 * N);
        x->usdr = tf_sdr_usdr(&acc), x->sisdr = tf_sdr_sisdr(&acc);
    }
    return TF_OK;
}

static tf_status score_and_write(ev *E, tf_est k, const tf_track *tr, tf_eval_track_scores *ts) {
    tf_eval_result r;
    TF_TRY(score(E, E->est, &r, &ts->bss_silent[k]));
    for (int t = 0; t < E->T; t++) {
        tf_eval_scores *s = &ts->s[k][t];
        s->csdr = r.t[t].csdr, s->csir = r.t[t].csir, s->csar = r.t[t].csar;
        s->cisr = r.t[t].cisr, s->usdr = r.t[t].usdr, s->sisdr = r.t[t].sisdr;
    }
    const char *sp = tf_split_name(E->o->split);
    if (k == TF_EST_MODEL)
        snprintf(E->path, sizeof E->path, "%s/%s/%s.json", E->o->out_dir, sp, tr->name);
    else
        snprintf(E->path, sizeof E->path, "%s/%s/%s/%s.json", E->o->out_dir, EST_KEY[k], sp,
                 tr->name);
    tf_status st = tf_eval_write_json(E->path, &r);
    tf_eval_result_free(&r);
    return st;
}

/* Spectrogram figures of the current track with the estimates in E->est. */
static tf_status figures_spec(ev *E, const tf_track *tr, tf_est k) {
    const int64_t N = E->N, rate = E->dc.sample_rate;
    int64_t W = (int64_t)llround(E->o->figure_seconds * (double)rate);
    if (W > N) W = N;
    if (W < 1) W = 1;
    const int64_t blk = rate / 2 > 0 ? rate / 2 : 1; /* candidate starts every 0.5 s */
    for (int t = 0; t < E->T; t++) {
        /* the loudest stretch of the reference of target t */
        const float *x = E->ref + (size_t)t * 2 * N;
        int64_t best = 0;
        double best_e = -1;
        for (int64_t s0 = 0; s0 == 0 || s0 + W <= N; s0 += blk) {
            double en = 0;
            for (int c = 0; c < 2; c++)
                for (int64_t i = s0; i < s0 + W && i < N; i++)
                    en += (double)x[c * N + i] * x[c * N + i];
            if (en > best_e) best_e = en, best = s0;
        }
        char t0[512], t1[128], t2[128];
        snprintf(t0, sizeof t0, "MIXTURE: %.80s, %.1f-%.1f S", tr->name, (double)best / rate,
                 (double)(best + W) / rate);
        snprintf(t1, sizeof t1, "REFERENCE: %s", E->e->targets[t]);
        snprintf(t2, sizeof t2, "ESTIMATE: %s (%s)", E->e->targets[t], EST_LABEL[k]);
        tf_fig_spec f = {E->n_fft,    E->hop,
                         (int)rate,   {E->mix + best, x + best, E->est + (size_t)t * 2 * N + best},
                         N,           W,
                         {t0, t1, t2}};
        snprintf(E->path, sizeof E->path, "%s/figures/spec_%s.png", E->o->out_dir,
                 E->e->targets[t]);
        TF_TRY(tf_fig_spectrogram(E->path, &f));
    }
    return TF_OK;
}

static tf_status figures_bars(ev *E) {
    const tf_evaluation *e = E->e;
    const int n = e->n_tracks;
    double *v = tf_malloc(sizeof(double) * (size_t)n * TF_EST_COUNT, "figure values");
    if (!v) return TF_EINTERNAL;
    static const tf_est order[] = {TF_EST_MIXTURE, TF_EST_MODEL, TF_EST_ORACLE};
    static const uint32_t color[] = {TF_RGB(160, 160, 160), TF_RGB(33, 145, 140),
                                     TF_RGB(230, 120, 30)};
    static const char *name[] = {"MIXTURE", "MODEL", "IRM ORACLE"};
    tf_status st = TF_OK;
    for (int t = 0; t < e->n_targets && !st; t++) {
        tf_fig_bars b;
        memset(&b, 0, sizeof b);
        char title[128];
        snprintf(title, sizeof title, "%s: CSDR PER TRACK (DB)", e->targets[t]);
        b.title = title, b.ylabel = "DB", b.n_groups = n;
        for (int q = 0; q < 3; q++) {
            tf_est k = order[q];
            if (!e->has[k]) continue;
            double *col = v + (size_t)b.n_series * n;
            for (int i = 0; i < n; i++) col[i] = e->tracks[i].s[k][t].csdr;
            b.series[b.n_series] = name[q], b.color[b.n_series] = color[q];
            b.values[b.n_series++] = col;
        }
        snprintf(E->path, sizeof E->path, "%s/figures/csdr_%s.png", E->o->out_dir, e->targets[t]);
        st = tf_fig_bar_chart(E->path, &b);
    }
    free(v);
    return st;
}

static tf_status one_track(ev *E, int ti, tf_eval_track_scores *ts) {
    const tf_track *tr = &E->ix->tracks[ti];
    const int S = E->S, T = E->T;
    double t0 = tf_now_s();
    tf_valtrack *v = NULL;
    TF_TRY(tf_valtrack_open(&v, E->ix, ti));
    const int64_t N = tf_valtrack_frames(v);
    E->N = N;
    ts->frames = N;
    ts->name = tf_strdup(tr->name);
    E->ref = tf_malloc(sizeof(float) * (size_t)S * 2 * (size_t)N, "evaluation references");
    E->mix = tf_malloc(sizeof(float) * 2 * (size_t)N, "evaluation mixture");
    E->est = tf_malloc(sizeof(float) * (size_t)T * 2 * (size_t)N, "evaluation estimates");
    float *bmix = tf_malloc(sizeof(float) * 2 * READ_BLOCK, "evaluation block");
    float *bst = tf_malloc(sizeof(float) * (size_t)S * 2 * READ_BLOCK, "evaluation block");
    oracle orc;
    memset(&orc, 0, sizeof orc);
    tf_status st = (ts->name && E->ref && E->mix && E->est && bmix && bst) ? TF_OK : TF_EINTERNAL;
    /* 1. read the track: references and mixture (block by block) into memory */
    int64_t pos = 0;
    while (!st) {
        int64_t got = 0;
        st = tf_valtrack_read(v, READ_BLOCK, bmix, bst, &got);
        if (st || got == 0) break;
        if (pos + got > N) {
            st = tf_err(TF_EINTERNAL, "evaluate: track longer than indexed");
            break;
        }
        for (int r = 0; r < S; r++)
            for (int c = 0; c < 2; c++)
                memcpy(E->ref + ((size_t)r * 2 + c) * N + pos,
                       bst + ((size_t)E->perm[r] * 2 + c) * READ_BLOCK, sizeof(float) * got);
        for (int c = 0; c < 2; c++)
            memcpy(E->mix + (size_t)c * N + pos, bmix + (size_t)c * READ_BLOCK,
                   sizeof(float) * got);
        pos += got;
        if (got < READ_BLOCK) break;
    }
    if (!st && pos != N)
        st = tf_err(TF_EINTERNAL, "evaluate: read %lld of %lld frames", (long long)pos,
                    (long long)N);
    tf_valtrack_close(v);
    /* 2. the models: the separation pipeline of `tfswa separate` on the mixture */
    if (!st && E->n_models) {
        st = tf_separate_buffer(E->sep, E->mix, 2, N, E->dc.sample_rate, E->est, &E->sp, NULL);
        if (!st) st = score_and_write(E, TF_EST_MODEL, tr, ts);
        if (!st && ts == &E->e->tracks[0]) st = figures_spec(E, tr, TF_EST_MODEL);
    }
    /* 3. the mixture as the estimate of every target */
    if (!st) {
        for (int t = 0; t < T; t++)
            memcpy(E->est + (size_t)t * 2 * N, E->mix, sizeof(float) * 2 * (size_t)N);
        st = score_and_write(E, TF_EST_MIXTURE, tr, ts);
    }
    /* 4. the ideal ratio mask through an overlap-add engine configured as the separator's */
    if (!st && E->o->oracle_irm) {
        tf_ola *ola = NULL;
        est_sink sk = {E->est, N, 0, T, NULL};
        int rows[TF_MAX_TARGETS];
        for (int t = 0; t < T; t++) rows[t] = t;
        sk.row = rows;
        tf_ola_cfg oc = E->oc;
        oc.n_stems = T, oc.batch = 1;
        orc.ref = E->ref, orc.S = S, orc.T = T, orc.N = N, orc.L = E->L;
        orc.hop = tf_ola_hop(&oc);
        st = tf_stft_create(&orc.st, E->n_fft, E->hop);
        if (!st) {
            size_t FT = (size_t)tf_stft_bins(orc.st) * (size_t)tf_stft_frames(orc.st, E->L);
            orc.x = tf_malloc(sizeof(float) * (size_t)(S + 1) * 2 * (size_t)E->L, "oracle chunk");
            orc.re = tf_malloc(sizeof(float) * (size_t)(S + 1) * 2 * FT, "oracle spectrum");
            orc.im = tf_malloc(sizeof(float) * (size_t)(S + 1) * 2 * FT, "oracle spectrum");
            if (!orc.x || !orc.re || !orc.im) st = TF_EINTERNAL;
        }
        if (!st) st = tf_ola_open(&ola, &oc, oracle_fn, &orc, sink_fn, &sk);
        for (int64_t p = 0; p < N && !st; p += READ_BLOCK) {
            int64_t n = N - p < READ_BLOCK ? N - p : READ_BLOCK;
            st = tf_ola_push(ola, E->mix + p, n, N);
        }
        if (!st) st = tf_ola_finish(ola);
        if (!st && sk.pos != N) st = tf_err(TF_EINTERNAL, "evaluate: oracle output incomplete");
        tf_ola_close(ola);
        if (!st) st = score_and_write(E, TF_EST_ORACLE, tr, ts);
        if (!st && !E->n_models && ts == &E->e->tracks[0]) st = figures_spec(E, tr, TF_EST_ORACLE);
    }
    tf_stft_destroy(orc.st);
    free(orc.x), free(orc.re), free(orc.im);
    free(E->ref), free(E->mix), free(E->est), free(bmix), free(bst);
    E->ref = E->mix = E->est = NULL;
    ts->seconds = tf_now_s() - t0;
    return st ? tf_err_ctx(st, "%s", tr->dir) : TF_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median (want_median) or mean of the finite values; NaN when there are none */
static double agg(double *v, int n, int want_median) {
    int m = 0;
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) v[m++] = v[i], sum += v[i];
    if (m == 0) return NAN;
    if (!want_median) return sum / m;
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    return m % 2 ? v[m / 2] : 0.5 * (v[m / 2 - 1] + v[m / 2]);
}

static tf_status aggregate(tf_evaluation *e) {
    double *v = tf_malloc(sizeof(double) * (size_t)(e->n_tracks + 1), "aggregate");
    if (!v) return TF_EINTERNAL;
    for (int k = 0; k < TF_EST_COUNT; k++)
        for (int t = 0; t < e->n_targets; t++) {
            tf_eval_scores *a = &e->agg[k][t];
#define AGG(field, med)                                                                            \
    do {                                                                                           \
        for (int i = 0; i < e->n_tracks; i++) v[i] = e->tracks[i].s[k][t].field;                   \
        a->field = e->has[k] ? agg(v, e->n_tracks, med) : NAN;                                     \
    } while (0)
            AGG(csdr, 1);
            AGG(csir, 1);
            AGG(csar, 1);
            AGG(cisr, 1);
            AGG(usdr, 0);
            AGG(sisdr, 0);
#undef AGG
        }
    free(v);
    return TF_OK;
}

/* The checkpoints as one separator (which rejects two checkpoints with one target and
 * different sample rates); the first one's model.json gives the STFT for the oracle. */
static tf_status load_models(ev *E, tf_ckpt_info *first) {
    const tf_evaluate_opts *o = E->o;
    tf_evaluation *e = E->e;
    if (!o->n_checkpoints) return TF_OK;
    tf_sep_model models[TF_EVAL_MAX_CHECKPOINTS];
    tf_status st = TF_OK;
    int n = 0;
    for (; n < o->n_checkpoints && !st; n++) {
#if TFSWA_CUDA
        if (o->device.kind == TF_DEVICE_CUDA)
            st = tf_sep_model_checkpoint_cuda(&models[n], o->checkpoints[n], o->device.index);
        else
#endif
            st = tf_sep_model_checkpoint(&models[n], o->checkpoints[n], o->num_threads, o->backend,
                                         tf_precision_resolve(o->precision, o->backend));
        if (!st) /* (its errors name the checkpoint) */
            for (int t = 0; t < models[n].n_targets && e->n_targets < TF_MAX_TARGETS; t++)
                E->owner[e->n_targets++] = n;
    }
    if (st) {
        for (int k = 0; k < n - 1; k++) models[k].close(models[k].ctx);
        return st;
    }
    const char *d = models[0].describe ? models[0].describe(models[0].ctx) : NULL;
    snprintf(e->compute, sizeof e->compute, "%s", d ? d : "");
    TF_TRY(tf_separator_create(&E->sep, models, n, o->num_threads)); /* owns the models */
    E->n_models = n;
    e->n_targets = tf_separator_n_targets(E->sep);
    for (int t = 0; t < e->n_targets; t++)
        snprintf(e->targets[t], TF_NAME_MAX, "%s", tf_separator_target(E->sep, t));
    char dir[TF_PATH_MAX];
    memset(first, 0, sizeof *first);
    TF_TRY(tf_ckpt_resolve(o->checkpoints[0], dir, sizeof dir));
    return tf_ckpt_read_info(dir, first);
}

static tf_status check_opts(const tf_evaluate_opts *o) {
    if (!o->data_root || !o->data_root[0]) return tf_err(TF_EUSER, "--data_root is required");
    if (!o->out_dir || !o->out_dir[0]) return tf_err(TF_EUSER, "-o OUT is required");
    if (o->n_checkpoints < 0 || o->n_checkpoints > TF_EVAL_MAX_CHECKPOINTS)
        return tf_err(TF_EUSER, "--checkpoint: at most %d", TF_EVAL_MAX_CHECKPOINTS);
    if (o->n_checkpoints == 0 && !o->oracle_irm)
        return tf_err(TF_EUSER, "nothing to evaluate: give --checkpoint DIR and/or --oracle irm");
    if ((unsigned)o->split > TF_SPLIT_TEST) return tf_err(TF_EUSER, "--split: bad value");
    if (!(o->segment >= 0 && o->segment <= 3600))
        return tf_err(TF_EUSER, "--segment: %g is not in (0, 3600] seconds", o->segment);
    if (!(o->overlap >= 0 && o->overlap < 1))
        return tf_err(TF_EUSER, "--overlap: %g is not in [0, 1)", o->overlap);
    if (o->batch_size < 1 || o->batch_size > 1024)
        return tf_err(TF_EUSER, "--batch_size: %d is not in [1, 1024]", o->batch_size);
    if (o->num_threads < 0 || o->num_threads > 4096)
        return tf_err(TF_EUSER, "--num_threads: %d is not in [0, 4096]", o->num_threads);
    TF_TRY(tf_precision_check((int)o->precision, (int)o->backend));
    if (o->max_tracks < 0) return tf_err(TF_EUSER, "--tracks: %d is negative", o->max_tracks);
    if (!(o->figure_seconds > 0 && o->figure_seconds <= 600))
        return tf_err(TF_EUSER, "figure seconds: %g is not in (0, 600]", o->figure_seconds);
    if (o->n_sources < 0 || o->n_sources > TF_MAX_TARGETS)
        return tf_err(TF_EUSER, "--sources: 1 to %d names", TF_MAX_TARGETS);
    return TF_OK;
}

static tf_status setup(ev *E) {
    const tf_evaluate_opts *o = E->o;
    tf_evaluation *e = E->e;
    TF_TRY(check_opts(o));
    if (o->num_threads > 0) omp_set_num_threads(o->num_threads);
    e->split = o->split;
    /* data config: the dataset's stems */
    tf_config_defaults(&E->dc);
    if (snprintf(E->dc.root, sizeof E->dc.root, "%s", o->data_root) >= (int)sizeof E->dc.root)
        return tf_err(TF_EUSER, "--data_root: path too long");
    if (o->n_sources) {
        E->dc.n_sources = o->n_sources;
        memcpy(E->dc.sources, o->sources, sizeof E->dc.sources);
    }
    E->dc.num_threads = o->num_threads;
    tf_ckpt_info first;
    TF_TRY(load_models(E, &first));
    if (!E->n_models) { /* oracle only: every source is a target */
        e->n_targets = E->dc.n_sources;
        memcpy(e->targets, E->dc.sources, sizeof e->targets);
    }
    /* the STFT and segment: the first checkpoint's, else the data config's defaults */
    if (E->n_models) {
        E->dc.sample_rate = first.sample_rate;
        E->n_fft = first.model.n_fft, E->hop = first.model.hop;
    } else {
        E->n_fft = E->dc.stft_window_size, E->hop = E->dc.stft_hop_length;
    }
    double seg = o->segment > 0 ? o->segment
                 : E->n_models  ? first.segment_seconds
                                : E->dc.segment_seconds;
    E->L = (int64_t)llround(seg * E->dc.sample_rate);
    if (E->L < 1) return tf_err(TF_EUSER, "--segment: %g s is shorter than one sample", seg);
    /* every target must be a stem of the dataset: checked before scanning anything */
    E->S = E->dc.n_sources, E->T = e->n_targets;
    int used[TF_MAX_TARGETS] = {0};
    for (int t = 0; t < E->T; t++) {
        int s = 0;
        while (s < E->S && strcmp(E->dc.sources[s], e->targets[t])) s++;
        if (s == E->S) {
            const char *who = E->n_models ? o->checkpoints[E->owner[t]] : "";
            char stems[TF_MAX_TARGETS * (TF_NAME_MAX + 2)] = "";
            for (int q = 0; q < E->S; q++) strcat(strcat(stems, q ? ", " : ""), E->dc.sources[q]);
            return tf_err(TF_EUSER,
                          "--checkpoint %s: target '%s' is not a stem of the dataset %s (stems: "
                          "%s; see --sources)",
                          who, e->targets[t], o->data_root, stems);
        }
        E->perm[t] = s, used[s] = 1;
    }
    for (int s = 0, r = E->T; s < E->S; s++)
        if (!used[s]) E->perm[r++] = s;
    e->sample_rate = E->dc.sample_rate, e->n_fft = E->n_fft, e->hop = E->hop;
    e->segment = (double)E->L / E->dc.sample_rate, e->overlap = o->overlap;
    e->has[TF_EST_MODEL] = E->n_models > 0;
    e->has[TF_EST_MIXTURE] = 1;
    e->has[TF_EST_ORACLE] = o->oracle_irm != 0;
    /* the data */
    TF_TRY(tf_index_open(&E->ix, &E->dc, NULL));
    int n = tf_index_count(E->ix, o->split);
    if (n == 0)
        return tf_err(TF_EUSER, "--data_root %s: the %s split has no tracks", o->data_root,
                      tf_split_name(o->split));
    if (o->max_tracks > 0 && o->max_tracks < n) n = o->max_tracks;
    /* output folders (before any work) */
    const char *sp = tf_split_name(o->split);
    snprintf(E->path, sizeof E->path, "%s/figures", o->out_dir);
    TF_TRY(tf_mkdirs(E->path));
    for (int k = 0; k < TF_EST_COUNT; k++) {
        if (!e->has[k]) continue;
        if (k == TF_EST_MODEL)
            snprintf(E->path, sizeof E->path, "%s/%s", o->out_dir, sp);
        else
            snprintf(E->path, sizeof E->path, "%s/%s/%s", o->out_dir, EST_KEY[k], sp);
        TF_TRY(tf_mkdirs(E->path));
    }
    /* the separation parameters (checked now: e.g. a segment shorter than a model's STFT) */
    E->oc = (tf_ola_cfg){1, E->L, o->overlap, 1};
    tf_sep_params_default(&E->sp);
    E->sp.segment = seg, E->sp.overlap = o->overlap, E->sp.batch_size = o->batch_size;
    E->sp.threads = o->num_threads;
    if (E->n_models) TF_TRY(tf_sep_check_params(E->sep, &E->sp));
    E->bss = tf_bss_default_params(E->dc.sample_rate);
    e->tracks = tf_calloc((size_t)n, sizeof *e->tracks, "evaluation tracks");
    if (!e->tracks) return TF_EINTERNAL;
    e->n_tracks = n;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < TF_EST_COUNT; k++)
            for (int t = 0; t < TF_MAX_TARGETS; t++) {
                tf_eval_scores *s = &e->tracks[i].s[k][t];
                s->csdr = s->csir = s->csar = s->cisr = s->usdr = s->sisdr = NAN;
            }
    return TF_OK;
}

tf_status tf_evaluate(const tf_evaluate_opts *o, tf_evaluation *e) {
    memset(e, 0, sizeof *e);
    ev *E = tf_calloc(1, sizeof *E, "evaluation");
    if (!E) return TF_EINTERNAL;
    E->o = o, E->e = e;
    tf_status st = setup(E);
    if (!st && o->start) o->start(o->user, e);
    for (int i = 0; i < e->n_tracks && !st; i++) {
        st = one_track(E, tf_index_track_of(E->ix, o->split, i), &e->tracks[i]);
        if (!st && o->progress && o->progress(o->user, i, e->n_tracks, e, &e->tracks[i]))
            st = tf_err(TF_EUSER, "evaluation stopped after %d tracks", i + 1);
    }
    if (!st) st = aggregate(e);
    if (!st) st = figures_bars(E);
    if (!st) st = tf_evaluation_write_summary(e, o->out_dir, o);
    tf_separator_free(E->sep);
    tf_index_close(E->ix);
    free(E);
    return st;
}

/* ---- summary files ---- */

static cJSON *scores_json(const tf_eval_scores *s) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    /* cJSON writes NaN as null */
    cJSON_AddNumberToObject(j, "csdr", s->csdr);
    cJSON_AddNumberToObject(j, "usdr", s->usdr);
    cJSON_AddNumberToObject(j, "sisdr", s->sisdr);
    cJSON_AddNumberToObject(j, "csir", s->csir);
    cJSON_AddNumberToObject(j, "csar", s->csar);
    cJSON_AddNumberToObject(j, "cisr", s->cisr);
    return j;
}

static cJSON *estimators_json(cJSON *parent, const tf_evaluation *e,
                              const tf_eval_scores (*s)[TF_MAX_TARGETS]) {
    for (int k = 0; k < TF_EST_COUNT; k++) {
        if (!e->has[k]) continue;
        cJSON *o = cJSON_AddObjectToObject(parent, EST_KEY[k]);
        for (int t = 0; o && t < e->n_targets; t++)
            cJSON_AddItemToObject(o, e->targets[t], scores_json(&s[k][t]));
    }
    return parent;
}

static tf_status write_json(const tf_evaluation *e, const char *out_dir,
                            const tf_evaluate_opts *o) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return tf_err(TF_EINTERNAL, "out of memory (summary.json)");
    estimators_json(j, e, e->agg);
    cJSON_AddStringToObject(j, "split", tf_split_name(e->split));
    cJSON_AddStringToObject(j, "data_root", o && o->data_root ? o->data_root : "");
    cJSON *ck = cJSON_AddArrayToObject(j, "checkpoints");
    for (int k = 0; o && ck && k < o->n_checkpoints; k++)
        cJSON_AddItemToArray(ck, cJSON_CreateString(o->checkpoints[k]));
    cJSON *tg = cJSON_AddArrayToObject(j, "targets");
    for (int t = 0; tg && t < e->n_targets; t++)
        cJSON_AddItemToArray(tg, cJSON_CreateString(e->targets[t]));
    cJSON_AddNumberToObject(j, "n_tracks", e->n_tracks);
    cJSON *set = cJSON_AddObjectToObject(j, "settings");
    if (set) {
        cJSON_AddNumberToObject(set, "sample_rate", e->sample_rate);
        cJSON_AddNumberToObject(set, "n_fft", e->n_fft);
        cJSON_AddNumberToObject(set, "hop_length", e->hop);
        cJSON_AddNumberToObject(set, "segment_seconds", e->segment);
        cJSON_AddNumberToObject(set, "overlap", e->overlap);
        if (o) cJSON_AddStringToObject(set, "precision", tf_precision_name(o->precision));
        if (e->compute[0]) cJSON_AddStringToObject(set, "compute", e->compute);
        cJSON_AddStringToObject(set, "bsseval",
                                "v4 images, 512-tap filters, 1 s frames (museval 0.4.1)");
        cJSON_AddStringToObject(set, "aggregation",
                                "csdr/csir/csar/cisr: median over tracks of the per-track median "
                                "over frames; usdr/sisdr: mean over tracks");
    }
    cJSON *tr = cJSON_AddArrayToObject(j, "tracks");
    for (int i = 0; tr && i < e->n_tracks; i++) {
        const tf_eval_track_scores *t = &e->tracks[i];
        cJSON *x = cJSON_CreateObject();
        if (!x) break;
        cJSON_AddItemToArray(tr, x);
        cJSON_AddStringToObject(x, "name", t->name ? t->name : "");
        cJSON_AddNumberToObject(x, "seconds", (double)t->frames / e->sample_rate);
        cJSON_AddNumberToObject(x, "wall_seconds", t->seconds);
        estimators_json(x, e, t->s);
    }
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    if (!s) return tf_err(TF_EINTERNAL, "out of memory (summary.json)");
    char path[TF_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/summary.json", out_dir);
    size_t n = strlen(s);
    s[n] = '\n';
    tf_status st = tf_write_file_atomic(path, s, n + 1);
    free(s);
    return st;
}

static void md_num(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, " %.2f |", v);
    else
        fprintf(f, " n/a |");
}

static tf_status write_md(const tf_evaluation *e, const char *out_dir, const tf_evaluate_opts *o) {
    char path[TF_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/summary.md", out_dir);
    tf_atomic_file af;
    TF_TRY(tf_atomic_open(&af, path));
    FILE *f = af.f;
    fprintf(f, "# Evaluation: %s split of %s (%d track%s)\n\n", tf_split_name(e->split),
            o && o->data_root ? o->data_root : "?", e->n_tracks, e->n_tracks == 1 ? "" : "s");
    if (o && o->n_checkpoints) {
        fprintf(f, "Checkpoints:");
        for (int k = 0; k < o->n_checkpoints; k++) fprintf(f, " `%s`", o->checkpoints[k]);
        fprintf(f, "\n\n");
    }
    fprintf(f,
            "Separation: %.2f s chunks, overlap %.2f, STFT %d / %d at %d Hz. cSDR, cSIR, "
            "cSAR: BSS Eval v4 (museval), median over 1 s frames per track, then median over "
            "tracks; uSDR and SI-SDR: whole track, mean over tracks. All in dB. `mixture`: the "
            "mixture as the estimate; `oracle IRM`: ideal ratio mask |S_s| / sum_j |S_j| on "
            "the mixture STFT.\n\n",
            e->segment, e->overlap, e->n_fft, e->hop, e->sample_rate);
    static const tf_est order[] = {TF_EST_MIXTURE, TF_EST_MODEL, TF_EST_ORACLE};
    for (int t = 0; t < e->n_targets; t++) {
        fprintf(f, "## %s\n\n| estimate | cSDR | uSDR | SI-SDR | cSIR | cSAR |\n", e->targets[t]);
        fprintf(f, "|---|---:|---:|---:|---:|---:|\n");
        for (int q = 0; q < 3; q++) {
            tf_est k = order[q];
            if (!e->has[k]) continue;
            const tf_eval_scores *s = &e->agg[k][t];
            fprintf(f, "| %s |", EST_LABEL[k]);
            md_num(f, s->csdr), md_num(f, s->usdr), md_num(f, s->sisdr);
            md_num(f, s->csir), md_num(f, s->csar);
            fputc('\n', f);
        }
        fprintf(f, "\n![%s spectrograms](figures/spec_%s.png)\n\n", e->targets[t], e->targets[t]);
        fprintf(f, "![%s cSDR per track](figures/csdr_%s.png)\n\n", e->targets[t], e->targets[t]);
    }
    fprintf(f, "## Tracks\n\n| # | track |");
    for (int t = 0; t < e->n_targets; t++) fprintf(f, " %s cSDR |", e->targets[t]);
    fprintf(f, "\n|---|---|");
    for (int t = 0; t < e->n_targets; t++) fprintf(f, "---:|");
    fputc('\n', f);
    tf_est main_est = e->has[TF_EST_MODEL] ? TF_EST_MODEL : TF_EST_ORACLE;
    for (int i = 0; i < e->n_tracks; i++) {
        fprintf(f, "| %d | %s |", i + 1, e->tracks[i].name ? e->tracks[i].name : "");
        for (int t = 0; t < e->n_targets; t++) md_num(f, e->tracks[i].s[main_est][t].csdr);
        fputc('\n', f);
    }
    fprintf(f, "\n(per-track cSDR of the %s)\n", EST_LABEL[main_est]);
    if (ferror(f)) {
        tf_atomic_abort(&af);
        return tf_err(TF_EUSER, "%s: write failed", path);
    }
    return tf_atomic_commit(&af);
}

tf_status tf_evaluation_write_summary(const tf_evaluation *e, const char *out_dir,
                                      const tf_evaluate_opts *o) {
    TF_TRY(write_json(e, out_dir, o));
    return write_md(e, out_dir, o);
}

void tf_evaluation_print_table(FILE *f, const tf_evaluation *e) {
    static const tf_est order[] = {TF_EST_MIXTURE, TF_EST_MODEL, TF_EST_ORACLE};
    static const char *row[] = {"mixture baseline", "model", "IRM oracle"};
    fprintf(f, "%-18s", "");
    for (int t = 0; t < e->n_targets; t++) fprintf(f, " | %-15.15s", e->targets[t]);
    fprintf(f, "\n%-18s", "(dB)");
    for (int t = 0; t < e->n_targets; t++) fprintf(f, " | %7s %7s", "uSDR", "cSDR");
    fputc('\n', f);
    for (int q = 0; q < 3; q++) {
        if (!e->has[order[q]]) continue;
        fprintf(f, "%-18s", row[q]);
        for (int t = 0; t < e->n_targets; t++) {
            const tf_eval_scores *s = &e->agg[order[q]][t];
            fprintf(f, " | %7.2f %7.2f", s->usdr, s->csdr);
        }
        fputc('\n', f);
    }
}
