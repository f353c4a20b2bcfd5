#include "data/loader.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "audio/audio.h"
#include "data/augment.h"
#include "data/sampler.h"
#include "util/rng.h"

/* Draws of one stem (or item) rejected as silent before giving up: with the envelope
 * tables a rejection needs the file to disagree with its envelope, so reaching this
 * means a stale or wrong index. */
#define MAX_ATTEMPTS 1000

typedef struct {
    int track, stem;
    tf_audio_reader *r;
    uint64_t used;
} cache_ent;

/* Per-thread state: open files (LRU), scratch, counters not yet merged. */
typedef struct {
    cache_ent ent[TF_LOADER_OPEN_FILES];
    int n;
    uint64_t clock;
    float *partner; /* (2, N) same-source partner */
    tf_loader_counters acc;
    struct tf_loader *l;
} wctx;

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY };

typedef struct {
    tf_batch b;
    int state;
    int64_t silent; /* silent units in this batch (for stats at delivery) */
    tf_status st;
    char err[512];
} slot;

struct tf_loader {
    tf_config cfg;
    const tf_index *ix;
    tf_sampler *sp;
    uint64_t seed;
    int B, S;
    int64_t N;
    double thr;
    int aligned;

    int nw, n_slots;
    slot *slots;
    float *block; /* all batch floats, page aligned */
    size_t block_bytes;
    tf_chunk_info *infos;
    int pinned;
    wctx *wc; /* max(nw, 1) contexts; wc[0] serves the synchronous mode */

    pthread_t *th;
    int n_th; /* threads running (created and not joined) */
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* workers wait for a step to fill */
    pthread_cond_t cv_done; /* the caller waits for a batch or for idle workers */
    int64_t ep_first, ep_end, next_assign, next_consume;
    int have_epoch;
    int held; /* slot the caller holds, -1 if none */
    int shutdown, busy;
    uint64_t gen;
    atomic_int cancel;
    tf_loader_counters stats;
    int64_t shard_stride, shard_offset; /* data of step k: draw id k * stride + offset */
};

/* ---- reading ---- */

static void cache_clear(wctx *w) {
    for (int i = 0; i < w->n; i++) tf_audio_reader_close(w->ent[i].r);
    w->n = 0;
}

static tf_status cache_get(wctx *w, int track, int stem, const char *path, tf_audio_reader **r) {
    w->clock++;
    int lru = 0;
    for (int i = 0; i < w->n; i++) {
        if (w->ent[i].track == track && w->ent[i].stem == stem) {
            w->ent[i].used = w->clock;
            *r = w->ent[i].r;
            return TF_OK;
        }
        if (w->ent[i].used < w->ent[lru].used) lru = i;
    }
    tf_audio_reader *nr;
    TF_TRY(tf_audio_reader_open(&nr, path));
    w->acc.file_opens++;
    int i;
    if (w->n < TF_LOADER_OPEN_FILES) {
        i = w->n++;
    } else {
        i = lru;
        tf_audio_reader_close(w->ent[i].r);
    }
    w->ent[i] = (cache_ent){track, stem, nr, w->clock};
    *r = nr;
    return TF_OK;
}

/* Chunk (2, N) of stem `stem` of `track` at `off` into dst. */
static tf_status read_chunk(tf_loader *l, wctx *w, int track, int stem, int64_t off, float *dst) {
    const tf_stem_file *f = &l->ix->tracks[track].stems[stem];
    const int64_t N = l->N;
    w->acc.stem_reads++;
    if (l->cfg.use_efficient_loading) {
        tf_audio_reader *r;
        TF_TRY(cache_get(w, track, stem, f->path, &r));
        return tf_audio_reader_chunk(r, off, N, dst, N, NULL);
    }
    /* the original behaviour: read the whole file, then slice */
    float *all;
    tf_audio_info info;
    TF_TRY(tf_audio_read_all(f->path, &all, &info));
    for (int c = 0; c < 2; c++) {
        const float *src = all + (size_t)c * (size_t)info.frames;
        float *d = dst + (size_t)c * (size_t)N;
        for (int64_t i = 0; i < N; i++) {
            int64_t k = off + i;
            d[i] = k >= 0 && k < info.frames ? src[k] : 0.f;
        }
    }
    free(all);
    return TF_OK;
}

