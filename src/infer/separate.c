#include "infer/separate.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/resampler.h"
#include "dsp/ola.h"
#include "util/sysmem.h"
#include "util/fsutil.h"
#include "util/rng.h"
#include "util/clock.h"

#define SHIFT_MAX_SECONDS 0.5 /* demucs apply.py: max_shift = 0.5 * samplerate */
#define DEFAULT_BLOCK     16384

struct tf_separator {
    tf_sep_model *models;
    int n_models;
    int threads;
    int S;                         /* targets over all models */
    int model_of[TF_MAX_TARGETS];  /* target -> model */
    int first[TF_MAX_TARGETS + 1]; /* model -> first target slot */
    char targets[TF_MAX_TARGETS][TF_NAME_MAX];
    int rate;
    int cancelled;
    /* per run: batch output of one model when there are several */
    float *scratch;
    size_t scratch_n;
};

/* ---------------------------------------------------------------- separator */

tf_status tf_separator_create(tf_separator **out, tf_sep_model *models, int n_models, int threads) {
    *out = NULL;
    tf_status st = TF_OK;
    tf_separator *s = tf_calloc(1, sizeof *s, "separator");
    if (!s) st = TF_EINTERNAL;
    if (!st && n_models < 1) st = tf_err(TF_EUSER, "separate: no model given");
    if (!st) {
        s->models = tf_calloc((size_t)n_models, sizeof *s->models, "separator models");
        if (!s->models) st = TF_EINTERNAL;
    }
    if (st) {
        for (int i = 0; i < n_models; i++)
            if (models[i].close) models[i].close(models[i].ctx);
        free(s);
        return st;
    }
    memcpy(s->models, models, sizeof *models * (size_t)n_models);
    s->n_models = n_models;
    s->threads = threads;
    s->rate = models[0].sample_rate;
    for (int i = 0; i < n_models && !st; i++) {
        const tf_sep_model *m = &models[i];
        s->first[i] = s->S;
        if (m->n_targets < 1 || m->sample_rate < 1) {
            st = tf_err(TF_EUSER, "%s: model has no targets or no sample rate", m->name);
            break;
        }
        if (m->sample_rate != s->rate) {
            st = tf_err(TF_EUSER, "%s: sample rate %d Hz differs from %s (%d Hz)", m->name,
                        m->sample_rate, models[0].name, s->rate);
            break;
        }
        for (int t = 0; t < m->n_targets; t++) {
            for (int u = 0; u < s->S; u++)
                if (!strcmp(s->targets[u], m->targets[t])) {
                    st = tf_err(TF_EUSER, "target '%s' is provided by both %s and %s",
                                m->targets[t], models[s->model_of[u]].name, m->name);
                    break;
                }
            if (st) break;
            if (s->S >= TF_MAX_TARGETS) {
                st = tf_err(TF_EUSER, "%s: more than %d targets over all models", m->name,
                            TF_MAX_TARGETS);
                break;
            }
            snprintf(s->targets[s->S], TF_NAME_MAX, "%s", m->targets[t]);
            s->model_of[s->S++] = i;
        }
    }
    s->first[n_models] = s->S;
    if (st) {
        tf_separator_free(s);
        return st;
    }
    *out = s;
    return TF_OK;
}

void tf_separator_free(tf_separator *s) {
    if (!s) return;
    for (int i = 0; i < s->n_models; i++)
        if (s->models[i].close) s->models[i].close(s->models[i].ctx);
    free(s->models);
    free(s->scratch);
    free(s);
}

int tf_separator_n_targets(const tf_separator *s) {
    return s->S;
}
const char *tf_separator_target(const tf_separator *s, int i) {
    return i >= 0 && i < s->S ? s->targets[i] : NULL;
}
int tf_separator_index(const tf_separator *s, const char *t) {
    for (int i = 0; i < s->S; i++)
        if (!strcmp(s->targets[i], t)) return i;
    return -1;
}
int tf_separator_rate(const tf_separator *s) {
    return s->rate;
}
double tf_separator_segment(const tf_separator *s) {
    return s->models[0].segment_seconds;
}
int64_t tf_separator_min_frames(const tf_separator *s) {
    int64_t m = 16;
    for (int i = 0; i < s->n_models; i++)
        if (s->models[i].min_frames > m) m = s->models[i].min_frames;
    return m;
}
int tf_sep_was_cancelled(const tf_separator *s) {
    return s->cancelled;
}

void tf_sep_params_default(tf_sep_params *p) {
    memset(p, 0, sizeof *p);
    p->segment = 0;
    p->overlap = 0.25;
    p->batch_size = 1;
    p->shifts = 0;
    p->seed = 42;
    p->fmt = TF_FMT_WAV;
    p->sub = TF_SUBTYPE_FLOAT;
    p->filename = TF_SEP_FILENAME_DEFAULT;
}

