#include "data/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Admissible offsets form intervals [lo, hi) per (track, table); a table is the list of
 * its intervals over all tracks with the running count of offsets before each. */
typedef struct {
    int track;
    int64_t lo, hi;
    int64_t before; /* admissible offsets in the intervals before this one */
} interval;

typedef struct {
    interval *iv;
    int n, cap;
    int64_t total;
} table;

struct tf_sampler {
    const tf_index *ix;
    int64_t frames; /* N */
    int n_stems;
    int aligned;
    table stem[TF_MAX_TARGETS];
    table mix; /* aligned mode only */
};

/* Relative margin on the threshold, for float rounding of the envelope. */
#define THR_MARGIN 1e-3

uint64_t tf_stream(int purpose, int stem, int attempt) {
    return ((uint64_t)(uint32_t)purpose << 48) | ((uint64_t)(uint32_t)attempt << 16) |
           (uint64_t)(uint16_t)(stem + 1);
}

static tf_status table_add(table *t, int track, int64_t lo, int64_t hi) {
    if (t->n > 0 && t->iv[t->n - 1].track == track && t->iv[t->n - 1].hi == lo) {
        t->iv[t->n - 1].hi = hi; /* extend the previous interval */
        t->total += hi - lo;
        return TF_OK;
    }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        interval *iv = tf_realloc(t->iv, sizeof *iv * (size_t)cap, "sampler table");
        if (!iv) return TF_EINTERNAL;
        t->iv = iv;
        t->cap = cap;
    }
    t->iv[t->n++] = (interval){track, lo, hi, t->total};
    t->total += hi - lo;
    return TF_OK;
}

/* Add the admissible offsets of one track to t. `sum` (n_env + 1,) holds the prefix
 * sums of the block sums (block mean * block length) of the envelope in question. */
static tf_status add_track(table *t, int track, int64_t track_frames, int64_t n_env, int eb,
                           const double *sum, int64_t N, double thr) {
    const int64_t maxoff = track_frames > N ? track_frames - N : 0;
    if (thr <= 0) return table_add(t, track, 0, maxoff + 1);
    const double need = thr * (1.0 + THR_MARGIN) * (double)N;
    for (int64_t k = 0; k * eb <= maxoff; k++) {
        const int64_t o_lo = k * eb;
        const int64_t o_hi = o_lo + eb - 1 < maxoff ? o_lo + eb - 1 : maxoff;
        /* blocks covered completely by [o, o + N) for every o in [o_lo, o_hi] */
        int64_t j0 = (o_hi + eb - 1) / eb; /* first block starting at or after o_hi */
        int64_t j1 = j0;                   /* one past the last covered block */
        int64_t end = o_lo + N;
        while (j1 < n_env) {
            int64_t bend = (j1 + 1) * (int64_t)eb;
            if (bend > track_frames) bend = track_frames;
            if (bend > end) break;
            j1++;
        }
        double s = j1 > j0 ? sum[j1] - sum[j0] : 0.0;
        if (s >= need) TF_TRY(table_add(t, track, o_lo, o_hi + 1));
    }
    return TF_OK;
}

/* prefix sums of block sums of env (n_env,), file of `frames` frames */
static void prefix(double *sum, const float *env, int64_t n_env, int64_t frames, int eb) {
    sum[0] = 0;
    for (int64_t j = 0; j < n_env; j++) {
        int64_t len = frames - j * eb < eb ? frames - j * eb : eb;
        if (len < 0) len = 0;
        sum[j + 1] = sum[j] + (double)env[j] * (double)len;
    }
}