/* mean |x| over n floats: float SIMD sums over blocks of 4096, added in double */
static double mean_abs(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i += 4096) {
        const int64_t m = n - i < 4096 ? n - i : 4096;
        const float *p = x + i;
        float a = 0;
#pragma omp simd reduction(+ : a)
        for (int64_t k = 0; k < m; k++) a += fabsf(p[k]);
        s += a;
    }
    return n > 0 ? s / (double)n : 0.0;
}

/* mix (cn,) = stems[0] + stems[1] + ... (S, cn), added in stem order; blocked so each
 * block of mix stays in cache while the stems stream through */
static void sum_stems(float *mix, const float *stems, int S, int64_t cn) {
    for (int64_t i = 0; i < cn; i += 4096) {
        const int64_t m = cn - i < 4096 ? cn - i : 4096;
        float *o = mix + i;
        memcpy(o, stems + i, sizeof(float) * (size_t)m);
        for (int s = 1; s < S; s++) {
            const float *x = stems + (size_t)s * (size_t)cn + i;
#pragma omp simd
            for (int64_t k = 0; k < m; k++) o[k] += x[k];
        }
    }
}

static tf_status too_many(const tf_loader *l, int stem) {
    if (stem < 0)
        return tf_err(TF_EUSER,
                      "aligned sampling: %d chunks in a row with a mixture below min_mean_abs "
                      "%g although the index envelopes say they are loud (stale index cache? "
                      "run tfswa index)",
                      MAX_ATTEMPTS, l->thr);
    return tf_err(TF_EUSER,
                  "stem '%s': %d chunks in a row with mean |x| < min_mean_abs %g although the "
                  "index envelope says they are loud (stale index cache? run tfswa index)",
                  l->ix->stem_names[stem], MAX_ATTEMPTS, l->thr);
}

/* Same-source mix and gain / swap / polarity of stem s of an item, in place on x. */
static tf_status finish_stem(tf_loader *l, wctx *w, int64_t step, int b, int s, float *x,
                             tf_chunk_info *info) {
    const int64_t cn = 2 * l->N;
    info->mix_track = -1;
    info->mix_offset = 0;
    if (tf_augment_mix_wanted(&l->cfg, l->seed, step, b, s)) {
        tf_rng r;
        tf_draw d;
        for (int att = 0;; att++) {
            if (att == MAX_ATTEMPTS) return too_many(l, s);
            if (atomic_load_explicit(&l->cancel, memory_order_relaxed)) return TF_OK;
            tf_rng_seed(&r, l->seed, (uint64_t)step, (uint64_t)b,
                        tf_stream(TF_STREAM_MIX_DRAW, s, att));
            tf_sampler_draw_stem(l->sp, &r, s, &d);
            w->acc.mix_reads++;
            TF_TRY(read_chunk(l, w, d.track, s, d.offset, w->partner));
            if (l->thr <= 0 || mean_abs(w->partner, cn) >= l->thr) break;
            w->acc.redraws++;
        }
        info->mix_track = d.track;
        info->mix_offset = d.offset;
        tf_augment_mix(x, w->partner, cn);
    }
    tf_aug_info ai;
    tf_augment_apply(&l->cfg, l->seed, step, b, s, x, l->N, &ai);
    info->gain = ai.gain;
    info->swapped = ai.swapped;
    return TF_OK;
}

/* mix += x (or = x for the first stem), so the mixture is the sum in stem order */
static void accumulate(float *mix, const float *x, int64_t cn, int first) {
    if (first) {
        memcpy(mix, x, sizeof(float) * (size_t)cn);
        return;
    }
#pragma omp simd
    for (int64_t i = 0; i < cn; i++) mix[i] += x[i];
}

/* One item: stems (S, 2, N), mixture (2, N), info (S). Returns TF_OK early (with
 * garbage) when cancelled: the batch is then discarded. *silent: units below thr.
 * Remix mode finishes each stem (read, check, augment, add to the mixture) before the
 * next, while its 2 MB are still in cache. */