/* ---------------------------------------------------------------- outputs */

static uint32_t stem_mask(const tf_separator *s, const tf_sep_params *p) {
    uint32_t all = s->S >= 32 ? 0xffffffffu : ((1u << s->S) - 1u);
    return p->stems ? p->stems & all : all;
}

int tf_sep_n_outputs(const tf_separator *s, const tf_sep_params *p) {
    uint32_t m = stem_mask(s, p);
    int n = 0;
    for (int i = 0; i < s->S; i++) n += (m >> i) & 1u;
    return n + (p->instrumental ? 1 : 0);
}

/* target index of output i, -1 for instrumental, -2 out of range */
static int output_target(const tf_separator *s, const tf_sep_params *p, int i) {
    uint32_t m = stem_mask(s, p);
    for (int t = 0; t < s->S; t++)
        if ((m >> t) & 1u) {
            if (i == 0) return t;
            i--;
        }
    return (i == 0 && p->instrumental) ? -1 : -2;
}

const char *tf_sep_output_name(const tf_separator *s, const tf_sep_params *p, int i) {
    int t = output_target(s, p, i);
    return t >= 0 ? s->targets[t] : t == -1 ? "instrumental" : NULL;
}

tf_status tf_sep_check_params(const tf_separator *s, const tf_sep_params *p) {
    uint32_t all = s->S >= 32 ? 0xffffffffu : ((1u << s->S) - 1u);
    if (p->stems & ~all)
        return tf_err(TF_EUSER,
                      "stems: bit mask 0x%x names targets beyond the %d the models "
                      "provide",
                      (unsigned)p->stems, s->S);
    if (p->instrumental && tf_separator_index(s, "vocals") < 0)
        return tf_err(TF_EUSER, "instrumental needs a 'vocals' target (the models provide none)");
    if (!(p->overlap >= 0 && p->overlap < 1))
        return tf_err(TF_EUSER, "overlap %g is not in [0, 1)", p->overlap);
    if (p->batch_size < 1 || p->batch_size > 1024)
        return tf_err(TF_EUSER, "batch_size %d is not in [1, 1024]", p->batch_size);
    if (p->shifts < 0 || p->shifts > 100)
        return tf_err(TF_EUSER, "shifts %d is not in [0, 100]", p->shifts);
    double seg = p->segment > 0 ? p->segment : tf_separator_segment(s);
    if (!(seg > 0) || seg > 3600 || !isfinite(p->segment) || p->segment < 0)
        return tf_err(TF_EUSER, "segment %g s is not in (0, 3600]", p->segment);
    if (llround(seg * s->rate) < 16)
        return tf_err(TF_EUSER, "segment %g s is shorter than 16 samples", seg);
    for (int i = 0; i < s->n_models; i++)
        if (llround(seg * s->rate) < s->models[i].min_frames)
            return tf_err(TF_EUSER,
                          "segment %g s is shorter than the STFT window of %s (%lld "
                          "samples at %d Hz)",
                          seg, s->models[i].name, (long long)s->models[i].min_frames, s->rate);
    if (p->fmt != TF_FMT_WAV && p->fmt != TF_FMT_FLAC)
        return tf_err(TF_EUSER, "unknown output format %d", (int)p->fmt);
    if (p->sub != TF_SUBTYPE_PCM16 && p->sub != TF_SUBTYPE_PCM24 && p->sub != TF_SUBTYPE_FLOAT)
        return tf_err(TF_EUSER, "unknown output subtype %d", (int)p->sub);
    if (p->fmt == TF_FMT_FLAC && p->sub == TF_SUBTYPE_FLOAT)
        return tf_err(TF_EUSER, "ext flac cannot hold FLOAT samples (use subtype PCM_16 or "
                                "PCM_24)");
    if (p->threads < 0) return tf_err(TF_EUSER, "n_threads %d is negative", p->threads);
    if (p->block < 0) return tf_err(TF_EUSER, "block %lld is negative", (long long)p->block);
    if (tf_sep_n_outputs(s, p) < 1) return tf_err(TF_EUSER, "no stems selected");
    const char *tpl = p->filename ? p->filename : TF_SEP_FILENAME_DEFAULT;
    if (!*tpl) return tf_err(TF_EUSER, "filename template is empty");
    if (tf_sep_n_outputs(s, p) > 1 && !strstr(tpl, "{stem}"))
        return tf_err(TF_EUSER,
                      "filename template '%s' has no {stem}: every stem would go to "
                      "one file",
                      tpl);
    return TF_OK;
}

/* basename of path without its extension, and the extension (without the dot) */
static void track_names(const char *in, char *track, size_t nt, char *ext, size_t ne) {
    const char *b = strrchr(in, '/');
    b = b ? b + 1 : in;
    const char *dot = strrchr(b, '.');
    if (!dot || dot == b) dot = b + strlen(b);
    snprintf(track, nt, "%.*s", (int)(dot - b), b);
    snprintf(ext, ne, "%s", *dot ? dot + 1 : "");
}