tf_status tf_sampler_open(tf_sampler **out, const tf_config *cfg, const tf_index *ix,
                          tf_split split) {
    *out = NULL;
    static const char *split_names[] = {"train", "valid", "test"};
    if (cfg->segment_seconds <= 0)
        return tf_err(TF_EUSER, "segment_seconds: %g must be > 0", cfg->segment_seconds);
    if (cfg->min_mean_abs < 0)
        return tf_err(TF_EUSER, "min_mean_abs: %g must be >= 0", cfg->min_mean_abs);
    if (ix->sample_rate != cfg->sample_rate)
        return tf_err(TF_EUSER, "sample_rate: %d, but the dataset %s is at %d Hz", cfg->sample_rate,
                      cfg->root, ix->sample_rate);
    if (ix->n_stems < 1 || ix->n_stems > TF_MAX_TARGETS)
        return tf_err(TF_EINTERNAL, "sampler: index has %d stems", ix->n_stems);
    const int64_t N = (int64_t)llround(cfg->segment_seconds * cfg->sample_rate);
    if (N < 1)
        return tf_err(TF_EUSER, "segment_seconds: %g is shorter than one sample",
                      cfg->segment_seconds);
    const double thr = cfg->min_mean_abs;
    const int eb = ix->env_block;
    if (thr > 0 && eb <= 0) return tf_err(TF_EINTERNAL, "sampler: index has no envelope");

    tf_sampler *s = tf_calloc(1, sizeof *s, "sampler");
    if (!s) return TF_EINTERNAL;
    s->ix = ix;
    s->frames = N;
    s->n_stems = ix->n_stems;
    s->aligned = cfg->sampling == TF_SAMPLE_ALIGNED;

    double *sum = NULL;
    float *menv = NULL;
    int64_t max_env = 0;
    int n_split = 0;
    for (int t = 0; t < ix->n_tracks; t++) {
        if (ix->tracks[t].split != split) continue;
        n_split++;
        for (int k = 0; k < s->n_stems; k++)
            if (ix->tracks[t].stems[k].n_env > max_env) max_env = ix->tracks[t].stems[k].n_env;
    }
    tf_status st = TF_OK;
    if (n_split == 0) {
        st = tf_err(TF_EUSER, "%s: no tracks in the %s split", cfg->root,
                    split_names[split < 3 ? split : 0]);
        goto fail;
    }
    if (thr > 0) {
        sum = tf_malloc(sizeof *sum * (size_t)(max_env + 1), "sampler scratch");
        menv = tf_malloc(sizeof *menv * (size_t)(max_env + 1), "sampler scratch");
        if (!sum || !menv) {
            st = TF_EINTERNAL;
            goto fail;
        }
    }
    for (int t = 0; t < ix->n_tracks && !st; t++) {
        const tf_track *tr = &ix->tracks[t];
        if (tr->split != split) continue;
        int64_t n_env_min = INT64_MAX;
        for (int k = 0; k < s->n_stems && !st; k++) {
            const tf_stem_file *f = &tr->stems[k];
            if (thr > 0) {
                if (!f->env && f->n_env > 0) {
                    st = tf_err(TF_EINTERNAL, "%s: index has no envelope", f->path);
                    break;
                }
                prefix(sum, f->env, f->n_env, f->frames, eb);
                if (f->n_env < n_env_min) n_env_min = f->n_env;
            }
            st = add_track(&s->stem[k], t, tr->frames, f->n_env, eb, sum, N, thr);
        }
        if (st || !s->aligned) continue;
        if (thr > 0) {
            /* estimate of the mixture envelope: per-block maximum over the stems */
            for (int64_t j = 0; j < n_env_min; j++) {
                float m = 0;
                for (int k = 0; k < s->n_stems; k++)
                    if (tr->stems[k].env[j] > m) m = tr->stems[k].env[j];
                menv[j] = m;
            }
            prefix(sum, menv, n_env_min, tr->frames, eb);
        }
        st = add_track(&s->mix, t, tr->frames, thr > 0 ? n_env_min : 0, eb, sum, N, thr);
    }
    if (st) goto fail;
    for (int k = 0; k < s->n_stems; k++) {
        if (s->stem[k].total > 0) continue;
        st = tf_err(TF_EUSER,
                    "min_mean_abs %g: stem '%s' has no %.3g s chunk with mean |x| >= %g in any "
                    "of the %d %s tracks of %s (silent or missing stem files? lower "
                    "min_mean_abs, 0 disables the filter)",
                    thr, ix->stem_names[k], cfg->segment_seconds, thr, n_split,
                    split_names[split < 3 ? split : 0], cfg->root);
        goto fail;
    }
    if (s->aligned && s->mix.total == 0) {
        st = tf_err(TF_EUSER,
                    "min_mean_abs %g: aligned sampling finds no %.3g s chunk where the stems "
                    "are loud together in any of the %d %s tracks of %s",
                    thr, cfg->segment_seconds, n_split, split_names[split < 3 ? split : 0],
                    cfg->root);
        goto fail;
    }
    free(sum);
    free(menv);
    *out = s;
    return TF_OK;
fail:
    free(sum);
    free(menv);
    tf_sampler_close(s);
    return st;
}

void tf_sampler_close(tf_sampler *s) {
    if (!s) return;
    for (int k = 0; k < TF_MAX_TARGETS; k++) free(s->stem[k].iv);
    free(s->mix.iv);
    free(s);
}

int64_t tf_sampler_frames(const tf_sampler *s) {
    return s->frames;
}

int64_t tf_sampler_admissible(const tf_sampler *s, int stem) {
    if (stem < 0) return s->aligned ? s->mix.total : 0;
    return stem < s->n_stems ? s->stem[stem].total : 0;
}

static void draw(const table *t, tf_rng *r, tf_draw *out) {
    int64_t u = (int64_t)tf_rng_below(r, (uint64_t)t->total);
    int lo = 0, hi = t->n - 1; /* last interval with before <= u */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (t->iv[mid].before <= u)
            lo = mid;
        else
            hi = mid - 1;
    }
    out->track = t->iv[lo].track;
    out->offset = t->iv[lo].lo + (u - t->iv[lo].before);
}

void tf_sampler_draw_stem(const tf_sampler *s, tf_rng *r, int stem, tf_draw *out) {
    draw(&s->stem[stem], r, out);
}

void tf_sampler_draw_aligned(const tf_sampler *s, tf_rng *r, tf_draw *out) {
    draw(s->aligned ? &s->mix : &s->stem[0], r, out);
}