static tf_status fill_item(tf_loader *l, wctx *w, int64_t step, int b, float *stems, float *mix,
                           tf_chunk_info *info, int64_t *silent) {
    const int S = l->S;
    const int64_t cn = 2 * l->N;
    const uint64_t seed = l->seed;
    const double thr = l->thr;
    tf_rng r;
    tf_draw d;
    if (!l->aligned) {
        for (int s = 0; s < S; s++) {
            float *x = stems + (size_t)s * (size_t)cn;
            double m = 0;
            int att = 0;
            for (;; att++) {
                if (att == MAX_ATTEMPTS) return too_many(l, s);
                if (atomic_load_explicit(&l->cancel, memory_order_relaxed)) return TF_OK;
                tf_rng_seed(&r, seed, (uint64_t)step, (uint64_t)b,
                            tf_stream(TF_STREAM_DRAW, s, att));
                tf_sampler_draw_stem(l->sp, &r, s, &d);
                TF_TRY(read_chunk(l, w, d.track, s, d.offset, x));
                m = mean_abs(x, cn);
                if (thr <= 0 || m >= thr) break;
                w->acc.redraws++;
            }
            info[s].track = d.track;
            info[s].offset = d.offset;
            info[s].redraws = att;
            info[s].mean_abs = (float)m;
            if (thr > 0 && m < thr) (*silent)++; /* unreachable by construction */
            TF_TRY(finish_stem(l, w, step, b, s, x, &info[s]));
            accumulate(mix, x, cn, s == 0);
        }
        return TF_OK;
    }
    int att = 0;
    double m = 0;
    for (;; att++) {
        if (att == MAX_ATTEMPTS) return too_many(l, -1);
        if (atomic_load_explicit(&l->cancel, memory_order_relaxed)) return TF_OK;
        tf_rng_seed(&r, seed, (uint64_t)step, (uint64_t)b, tf_stream(TF_STREAM_DRAW, -1, att));
        tf_sampler_draw_aligned(l->sp, &r, &d);
        for (int s = 0; s < S; s++)
            TF_TRY(read_chunk(l, w, d.track, s, d.offset, stems + (size_t)s * (size_t)cn));
        if (thr <= 0) break;
        sum_stems(mix, stems, S, cn);
        m = mean_abs(mix, cn);
        if (m >= thr) break;
        w->acc.redraws++;
    }
    if (thr > 0 && m < thr) (*silent)++; /* unreachable by construction */
    for (int s = 0; s < S; s++) {
        float *x = stems + (size_t)s * (size_t)cn;
        info[s].track = d.track;
        info[s].offset = d.offset;
        info[s].redraws = att;
        info[s].mean_abs = (float)mean_abs(x, cn);
        TF_TRY(finish_stem(l, w, step, b, s, x, &info[s]));
    }
    sum_stems(mix, stems, S, cn); /* the final stems, in stem order */
    return TF_OK;
}

static tf_status fill_batch(tf_loader *l, wctx *w, slot *sl, int64_t step) {
    tf_batch *bt = &sl->b;
    const size_t cn = 2 * (size_t)l->N;
    const int64_t draw = step * l->shard_stride + l->shard_offset;
    bt->step = step;
    sl->silent = 0;
    for (int b = 0; b < l->B; b++) {
        if (atomic_load_explicit(&l->cancel, memory_order_relaxed)) return TF_OK;
        TF_TRY(fill_item(l, w, draw, b, bt->stems + (size_t)b * (size_t)l->S * cn,
                         bt->mixture + (size_t)b * cn, bt->info + (size_t)b * (size_t)l->S,
                         &sl->silent));
    }
    w->acc.batches++;
    return TF_OK;
}

static void merge_stats(tf_loader_counters *to, tf_loader_counters *from) {
    to->batches += from->batches;
    to->stem_reads += from->stem_reads;
    to->mix_reads += from->mix_reads;
    to->redraws += from->redraws;
    to->file_opens += from->file_opens;
    memset(from, 0, sizeof *from);
}

/* ---- threads ---- */