tf_status tf_sep_output_path(const tf_separator *s, const tf_sep_params *p, const char *in,
                             const char *out_dir, int i, char *buf, size_t n) {
    const char *stem = tf_sep_output_name(s, p, i);
    if (!stem) return tf_err(TF_EINTERNAL, "output %d out of range", i);
    const char *tpl = p->filename ? p->filename : TF_SEP_FILENAME_DEFAULT;
    char track[1024], text[256];
    track_names(in, track, sizeof track, text, sizeof text);
    const char *ext = p->fmt == TF_FMT_FLAC ? "flac" : "wav";
    size_t k = 0;
    int w = snprintf(buf, n, "%s/", out_dir && *out_dir ? out_dir : ".");
    if (w < 0 || (size_t)w >= n) return tf_err(TF_EUSER, "output path too long: %s", out_dir);
    k = (size_t)w;
    for (const char *c = tpl; *c;) {
        const char *val = NULL;
        size_t adv = 1;
        if (*c == '{') {
            const char *e = strchr(c, '}');
            size_t len = e ? (size_t)(e - c - 1) : 0;
            if (e && len == 5 && !strncmp(c + 1, "track", 5))
                val = track;
            else if (e && len == 8 && !strncmp(c + 1, "trackext", 8))
                val = text;
            else if (e && len == 4 && !strncmp(c + 1, "stem", 4))
                val = stem;
            else if (e && len == 3 && !strncmp(c + 1, "ext", 3))
                val = ext;
            else
                return tf_err(TF_EUSER,
                              "filename template '%s': unknown field at '%s' (use "
                              "{track} {trackext} {stem} {ext})",
                              tpl, c);
            adv = len + 2;
        }
        if (val) {
            size_t l = strlen(val);
            if (k + l >= n) return tf_err(TF_EUSER, "output path too long for '%s'", in);
            memcpy(buf + k, val, l);
            k += l;
        } else {
            if (k + 1 >= n) return tf_err(TF_EUSER, "output path too long for '%s'", in);
            buf[k++] = *c;
        }
        c += adv;
    }
    buf[k] = 0;
    if (buf[k - 1] == '/') return tf_err(TF_EUSER, "filename template '%s' names a folder", tpl);
    return TF_OK;
}

static int same_file(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    if (!realpath(a, ra) || !realpath(b, rb)) return 0;
    return !strcmp(ra, rb);
}

tf_status tf_sep_check_outputs(const tf_separator *s, const tf_sep_params *p, const char *in,
                               const char *out_dir, int *exists) {
    if (exists) *exists = 0;
    TF_TRY(tf_sep_check_params(s, p));
    int n = tf_sep_n_outputs(s, p);
    char path[TF_PATH_MAX * 2], other[TF_PATH_MAX * 2];
    for (int i = 0; i < n; i++) {
        TF_TRY(tf_sep_output_path(s, p, in, out_dir, i, path, sizeof path));
        for (int j = 0; j < i; j++) {
            TF_TRY(tf_sep_output_path(s, p, in, out_dir, j, other, sizeof other));
            if (!strcmp(path, other))
                return tf_err(TF_EUSER, "filename template '%s' gives '%s' for two stems",
                              p->filename ? p->filename : TF_SEP_FILENAME_DEFAULT, path);
        }
        if (!tf_path_exists(path)) continue;
        if (same_file(path, in))
            return tf_err(TF_EUSER, "%s: output would overwrite the input", path);
        if (tf_is_dir(path)) return tf_err(TF_EUSER, "%s: output exists and is a folder", path);
        if (!p->overwrite) {
            if (exists) *exists = 1;
            return tf_err(TF_EUSER, "%s: output exists (overwrite is off)", path);
        }
    }
    return TF_OK;
}

/* ---------------------------------------------------------------- the pipeline */

typedef struct run run;

typedef struct {
    run *r;
    tf_ola *ola;
    int64_t delay;   /* output frames to drop (realignment) */
    int64_t dropped; /* dropped so far */
    float *fifo;     /* (n_need, 2, fcap) realigned output not yet combined */
    int64_t fill;
} engine;

/* where the mixture comes from, and where outputs go */
typedef struct {
    /* read up to n frames at the input position into (2, n) planar with row stride
     * `stride`; *got < n only at the end of the input */
    tf_status (*read)(void *ctx, float *out, int64_t n, int64_t stride, int64_t *got);
    /* the mixture again at an output position (instrumental); zero past the end */
    tf_status (*mix)(void *ctx, int64_t off, float *out, int64_t n, int64_t stride);
    /* output j: (channels, n) planar with row stride `stride` */
    tf_status (*write)(void *ctx, int j, const float *data, int64_t n, int64_t stride);
    void *ctx;
} endpoints;

struct run {
    tf_separator *s;
    const tf_sep_params *p;
    endpoints io;
    int in_rate, channels;
    int64_t expect; /* frames expected (progress); the real count may be lower */
    int64_t blk, chunk, fcap;
    int S, K, n_need, n_out;
    int need[TF_MAX_TARGETS];        /* needed slot -> target */
    int out_src[TF_MAX_TARGETS + 1]; /* output -> needed slot, -1 = instrumental */
    int vocals;                      /* needed slot of vocals, -1 if none */
    engine *eng;
    tf_resampler *rin, *rout;
    float *inbuf;                      /* (2, blk) */
    float *comb;                       /* (n_need, 2, fcap) */
    float *obuf;                       /* (2, fcap) instrumental / mono scratch */
    float *mixbuf;                     /* (2, fcap) mixture for instrumental */
    float *zeros;                      /* (n_need, 2, blk) zero padding at the end */
    int64_t n_in, n_out_frames, total; /* total < 0 until the input ends */
    size_t bytes;
};

static tf_status combined_forward(void *ctx, const float *mix, int nb, int64_t L, float *out) {
    tf_separator *s = ctx;
    if (s->n_models == 1) return s->models[0].forward(s->models[0].ctx, mix, nb, L, out);
    for (int i = 0; i < s->n_models; i++) {
        tf_sep_model *m = &s->models[i];
        const int Si = m->n_targets, f = s->first[i];
        TF_TRY(m->forward(m->ctx, mix, nb, L, s->scratch));
        for (int b = 0; b < nb; b++)
            memcpy(out + (((size_t)b * s->S + f) * 2) * L, s->scratch + (size_t)b * Si * 2 * L,
                   sizeof(float) * (size_t)Si * 2 * L);
    }
    return TF_OK;
}

static tf_status report(run *r) {
    const tf_sep_params *p = r->p;
    if (!p->progress) return TF_OK;
    double f = r->expect > 0 ? (double)r->n_out_frames / (double)r->expect : 1.0;
    if (f > 1) f = 1;
    if (p->progress(f, p->user_data)) {
        r->s->cancelled = 1;
        return tf_err(TF_EUSER, TF_SEP_CANCELLED_MSG);
    }
    return TF_OK;
}

/* Final stems at the input rate: (n_need, 2, n) with row stride `stride`. */
static tf_status out_stage(void *ctx, const float *data, int64_t n, int64_t stride) {
    run *r = ctx;
    if (r->total >= 0 && n > r->total - r->n_out_frames) n = r->total - r->n_out_frames;
    if (n <= 0) return TF_OK;
    const int ch = r->channels;
    for (int64_t done = 0; done < n;) {
        int64_t m = n - done < r->fcap ? n - done : r->fcap;
        int have_mix = 0;
        for (int j = 0; j < r->n_out; j++) {
            int slot = r->out_src[j];
            const float *src;
            int64_t sst;
            if (slot >= 0) {
                src = data + (size_t)slot * 2 * stride + done, sst = stride;
            } else {
                if (!have_mix) {
                    TF_TRY(r->io.mix(r->io.ctx, r->n_out_frames, r->mixbuf, m, r->fcap));
                    have_mix = 1;
                }
                const float *v = data + (size_t)r->vocals * 2 * stride + done;
                for (int c = 0; c < 2; c++)
                    for (int64_t i = 0; i < m; i++)
                        r->obuf[c * r->fcap + i] =
                            r->mixbuf[c * r->fcap + i] - v[(size_t)c * stride + i];
                src = r->obuf, sst = r->fcap;
            }
            if (ch == 1) {
                float *o = r->obuf; /* in place is fine for the instrumental */
                for (int64_t i = 0; i < m; i++) o[i] = 0.5f * (src[i] + src[sst + i]);
                src = o, sst = r->fcap;
            }
            TF_TRY(r->io.write(r->io.ctx, j, src, m, sst));
        }
        r->n_out_frames += m;
        done += m;
    }
    return report(r);
}

/* Combined stems at the model rate -> back to the input rate. */
static tf_status to_output(run *r, const float *data, int64_t n, int64_t stride) {
    if (!r->rout) return out_stage(r, data, n, stride);
    for (int64_t done = 0; done < n;) {
        int64_t m = n - done < r->blk ? n - done : r->blk;
        TF_TRY(tf_resampler_push(r->rout, data + done, m, stride, out_stage, r));
        done += m;
    }
    return TF_OK;
}