static slot *slot_of(tf_loader *l, int64_t step) {
    return &l->slots[(step - l->ep_first) % l->n_slots];
}

static void *worker_main(void *arg) {
    wctx *w = arg;
    tf_loader *l = w->l;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->shutdown &&
               !(l->next_assign < l->ep_end && slot_of(l, l->next_assign)->state == SLOT_EMPTY)) {
            if (!l->cfg.persistent_workers && l->next_assign >= l->ep_end) break;
            pthread_cond_wait(&l->cv_work, &l->mu);
        }
        if (l->shutdown || l->next_assign >= l->ep_end) {
            if (l->shutdown || !l->cfg.persistent_workers) break;
            continue;
        }
        const int64_t step = l->next_assign++;
        slot *sl = slot_of(l, step);
        sl->state = SLOT_FILLING;
        const uint64_t gen = l->gen;
        l->busy++;
        pthread_mutex_unlock(&l->mu);

        tf_status st = fill_batch(l, w, sl, step);
        char err[sizeof sl->err];
        if (st) snprintf(err, sizeof err, "%s", tf_errmsg());

        pthread_mutex_lock(&l->mu);
        l->busy--;
        merge_stats(&l->stats, &w->acc);
        if (gen == l->gen && !l->shutdown) {
            sl->st = st;
            if (st) memcpy(sl->err, err, sizeof err);
            sl->state = SLOT_READY;
        } else {
            sl->state = SLOT_EMPTY;
        }
        pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    if (!l->cfg.persistent_workers) cache_clear(w); /* a new thread starts cold */
    return NULL;
}

static void stop_workers(tf_loader *l) {
    pthread_mutex_lock(&l->mu);
    l->shutdown = 1;
    atomic_store(&l->cancel, 1);
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->n_th; i++) pthread_join(l->th[i], NULL);
    l->n_th = 0;
    pthread_mutex_lock(&l->mu);
    l->shutdown = 0;
    atomic_store(&l->cancel, 0);
    pthread_mutex_unlock(&l->mu);
}

static tf_status start_workers(tf_loader *l) {
    for (int i = 0; i < l->nw; i++) {
        int rc = pthread_create(&l->th[i], NULL, worker_main, &l->wc[i]);
        if (rc) {
            tf_status st =
                tf_err(TF_EINTERNAL, "loader: cannot start worker thread: %s", strerror(rc));
            stop_workers(l);
            return st;
        }
        l->n_th++;
        pthread_mutex_lock(&l->mu);
        l->stats.worker_starts++;
        pthread_mutex_unlock(&l->mu);
    }
    return TF_OK;
}

/* ---- API ---- */

static tf_status check_cfg(const tf_config *c, const tf_index *ix) {
    if (c->batch_size < 1) return tf_err(TF_EUSER, "batch_size: %d must be >= 1", c->batch_size);
    if (c->num_workers < 0 || c->num_workers > 256)
        return tf_err(TF_EUSER, "num_workers: %d must be in [0, 256]", c->num_workers);
    if (c->prefetch_factor < 1 || c->prefetch_factor > 64)
        return tf_err(TF_EUSER, "prefetch_factor: %d must be in [1, 64]", c->prefetch_factor);
    if (c->aug_gain && !(c->aug_gain_min_db <= c->aug_gain_max_db))
        return tf_err(TF_EUSER, "augment.gain_min_db %g > augment.gain_max_db %g",
                      c->aug_gain_min_db, c->aug_gain_max_db);
    if (!(c->aug_mix_same_source >= 0 && c->aug_mix_same_source <= 1))
        return tf_err(TF_EUSER, "augment.mix_same_source: %g must be a probability in [0, 1]",
                      c->aug_mix_same_source);
    if (c->n_sources != ix->n_stems)
        return tf_err(TF_EINTERNAL, "loader: %d sources but the index has %d stems", c->n_sources,
                      ix->n_stems);
    return TF_OK;
}