/* Average what every engine has realigned so far and pass it on. */
static tf_status combine(run *r) {
    int64_t m = INT64_MAX;
    for (int k = 0; k < r->K; k++)
        if (r->eng[k].fill < m) m = r->eng[k].fill;
    if (m <= 0) return TF_OK;
    const size_t rows = (size_t)r->n_need * 2;
    const float *src = r->eng[0].fifo;
    if (r->K > 1) {
        const float inv = 1.0f / (float)r->K;
        for (size_t row = 0; row < rows; row++) {
            float *o = r->comb + row * r->fcap;
            for (int64_t i = 0; i < m; i++) {
                float acc = 0;
                for (int k = 0; k < r->K; k++) acc += r->eng[k].fifo[row * r->fcap + i];
                o[i] = acc * inv;
            }
        }
        src = r->comb;
    }
    TF_TRY(to_output(r, src, m, r->fcap));
    for (int k = 0; k < r->K; k++) {
        engine *e = &r->eng[k];
        for (size_t row = 0; row < rows; row++) {
            float *f = e->fifo + row * r->fcap;
            memmove(f, f + m, sizeof(float) * (size_t)(e->fill - m));
        }
        e->fill -= m;
    }
    return TF_OK;
}

/* OLA sink of one engine: stems (S, 2, n) -> drop the delay -> FIFO of the needed stems. */
static tf_status engine_sink(void *ctx, const float *stems, int64_t n, int64_t stride) {
    engine *e = ctx;
    run *r = e->r;
    int64_t skip = e->delay - e->dropped;
    if (skip > n) skip = n;
    e->dropped += skip;
    n -= skip;
    if (n <= 0) return TF_OK;
    if (e->fill + n > r->fcap)
        return tf_err(TF_EINTERNAL, "separate: shift buffer overflow (%lld + %lld > %lld)",
                      (long long)e->fill, (long long)n, (long long)r->fcap);
    for (int j = 0; j < r->n_need; j++)
        for (int c = 0; c < 2; c++)
            memcpy(e->fifo + ((size_t)j * 2 + c) * r->fcap + e->fill,
                   stems + ((size_t)r->need[j] * 2 + c) * stride + skip, sizeof(float) * (size_t)n);
    e->fill += n;
    return TF_OK;
}

/* Model-rate input -> every engine, in pieces of at most blk frames (bounds the FIFOs). */
static tf_status to_engines(void *ctx, const float *data, int64_t n, int64_t stride) {
    run *r = ctx;
    for (int64_t done = 0; done < n;) {
        int64_t m = n - done < r->blk ? n - done : r->blk;
        for (int k = 0; k < r->K; k++) TF_TRY(tf_ola_push(r->eng[k].ola, data + done, m, stride));
        TF_TRY(combine(r));
        done += m;
    }
    return TF_OK;
}

static void run_free(run *r) {
    if (r->eng)
        for (int k = 0; k < r->K; k++) {
            tf_ola_close(r->eng[k].ola);
            free(r->eng[k].fifo);
        }
    free(r->eng);
    tf_resampler_close(r->rin);
    tf_resampler_close(r->rout);
    free(r->inbuf), free(r->comb), free(r->obuf), free(r->mixbuf), free(r->zeros);
}

static tf_status run_setup(run *r) {
    tf_separator *s = r->s;
    const tf_sep_params *p = r->p;
    const int rate = s->rate;
    r->S = s->S;
    r->K = p->shifts > 0 ? p->shifts : 1;
    r->blk = p->block > 0 ? p->block : DEFAULT_BLOCK;
    r->total = -1;
    double seg = p->segment > 0 ? p->segment : tf_separator_segment(s);
    r->chunk = (int64_t)llround(seg * rate);
    /* needed stems: the selected ones, plus vocals for the instrumental */
    r->n_out = tf_sep_n_outputs(s, p);
    r->vocals = -1;
    int slot_of[TF_MAX_TARGETS];
    for (int t = 0; t < s->S; t++) slot_of[t] = -1;
    for (int j = 0; j < r->n_out; j++) {
        int t = output_target(s, p, j);
        if (t < 0) t = tf_separator_index(s, "vocals");
        if (slot_of[t] < 0) slot_of[t] = r->n_need, r->need[r->n_need++] = t;
        r->out_src[j] = output_target(s, p, j) >= 0 ? slot_of[t] : -1;
        if (output_target(s, p, j) < 0) r->vocals = slot_of[t];
    }
    /* the model for (batch, chunk) */
    for (int i = 0; i < s->n_models; i++) {
        tf_sep_model *m = &s->models[i];
        tf_status st = m->prepare ? m->prepare(m->ctx, p->batch_size, r->chunk,
                                               p->threads ? p->threads : s->threads)
                                  : TF_OK;
        if (st) return tf_err_ctx(st, "%s", m->name);
    }
    if (s->n_models > 1) {
        int maxS = 0;
        for (int i = 0; i < s->n_models; i++)
            if (s->models[i].n_targets > maxS) maxS = s->models[i].n_targets;
        size_t need = (size_t)p->batch_size * (size_t)maxS * 2 * (size_t)r->chunk;
        if (need > s->scratch_n) {
            free(s->scratch);
            s->scratch_n = 0;
            s->scratch = tf_malloc(sizeof(float) * need, "separate: model output");
            if (!s->scratch) return TF_EINTERNAL;
            s->scratch_n = need;
        }
        r->bytes += sizeof(float) * s->scratch_n;
    }
    /* engines */
    tf_ola_cfg oc = {
        .n_stems = s->S, .chunk = r->chunk, .overlap = p->overlap, .batch = p->batch_size};
    r->fcap = tf_ola_window_frames(&oc) + r->blk;
    r->eng = tf_calloc((size_t)r->K, sizeof *r->eng, "separate: engines");
    if (!r->eng) return TF_EINTERNAL;
    const int64_t max_shift = (int64_t)(SHIFT_MAX_SECONDS * rate);
    const size_t fifo_n = (size_t)r->n_need * 2 * (size_t)r->fcap;
    for (int k = 0; k < r->K; k++) {
        engine *e = &r->eng[k];
        e->r = r;
        if (p->shifts > 0 && max_shift > 0) {
            tf_rng g;
            tf_rng_seed(&g, p->seed, 0x5348494654ull /* "SHIFT" */, (uint64_t)k, 0);
            e->delay = (int64_t)tf_rng_below(&g, (uint64_t)max_shift);
        }
        TF_TRY(tf_ola_open(&e->ola, &oc, combined_forward, s, engine_sink, e));
        e->fifo = tf_malloc(sizeof(float) * fifo_n, "separate: shift buffer");
        if (!e->fifo) return TF_EINTERNAL;
        r->bytes += tf_ola_bytes(e->ola) + sizeof(float) * fifo_n;
    }
    /* buffers */
    r->inbuf = tf_malloc(sizeof(float) * 2 * (size_t)r->blk, "separate: input block");
    r->comb = tf_malloc(sizeof(float) * fifo_n, "separate: combined stems");
    r->obuf = tf_malloc(sizeof(float) * 2 * (size_t)r->fcap, "separate: output block");
    r->mixbuf = tf_malloc(sizeof(float) * 2 * (size_t)r->fcap, "separate: mixture block");
    r->zeros = tf_calloc((size_t)r->n_need * 2 * (size_t)r->blk, sizeof(float), "separate");
    if (!r->inbuf || !r->comb || !r->obuf || !r->mixbuf || !r->zeros) return TF_EINTERNAL;
    r->bytes += sizeof(float) *
                ((size_t)(2 + 2 * r->n_need) * (size_t)r->blk + fifo_n + 4 * (size_t)r->fcap);
    if (r->in_rate != rate) {
        TF_TRY(tf_resampler_open(&r->rin, r->in_rate, rate, 2, r->blk));
        TF_TRY(tf_resampler_open(&r->rout, rate, r->in_rate, 2 * r->n_need, r->blk));
        r->bytes += tf_resampler_bytes(r->rin) + tf_resampler_bytes(r->rout);
    }
    return TF_OK;
}

/* The shift delays: zeros into each engine, before any input. */
static tf_status run_begin(run *r) {
    for (int k = 0; k < r->K; k++) {
        engine *e = &r->eng[k];
        for (int64_t left = e->delay; left > 0;) {
            int64_t m = left < r->blk ? left : r->blk;
            TF_TRY(tf_ola_push(e->ola, r->zeros, m, r->blk));
            left -= m;
        }
    }
    return report(r);
}

/* got <= blk input frames (2, got) with row stride `stride`, at the input rate. */
static tf_status run_feed(run *r, const float *in, int64_t got, int64_t stride) {
    if (got <= 0) return TF_OK;
    r->n_in += got;
    if (r->rin) return tf_resampler_push(r->rin, in, got, stride, to_engines, r);
    return to_engines(r, in, got, stride);
}

/* End of input: everything still held comes out, exactly n_in frames in all. */
static tf_status run_end(run *r) {
    r->total = r->n_in;
    if (r->rin) TF_TRY(tf_resampler_flush(r->rin, to_engines, r));
    for (int k = 0; k < r->K; k++) TF_TRY(tf_ola_finish(r->eng[k].ola));
    TF_TRY(combine(r));
    if (r->rout) TF_TRY(tf_resampler_flush(r->rout, out_stage, r));
    /* resampling may end a few frames short: pad with silence to the input's length */
    while (r->n_out_frames < r->total) {
        int64_t m = r->total - r->n_out_frames;
        if (m > r->blk) m = r->blk;
        TF_TRY(out_stage(r, r->zeros, m, r->blk));
    }
    return TF_OK;
}

static tf_status run_stream(run *r) {
    TF_TRY(run_begin(r));
    for (;;) {
        int64_t got = 0;
        TF_TRY(r->io.read(r->io.ctx, r->inbuf, r->blk, r->blk, &got));
        TF_TRY(run_feed(r, r->inbuf, got, r->blk));
        if (got < r->blk) break;
    }
    return run_end(r);
}