tf_status tf_loader_open(tf_loader **out, const tf_config *cfg, const tf_index *ix, uint64_t seed) {
    *out = NULL;
    TF_TRY(check_cfg(cfg, ix));
    tf_loader *l = tf_calloc(1, sizeof *l, "loader");
    if (!l) return TF_EINTERNAL;
    l->cfg = *cfg;
    l->ix = ix;
    l->seed = seed;
    l->shard_stride = 1;
    l->held = -1;
    atomic_init(&l->cancel, 0);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    tf_status st = tf_sampler_open(&l->sp, cfg, ix, TF_SPLIT_TRAIN);
    if (st) goto fail;
    l->B = cfg->batch_size;
    l->S = ix->n_stems;
    l->N = tf_sampler_frames(l->sp);
    l->thr = cfg->min_mean_abs;
    l->aligned = cfg->sampling == TF_SAMPLE_ALIGNED;
    l->nw = cfg->num_workers;
    l->n_slots = l->nw > 0 ? l->nw * cfg->prefetch_factor + 1 : 1;

    /* every batch float in one page-aligned block: (slots, B, S + 1, 2, N) */
    const size_t page = 4096;
    const size_t per_slot = (size_t)l->B * (size_t)(l->S + 1) * 2 * (size_t)l->N;
    l->block_bytes = tf_loader_plan_bytes(cfg, l->S, l->N);
    if (posix_memalign((void **)&l->block, page, l->block_bytes) != 0) {
        l->block = NULL;
        st = tf_err(TF_EINTERNAL, "out of memory: %zu bytes of batch buffers", l->block_bytes);
        goto fail;
    }
    memset(l->block, 0, l->block_bytes);
    l->stats.batch_bytes = l->block_bytes;
    l->slots = tf_calloc((size_t)l->n_slots, sizeof *l->slots, "loader slots");
    l->infos = tf_calloc((size_t)l->n_slots * (size_t)l->B * (size_t)l->S, sizeof *l->infos,
                         "loader chunk info");
    const int n_ctx = l->nw > 0 ? l->nw : 1;
    l->wc = tf_calloc((size_t)n_ctx, sizeof *l->wc, "loader workers");
    l->th = tf_calloc((size_t)n_ctx, sizeof *l->th, "loader threads");
    if (!l->slots || !l->infos || !l->wc || !l->th) {
        st = TF_EINTERNAL;
        goto fail;
    }
    for (int i = 0; i < l->n_slots; i++) {
        tf_batch *b = &l->slots[i].b;
        b->B = l->B;
        b->S = l->S;
        b->N = l->N;
        b->stems = l->block + (size_t)i * per_slot;
        b->mixture = b->stems + (size_t)l->B * (size_t)l->S * 2 * (size_t)l->N;
        b->info = l->infos + (size_t)i * (size_t)l->B * (size_t)l->S;
    }
    for (int i = 0; i < n_ctx; i++) {
        l->wc[i].l = l;
        l->wc[i].partner = tf_malloc(sizeof(float) * 2 * (size_t)l->N, "loader scratch");
        if (!l->wc[i].partner) {
            st = TF_EINTERNAL;
            goto fail;
        }
    }
    if (cfg->pin_memory) {
        if (mlock(l->block, l->block_bytes) == 0) {
            l->pinned = 1;
            l->stats.pinned_bytes = l->block_bytes;
        } else {
            l->stats.pin_failures++; /* e.g. RLIMIT_MEMLOCK: go on unpinned */
        }
    }
    *out = l;
    return TF_OK;
fail:
    tf_loader_close(l);
    return st;
}

tf_status tf_loader_start_epoch(tf_loader *l, int epoch, int64_t first_step, int64_t n_steps) {
    (void)epoch; /* batches depend on the step only */
    if (n_steps < 0 || first_step < 0)
        return tf_err(TF_EINTERNAL, "loader: bad epoch range %lld + %lld", (long long)first_step,
                      (long long)n_steps);
    const int persistent = l->cfg.persistent_workers;
    if (l->nw > 0 && !persistent) stop_workers(l);
    pthread_mutex_lock(&l->mu);
    l->gen++;
    l->ep_end = l->next_assign;  /* no more steps of the old epoch */
    atomic_store(&l->cancel, 1); /* abandon batches being filled for it */
    while (l->busy > 0) pthread_cond_wait(&l->cv_done, &l->mu);
    atomic_store(&l->cancel, 0);
    for (int i = 0; i < l->n_slots; i++) l->slots[i].state = SLOT_EMPTY;
    l->held = -1;
    l->ep_first = first_step;
    l->ep_end = first_step + n_steps;
    l->next_assign = l->next_consume = first_step;
    l->have_epoch = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    if (l->nw > 0 && (!persistent || l->n_th == 0)) TF_TRY(start_workers(l));
    return TF_OK;
}