static tf_status run_all(tf_separator *s, const tf_sep_params *p, endpoints io, int in_rate,
                         int channels, int64_t expect, tf_sep_summary *sum) {
    double t0 = tf_now_s(), c0 = tf_cpu_s();
    run r;
    memset(&r, 0, sizeof r);
    r.s = s, r.p = p, r.io = io, r.in_rate = in_rate, r.channels = channels, r.expect = expect;
    s->cancelled = 0;
    tf_status st = run_setup(&r);
    if (!st) st = run_stream(&r);
    if (sum) {
        memset(sum, 0, sizeof *sum);
        sum->frames = r.n_out_frames;
        sum->sample_rate = in_rate;
        sum->channels = channels;
        sum->duration = (double)r.n_out_frames / in_rate;
        sum->seconds = tf_now_s() - t0;
        sum->cpu_seconds = tf_cpu_s() - c0;
        sum->rtf = sum->duration > 0 ? sum->seconds / sum->duration : 0;
        sum->engine_bytes = r.bytes;
        sum->n_outputs = r.n_out;
    }
    run_free(&r);
    if (sum) sum->peak_rss = (int64_t)tf_peak_rss_bytes();
    return st;
}

/* ---------------------------------------------------------------- file endpoints */

typedef struct {
    tf_audio_reader *rd, *mixrd;
    int64_t pos;
    tf_audio_writer **w;
    int n_w;
} file_io;

static tf_status file_read(void *ctx, float *out, int64_t n, int64_t stride, int64_t *got) {
    file_io *f = ctx;
    TF_TRY(tf_audio_reader_chunk(f->rd, f->pos, n, out, stride, got));
    f->pos += *got;
    return TF_OK;
}

static tf_status file_mix(void *ctx, int64_t off, float *out, int64_t n, int64_t stride) {
    file_io *f = ctx;
    return tf_audio_reader_chunk(f->mixrd, off, n, out, stride, NULL);
}

static tf_status file_write(void *ctx, int j, const float *data, int64_t n, int64_t stride) {
    file_io *f = ctx;
    return tf_audio_writer_write(f->w[j], data, n, stride);
}

tf_status tf_separate_file(tf_separator *s, const char *in, const char *out_dir,
                           const tf_sep_params *p, tf_sep_summary *sum) {
    if (sum) memset(sum, 0, sizeof *sum);
    TF_TRY(tf_sep_check_outputs(s, p, in, out_dir, NULL));
    file_io f;
    memset(&f, 0, sizeof f);
    TF_TRY(tf_audio_reader_open(&f.rd, in));
    const tf_audio_info info = *tf_audio_reader_info(f.rd);
    tf_status st = TF_OK;
    if (p->instrumental) st = tf_audio_reader_open(&f.mixrd, in);
    const int n = tf_sep_n_outputs(s, p);
    if (!st) {
        f.w = tf_calloc((size_t)n, sizeof *f.w, "separate: writers");
        if (!f.w) st = TF_EINTERNAL;
    }
    char path[TF_PATH_MAX * 2], dir[TF_PATH_MAX * 2];
    for (int j = 0; j < n && !st; j++) {
        st = tf_sep_output_path(s, p, in, out_dir, j, path, sizeof path);
        if (!st) tf_dirname(path, dir, sizeof dir), st = tf_mkdirs(dir);
        if (!st) st = tf_audio_writer_open(&f.w[j], path, info.rate, info.channels, p->fmt, p->sub);
        if (!st) f.n_w = j + 1;
    }
    if (!st) {
        endpoints io = {file_read, file_mix, file_write, &f};
        st = run_all(s, p, io, info.rate, info.channels, info.frames, sum);
        if (st && st != TF_EINTERNAL && !s->cancelled) st = tf_err_ctx(st, "%s", in);
    }
    int64_t clipped = 0;
    for (int j = 0; j < f.n_w; j++) {
        clipped += tf_audio_writer_clipped(f.w[j]);
        tf_status c = tf_audio_writer_close(f.w[j], st == TF_OK);
        if (!st) st = c;
    }
    if (sum) sum->clipped = clipped;
    free(f.w);
    tf_audio_reader_close(f.rd);
    tf_audio_reader_close(f.mixrd);
    return st;
}

/* ---------------------------------------------------------------- buffer endpoints */

typedef struct {
    const float *in;
    int ch;
    int64_t n, pos;
    float *out;
    const tf_sep_params *p;
    int64_t wpos[TF_MAX_TARGETS + 1];
} buf_io;

static void buf_copy(const buf_io *b, int64_t off, float *out, int64_t n, int64_t stride) {
    for (int c = 0; c < 2; c++) {
        const float *src = b->in + (size_t)(b->ch == 2 ? c : 0) * (size_t)b->n;
        for (int64_t i = 0; i < n; i++)
            out[(size_t)c * stride + i] = off + i >= 0 && off + i < b->n ? src[off + i] : 0.f;
    }
}

static tf_status buf_read(void *ctx, float *out, int64_t n, int64_t stride, int64_t *got) {
    buf_io *b = ctx;
    int64_t m = b->n - b->pos < n ? b->n - b->pos : n;
    buf_copy(b, b->pos, out, n, stride);
    b->pos += m;
    *got = m;
    return TF_OK;
}

static tf_status buf_mix(void *ctx, int64_t off, float *out, int64_t n, int64_t stride) {
    buf_copy(ctx, off, out, n, stride);
    return TF_OK;
}

static tf_status buf_write(void *ctx, int j, const float *data, int64_t n, int64_t stride) {
    buf_io *b = ctx;
    int64_t pos = b->wpos[j];
    if (pos + n > b->n) return tf_err(TF_EINTERNAL, "separate: output past the buffer end");
    for (int c = 0; c < b->ch; c++)
        memcpy(b->out + ((size_t)j * b->ch + c) * (size_t)b->n + pos, data + (size_t)c * stride,
               sizeof(float) * (size_t)n);
    b->wpos[j] = pos + n;
    return TF_OK;
}

tf_status tf_separate_buffer(tf_separator *s, const float *in, int channels, int64_t n, int rate,
                             float *out, const tf_sep_params *p, tf_sep_summary *sum) {
    if (sum) memset(sum, 0, sizeof *sum);
    TF_TRY(tf_sep_check_params(s, p));
    if (!in || !out) return tf_err(TF_EUSER, "separate: NULL input or output buffer");
    if (channels != 1 && channels != 2)
        return tf_err(TF_EUSER, "separate: %d channels (only mono and stereo)", channels);
    if (n < 1) return tf_err(TF_EUSER, "separate: empty input (%lld frames)", (long long)n);
    if (rate < 1 || rate > 1000000)
        return tf_err(TF_EUSER, "separate: sample rate %d Hz is not in [1, 1000000]", rate);
    buf_io b;
    memset(&b, 0, sizeof b);
    b.in = in, b.ch = channels, b.n = n, b.out = out, b.p = p;
    endpoints io = {buf_read, buf_mix, buf_write, &b};
    return run_all(s, p, io, rate, channels, n, sum);
}

/* ---------------------------------------------------------------- incremental */

struct tf_sep_stream {
    run r;
    tf_sep_params p;
};

tf_status tf_sep_stream_open(tf_sep_stream **out, tf_separator *s, const tf_sep_params *p,
                             int in_rate, int channels, tf_sep_sink sink) {
    *out = NULL;
    TF_TRY(tf_sep_check_params(s, p));
    if (channels != 1 && channels != 2)
        return tf_err(TF_EUSER, "stream: %d channels (only mono and stereo)", channels);
    if (in_rate < 1 || in_rate > 1000000)
        return tf_err(TF_EUSER, "stream: sample rate %d Hz is not in [1, 1000000]", in_rate);
    tf_sep_stream *t = tf_calloc(1, sizeof *t, "separate: stream");
    if (!t) return TF_EINTERNAL;
    t->p = *p;
    t->p.progress = NULL;
    run *r = &t->r;
    r->s = s, r->p = &t->p, r->in_rate = in_rate, r->channels = channels, r->expect = 0;
    r->io = (endpoints){NULL, sink.mix, sink.write, sink.ctx};
    s->cancelled = 0;
    tf_status st = run_setup(r);
    if (!st) st = run_begin(r);
    if (st) {
        tf_sep_stream_close(t);
        return st;
    }
    *out = t;
    return TF_OK;
}

int64_t tf_sep_stream_block(const tf_sep_stream *t) {
    return t->r.blk;
}

size_t tf_sep_stream_bytes(const tf_sep_stream *t) {
    return t->r.bytes;
}

tf_status tf_sep_stream_push(tf_sep_stream *t, const float *in, int64_t n, int64_t stride) {
    if (t->r.total >= 0) return tf_err(TF_EUSER, "stream: push after the end of input");
    if (n > t->r.blk)
        return tf_err(TF_EINTERNAL, "stream: %lld frames pushed, max %lld", (long long)n,
                      (long long)t->r.blk);
    return run_feed(&t->r, in, n, stride);
}

tf_status tf_sep_stream_finish(tf_sep_stream *t) {
    if (t->r.total >= 0) return TF_OK;
    return run_end(&t->r);
}

int64_t tf_sep_stream_frames_out(const tf_sep_stream *t) {
    return t->r.n_out_frames;
}

void tf_sep_stream_close(tf_sep_stream *t) {
    if (!t) return;
    run_free(&t->r);
    free(t);
}