tf_status tf_loader_next(tf_loader *l, const tf_batch **out) {
    *out = NULL;
    if (!l->have_epoch) return tf_err(TF_EINTERNAL, "loader: next() before start_epoch()");
    if (l->nw == 0) {
        if (l->next_consume >= l->ep_end)
            return tf_err(TF_EINTERNAL, "loader: epoch has no step left");
        slot *sl = &l->slots[0];
        tf_status st = fill_batch(l, &l->wc[0], sl, l->next_consume);
        pthread_mutex_lock(&l->mu);
        merge_stats(&l->stats, &l->wc[0].acc);
        l->next_consume++;
        if (!st) {
            l->stats.delivered_chunks += (int64_t)l->B * l->S;
            l->stats.silent_delivered += sl->silent;
        }
        pthread_mutex_unlock(&l->mu);
        if (st) return st;
        *out = &sl->b;
        return TF_OK;
    }
    pthread_mutex_lock(&l->mu);
    if (l->held >= 0) {
        l->slots[l->held].state = SLOT_EMPTY;
        l->held = -1;
        pthread_cond_broadcast(&l->cv_work);
    }
    if (l->next_consume >= l->ep_end) {
        pthread_mutex_unlock(&l->mu);
        return tf_err(TF_EINTERNAL, "loader: epoch has no step left");
    }
    slot *sl = slot_of(l, l->next_consume);
    while (!(sl->state == SLOT_READY && sl->b.step == l->next_consume))
        pthread_cond_wait(&l->cv_done, &l->mu);
    l->held = (int)(sl - l->slots);
    l->next_consume++;
    tf_status st = sl->st;
    if (!st) {
        l->stats.delivered_chunks += (int64_t)l->B * l->S;
        l->stats.silent_delivered += sl->silent;
    }
    pthread_mutex_unlock(&l->mu);
    if (st) return tf_err(st, "%s", sl->err);
    *out = &sl->b;
    return TF_OK;
}

size_t tf_loader_plan_bytes(const tf_config *cfg, int n_stems, int64_t frames) {
    const size_t page = 4096;
    const size_t slots =
        cfg->num_workers > 0 ? (size_t)cfg->num_workers * (size_t)cfg->prefetch_factor + 1 : 1;
    const size_t per_slot = (size_t)cfg->batch_size * (size_t)(n_stems + 1) * 2 * (size_t)frames;
    return ((sizeof(float) * per_slot * slots + page - 1) / page) * page;
}

void tf_loader_set_shard(tf_loader *l, int64_t stride, int64_t offset) {
    l->shard_stride = stride < 1 ? 1 : stride;
    l->shard_offset = offset;
}

void tf_loader_stats(const tf_loader *cl, tf_loader_counters *st) {
    tf_loader *l = (tf_loader *)cl; /* the lock is not part of the observable state */
    pthread_mutex_lock(&l->mu);
    *st = l->stats;
    pthread_mutex_unlock(&l->mu);
}

void tf_loader_close(tf_loader *l) {
    if (!l) return;
    if (l->n_th > 0) stop_workers(l);
    if (l->wc) {
        const int n_ctx = l->nw > 0 ? l->nw : 1;
        for (int i = 0; i < n_ctx; i++) {
            cache_clear(&l->wc[i]);
            free(l->wc[i].partner);
        }
    }
    if (l->pinned) munlock(l->block, l->block_bytes);
    free(l->block);
    free(l->slots);
    free(l->infos);
    free(l->wc);
    free(l->th);
    tf_sampler_close(l->sp);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_done);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
