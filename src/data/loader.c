#include "data/loader.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#ifdef __SSE2__
#include <immintrin.h>
#endif

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
    float *mix;     /* (2, N) the mixture of the item being made (in the batch block) */
    float *blk;     /* (4, BLK) fused pass: a block of a stem, of its partner, of the
                       mixture and (aligned) of the mixture as read */
    tf_loader_counters acc;
    struct tf_loader *l;
} wctx;

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_READY };

typedef struct {
    tf_batch b;
    int state;
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
    int fused; /* item_fused when it applies (tf_loader_set_fused) */

    int nw, n_slots;
    slot *slots;
    float *block; /* all batch floats, page aligned: the slots' stems, the delivered
                     mixture, the workers' item mixtures (tf_loader_plan_bytes) */
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

/* ---- sums and blocks ----
 * The silence checks use one summation, whatever the path: sum |x| over frames
 * [j, j + m) of both rows of a (2, N) chunk as 16 float lanes (lane = index mod 16,
 * independent of the pointer's alignment) added up in double, and the chunk's sum is
 * the double sum of its blocks of BLK frames in order. So the fused pass and the
 * reference path take the same decisions on the same samples. */
enum { BLK = TF_AUDIO_RAW_MAX }; /* frames per block (both rows: 64 KB of floats, stays in L2) */

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f vabs(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof v);
    return (v4f)((v4i)v & 0x7fffffff);
}

/* the 16 lanes and the tail of a row sum, added up in double */
static double lanes_sum(float t, v4f a0, v4f a1, v4f a2, v4f a3) {
    double s = t;
    for (int i = 0; i < 4; i++) s += (double)a0[i] + (double)a1[i] + (double)a2[i] + (double)a3[i];
    return s;
}

static double row_abs(const float *p, int64_t m) {
    v4f a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
    int64_t k = 0;
    for (; k + 16 <= m; k += 16) {
        a0 += vabs(p + k);
        a1 += vabs(p + k + 4);
        a2 += vabs(p + k + 8);
        a3 += vabs(p + k + 12);
    }
    float t = 0;
    for (; k < m; k++) t += fabsf(p[k]);
    return lanes_sum(t, a0, a1, a2, a3);
}

/* sum |x| over frames [j, j + m) of x (2, N) */
static double block_abs(const float *x, int64_t N, int64_t j, int64_t m) {
    return row_abs(x + j, m) + row_abs(x + N + j, m);
}

/* mean |x| of a chunk x (2, N) */
static double chunk_mean(const float *x, int64_t N) {
    double s = 0;
    for (int64_t j = 0; j < N; j += BLK) s += block_abs(x, N, j, N - j < BLK ? N - j : BLK);
    return N > 0 ? s / (double)(2 * N) : 0.0;
}

/* frames [0, m) of o (2, ·) row stride os = x (first) or o + x, row stride xs */
static void add_block(float *o, int64_t os, const float *x, int64_t xs, int64_t m, int first) {
    for (int c = 0; c < 2; c++) {
        float *oo = o + c * os;
        const float *xx = x + c * xs;
        if (first) {
            memcpy(oo, xx, sizeof(float) * (size_t)m);
            continue;
        }
#pragma omp simd
        for (int64_t k = 0; k < m; k++) oo[k] += xx[k];
    }
}

/* dst (2, m) row stride ds = src (2, m) row stride ss, with non-temporal stores where
 * possible: the batches (tens of MB) do not fit in the cache, so fetching their lines
 * before overwriting them (what a plain store does) only doubles the memory traffic.
 * fill_batch ends with a store fence. */
static void stream_block(float *dst, int64_t ds, const float *src, int64_t ss, int64_t m) {
    for (int c = 0; c < 2; c++) {
        float *d = dst + c * ds;
        const float *x = src + c * ss;
        int64_t k = 0;
#ifdef __SSE2__
        for (; k < m && ((uintptr_t)(d + k) & 15); k++) d[k] = x[k];
        for (; k + 4 <= m; k += 4) _mm_stream_ps(d + k, _mm_loadu_ps(x + k));
#endif
        for (; k < m; k++) d[k] = x[k];
    }
}

/* mix (2, N) = stems[0] + stems[1] + ... (S, 2, N), added in stem order, block by block */
static void sum_stems(float *mix, const float *stems, int S, int64_t N) {
    for (int64_t j = 0; j < N; j += BLK) {
        const int64_t m = N - j < BLK ? N - j : BLK;
        for (int s = 0; s < S; s++) add_block(mix + j, N, stems + (size_t)s * 2 * N + j, N, m, !s);
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

static int cancelled(tf_loader *l) {
    return atomic_load_explicit(&l->cancel, memory_order_relaxed);
}

/* ---- the reference path: one chunk at a time ---- */

/* Same-source mix (partner attempts patt0, patt0 + 1, ...) and gain / swap / polarity of
 * stem s of an item, in place on x (2, N). */
static tf_status finish_stem(tf_loader *l, wctx *w, int64_t step, int b, int s, int patt0, float *x,
                             tf_chunk_info *info) {
    const int64_t N = l->N;
    info->mix_track = -1;
    info->mix_offset = 0;
    if (tf_augment_mix_wanted(&l->cfg, l->seed, step, b, s)) {
        tf_rng r;
        tf_draw d;
        for (int att = patt0;; att++) {
            if (att == MAX_ATTEMPTS) return too_many(l, s);
            if (cancelled(l)) return TF_OK;
            tf_rng_seed(&r, l->seed, (uint64_t)step, (uint64_t)b,
                        tf_stream(TF_STREAM_MIX_DRAW, s, att));
            tf_sampler_draw_stem(l->sp, &r, s, &d);
            w->acc.mix_reads++;
            TF_TRY(read_chunk(l, w, d.track, s, d.offset, w->partner));
            if (l->thr <= 0 || chunk_mean(w->partner, N) >= l->thr) break;
            w->acc.redraws++;
        }
        info->mix_track = d.track;
        info->mix_offset = d.offset;
        tf_augment_mix(x, w->partner, 2 * N);
    }
    tf_aug_info ai;
    tf_augment_apply(&l->cfg, l->seed, step, b, s, x, N, &ai);
    info->gain = ai.gain;
    info->swapped = ai.swapped;
    return TF_OK;
}

/* Remix: stem s of an item, placement attempts att0, att0 + 1, ... until one is loud,
 * then finish_stem. x (2, N). */
static tf_status stem_ref(tf_loader *l, wctx *w, int64_t step, int b, int s, int att0, float *x,
                          tf_chunk_info *info) {
    tf_rng r;
    tf_draw d;
    double m = 0;
    int att = att0;
    for (;; att++) {
        if (att == MAX_ATTEMPTS) return too_many(l, s);
        if (cancelled(l)) return TF_OK;
        tf_rng_seed(&r, l->seed, (uint64_t)step, (uint64_t)b, tf_stream(TF_STREAM_DRAW, s, att));
        tf_sampler_draw_stem(l->sp, &r, s, &d);
        TF_TRY(read_chunk(l, w, d.track, s, d.offset, x));
        m = chunk_mean(x, l->N);
        if (l->thr <= 0 || m >= l->thr) break;
        w->acc.redraws++;
    }
    info->track = d.track;
    info->offset = d.offset;
    info->redraws = att;
    info->mean_abs = (float)m;
    return finish_stem(l, w, step, b, s, 0, x, info);
}

/* Aligned: item placement attempts att0, att0 + 1, ... until the mixture of the stems as
 * read is loud, then finish_stem of every stem and the mixture. */
static tf_status item_aligned_ref(tf_loader *l, wctx *w, int64_t step, int b, int att0,
                                  float *stems, float *mix, tf_chunk_info *info) {
    const int S = l->S;
    const int64_t N = l->N, cn = 2 * N;
    tf_rng r;
    tf_draw d;
    int att = att0;
    for (;; att++) {
        if (att == MAX_ATTEMPTS) return too_many(l, -1);
        if (cancelled(l)) return TF_OK;
        tf_rng_seed(&r, l->seed, (uint64_t)step, (uint64_t)b, tf_stream(TF_STREAM_DRAW, -1, att));
        tf_sampler_draw_aligned(l->sp, &r, &d);
        for (int s = 0; s < S; s++)
            TF_TRY(read_chunk(l, w, d.track, s, d.offset, stems + (size_t)s * (size_t)cn));
        if (l->thr <= 0) break;
        sum_stems(mix, stems, S, N);
        if (chunk_mean(mix, N) >= l->thr) break;
        w->acc.redraws++;
    }
    for (int s = 0; s < S; s++) {
        float *x = stems + (size_t)s * (size_t)cn;
        info[s].track = d.track;
        info[s].offset = d.offset;
        info[s].redraws = att;
        info[s].mean_abs = (float)chunk_mean(x, N);
        TF_TRY(finish_stem(l, w, step, b, s, 0, x, &info[s]));
    }
    sum_stems(mix, stems, S, N); /* the final stems, in stem order */
    return TF_OK;
}

/* ---- the fused pass ----
 * Every stem of an item (and its same-source partner) at its first placement attempt,
 * read BLK frames at a time from all files in turn (sequential reads, no seek); each
 * block is converted, summed for the silence check, mixed with the partner, scaled /
 * swapped and added to the mixture while it is in cache. The reference path makes four
 * more passes over each 2 MB chunk (check, gain, mixture read and write), which cost
 * more than the read itself. The samples are the reference path's bit for bit (same
 * draws, same float operations per sample, same sums); when a check fails (a file that
 * disagrees with its envelope), the failed stems (remix) or the item (aligned) are redone
 * by the reference path from the next attempt, as it would have. */
#ifdef __SSE2__
/* One block of a 16-bit stereo stem in one pass: src (m, 2) interleaved -> v = s / 32768
 * (what the reader returns), *a += sum |v| (block_abs's lanes and order), rb (2, BLK) =
 * or += v (aligned mode's mixture as read, when rb), gain / swap (tf_augment_gain_swap),
 * mb (2, BLK) = or += the result, which is stored to x (2, N) rows at xl, xl + N with
 * non-temporal stores. The same float operations per sample as the block path. */
static void block16(const int16_t *src, int64_t m, float g, int swap, float *rb, int first,
                    float *mb, float *xl, int64_t N, double *a) {
    const __m128 k = _mm_set1_ps(1.f / 32768.f), gg = _mm_set1_ps(g);
    const __m128 nosign = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    float *xr = xl + N;
    const int nt = !((uintptr_t)xl & 15) && !((uintptr_t)xr & 15);
    __m128 al[4], ar[4];
    for (int q = 0; q < 4; q++) al[q] = ar[q] = _mm_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= m; i += 16)
        for (int q = 0; q < 4; q++) {
            const int64_t f = i + 4 * q;
            const __m128i v = _mm_loadu_si128((const __m128i *)(src + 2 * f));
            const __m128 L =
                _mm_mul_ps(_mm_cvtepi32_ps(_mm_srai_epi32(_mm_slli_epi32(v, 16), 16)), k);
            const __m128 R = _mm_mul_ps(_mm_cvtepi32_ps(_mm_srai_epi32(v, 16)), k);
            al[q] = _mm_add_ps(al[q], _mm_and_ps(L, nosign));
            ar[q] = _mm_add_ps(ar[q], _mm_and_ps(R, nosign));
            if (rb) {
                _mm_storeu_ps(rb + f, first ? L : _mm_add_ps(_mm_loadu_ps(rb + f), L));
                _mm_storeu_ps(rb + BLK + f, first ? R : _mm_add_ps(_mm_loadu_ps(rb + BLK + f), R));
            }
            __m128 yl = L, yr = R;
            if (swap)
                yl = _mm_mul_ps(R, gg), yr = _mm_mul_ps(L, gg);
            else if (g != 1.f)
                yl = _mm_mul_ps(L, gg), yr = _mm_mul_ps(R, gg);
            _mm_storeu_ps(mb + f, first ? yl : _mm_add_ps(_mm_loadu_ps(mb + f), yl));
            _mm_storeu_ps(mb + BLK + f, first ? yr : _mm_add_ps(_mm_loadu_ps(mb + BLK + f), yr));
            if (nt) {
                _mm_stream_ps(xl + f, yl);
                _mm_stream_ps(xr + f, yr);
            } else {
                _mm_storeu_ps(xl + f, yl);
                _mm_storeu_ps(xr + f, yr);
            }
        }
    float tl = 0, tr = 0;
    for (; i < m; i++) {
        const float L = (float)src[2 * i] * (1.f / 32768.f),
                    R = (float)src[2 * i + 1] * (1.f / 32768.f);
        tl += fabsf(L);
        tr += fabsf(R);
        if (rb) {
            rb[i] = first ? L : rb[i] + L;
            rb[BLK + i] = first ? R : rb[BLK + i] + R;
        }
        float yl = L, yr = R;
        if (swap)
            yl = R * g, yr = L * g;
        else if (g != 1.f)
            yl = L * g, yr = R * g;
        mb[i] = first ? yl : mb[i] + yl;
        mb[BLK + i] = first ? yr : mb[BLK + i] + yr;
        xl[i] = yl;
        xr[i] = yr;
    }
    v4f vl[4], vr[4];
    memcpy(vl, al, sizeof vl);
    memcpy(vr, ar, sizeof vr);
    *a += lanes_sum(tl, vl[0], vl[1], vl[2], vl[3]) + lanes_sum(tr, vr[0], vr[1], vr[2], vr[3]);
}
#endif

typedef struct {
    tf_audio_reader *r, *pr; /* the stem's file; the partner's (NULL: no same-source mix) */
    tf_draw d, pd;
    tf_aug_info ai;
    double a, pa; /* sum |x| of the chunk and of the partner, as read */
    int bad;      /* failed check: 1 the chunk (remix), 2 the partner, 3 the item's mixture
                     (aligned, set on stem 0); 0 none */
} fstem;

enum {
    F_DONE,
    F_SKIP,
    F_REDO
}; /* fused item complete; not done (use the reference path);
      done but some check failed */

static tf_status item_fused(tf_loader *l, wctx *w, int64_t step, int b, float *stems, float *mix,
                            tf_chunk_info *info, fstem *f, int *res) {
    const int S = l->S;
    const int64_t N = l->N, cn = 2 * N;
    const uint64_t seed = l->seed;
    tf_rng r;
    *res = F_SKIP;
    tf_draw ad;
    if (l->aligned) {
        tf_rng_seed(&r, seed, (uint64_t)step, (uint64_t)b, tf_stream(TF_STREAM_DRAW, -1, 0));
        tf_sampler_draw_aligned(l->sp, &r, &ad);
    }
    int plain = 1; /* aligned: final stems = stems as read, so the mixture is the checked one */
    for (int s = 0; s < S; s++) {
        fstem *e = &f[s];
        if (l->aligned) {
            e->d = ad;
        } else {
            tf_rng_seed(&r, seed, (uint64_t)step, (uint64_t)b, tf_stream(TF_STREAM_DRAW, s, 0));
            tf_sampler_draw_stem(l->sp, &r, s, &e->d);
        }
        e->r = e->pr = NULL;
        e->a = e->pa = 0;
        e->pd.track = -1;
        if (tf_augment_mix_wanted(&l->cfg, seed, step, b, s)) {
            tf_rng_seed(&r, seed, (uint64_t)step, (uint64_t)b, tf_stream(TF_STREAM_MIX_DRAW, s, 0));
            tf_sampler_draw_stem(l->sp, &r, s, &e->pd);
            if (e->pd.track == e->d.track) return TF_OK; /* one file at two places */
        }
        tf_augment_draw(&l->cfg, seed, step, b, s, &e->ai);
        plain &= e->pd.track < 0 && e->ai.gain == 1.f && !e->ai.swapped;
    }
    /* at most 2 x TF_MAX_TARGETS = 16 files: none evicts another of this item */
    for (int s = 0; s < S; s++) {
        fstem *e = &f[s];
        const tf_track *t = &l->ix->tracks[e->d.track];
        TF_TRY(cache_get(w, e->d.track, s, t->stems[s].path, &e->r));
        w->acc.stem_reads++;
        if (e->pd.track >= 0) {
            t = &l->ix->tracks[e->pd.track];
            TF_TRY(cache_get(w, e->pd.track, s, t->stems[s].path, &e->pr));
            w->acc.stem_reads++;
            w->acc.mix_reads++;
        }
    }
    float *xb = w->blk, *pb = xb + 2 * BLK, *mb = pb + 2 * BLK, *rb = mb + 2 * BLK;
    double am = 0; /* aligned: sum |mixture as read| */
    for (int64_t j = 0; j < N; j += BLK) {
        if (cancelled(l)) {
            *res = F_DONE; /* garbage, discarded */
            return TF_OK;
        }
        const int64_t m = N - j < BLK ? N - j : BLK;
        for (int s = 0; s < S; s++) {
            fstem *e = &f[s];
            float *x = stems + (size_t)s * (size_t)cn + j;
#ifdef __SSE2__
            if (!e->pr) {
                const int16_t *raw;
                TF_TRY(tf_audio_reader_raw16(e->r, e->d.offset + j, m, &raw));
                if (raw) {
                    block16(raw, m, e->ai.gain, e->ai.swapped, l->aligned && !plain ? rb : NULL, !s,
                            mb, x, N, &e->a);
                    continue;
                }
            }
#endif
            TF_TRY(tf_audio_reader_chunk(e->r, e->d.offset + j, m, xb, BLK, NULL));
            e->a += block_abs(xb, BLK, 0, m);
            if (l->aligned && !plain) add_block(rb, BLK, xb, BLK, m, !s);
            if (e->pr) {
                TF_TRY(tf_audio_reader_chunk(e->pr, e->pd.offset + j, m, pb, BLK, NULL));
                e->pa += block_abs(pb, BLK, 0, m);
                tf_augment_mix(xb, pb, m);
                tf_augment_mix(xb + BLK, pb + BLK, m);
            }
            tf_augment_gain_swap(xb, BLK, m, e->ai.gain, e->ai.swapped);
            add_block(mb, BLK, xb, BLK, m, !s);
            stream_block(x, N, xb, BLK, m);
        }
        stream_block(mix + j, N, mb, BLK, m);
        if (l->aligned) am += block_abs(plain ? mb : rb, BLK, 0, m);
    }
    const double thr = l->thr, n2 = (double)(2 * N);
    *res = F_DONE;
    for (int s = 0; s < S; s++) {
        fstem *e = &f[s];
        info[s].track = e->d.track;
        info[s].offset = e->d.offset;
        info[s].redraws = 0;
        info[s].mean_abs = (float)(e->a / n2);
        info[s].mix_track = e->pr ? e->pd.track : -1;
        info[s].mix_offset = e->pr ? e->pd.offset : 0;
        info[s].gain = e->ai.gain;
        info[s].swapped = e->ai.swapped;
        e->bad = 0;
        if (thr > 0 && !l->aligned && e->a / n2 < thr)
            e->bad = 1;
        else if (thr > 0 && e->pr && e->pa / n2 < thr)
            e->bad = 2;
        if (e->bad) *res = F_REDO;
    }
    if (l->aligned && thr > 0 && am / n2 < thr) {
        f[0].bad = 3;
        *res = F_REDO;
    }
    return TF_OK;
}

/* One item: stems (S, 2, N), mixture (2, N), info (S). Returns TF_OK early (with
 * garbage) when cancelled: the batch is then discarded. */
static tf_status fill_item(tf_loader *l, wctx *w, int64_t step, int b, float *stems, float *mix,
                           tf_chunk_info *info) {
    const int S = l->S;
    const int64_t N = l->N, cn = 2 * N;
    int res = F_SKIP;
    fstem f[TF_MAX_TARGETS];
    if (l->fused && l->cfg.use_efficient_loading)
        TF_TRY(item_fused(l, w, step, b, stems, mix, info, f, &res));
    if (res == F_DONE) return TF_OK;
    if (res == F_SKIP) {
        if (l->aligned) return item_aligned_ref(l, w, step, b, 0, stems, mix, info);
        for (int s = 0; s < S; s++) {
            float *x = stems + (size_t)s * (size_t)cn;
            TF_TRY(stem_ref(l, w, step, b, s, 0, x, &info[s]));
            add_block(mix, N, x, N, N, !s); /* block order does not matter elementwise */
        }
        return TF_OK;
    }
    /* F_REDO: what the reference path does after the failed check */
    if (f[0].bad == 3) { /* the mixture as read: next placement */
        w->acc.redraws++;
        return item_aligned_ref(l, w, step, b, 1, stems, mix, info);
    }
    for (int s = 0; s < S; s++) {
        fstem *e = &f[s];
        float *x = stems + (size_t)s * (size_t)cn;
        if (e->bad == 1) { /* remix, its chunk: next placement attempt */
            w->acc.redraws++;
            TF_TRY(stem_ref(l, w, step, b, s, 1, x, &info[s]));
        } else if (e->bad == 2) { /* its partner: the chunk as read again, next partner */
            w->acc.redraws++;
            TF_TRY(read_chunk(l, w, e->d.track, s, e->d.offset, x));
            TF_TRY(finish_stem(l, w, step, b, s, 1, x, &info[s]));
        }
    }
    sum_stems(mix, stems, S, N);
    return TF_OK;
}

/* A non-finite sample never reaches the model: the index refuses files holding one, so
 * here it means a file changed after it was indexed. mix (2, N) is the sum of the item's
 * stems (NaN and Inf propagate into it); the error names the stem's file and frame. */
static tf_status check_finite(const tf_loader *l, const float *stems, const float *mix,
                              const tf_chunk_info *info) {
    const int64_t N = l->N, cn = 2 * N;
    float acc = 0.f;
    for (int64_t i = 0; i < cn; i++) acc += mix[i] * 0.f; /* 0 unless some mix[i] is NaN/Inf */
    if (acc == 0.f) return TF_OK;
    for (int s = 0; s < l->S; s++)
        for (int64_t i = 0; i < cn; i++) {
            if (isfinite(stems[(size_t)s * (size_t)cn + (size_t)i])) continue;
            const tf_chunk_info *in = &info[s];
            const int mixed = in->mix_track >= 0;
            return tf_err(TF_EUSER,
                          "%s: non-finite sample near frame %lld (chunk from %lld%s%s): the file "
                          "changed since it was indexed; run 'tfswa index' again",
                          l->ix->tracks[in->track].stems[s].path, (long long)(in->offset + i % N),
                          (long long)in->offset, mixed ? ", mixed with " : "",
                          mixed ? l->ix->tracks[in->mix_track].stems[s].path : "");
        }
    return tf_err(TF_EUSER, "non-finite sample in a batch mixture (stems finite)");
}

static tf_status fill_batch(tf_loader *l, wctx *w, slot *sl, int64_t step) {
    tf_batch *bt = &sl->b;
    const size_t cn = 2 * (size_t)l->N;
    const int64_t draw = step * l->shard_stride + l->shard_offset;
    bt->step = step;
    for (int b = 0; b < l->B; b++) {
        if (atomic_load_explicit(&l->cancel, memory_order_relaxed)) return TF_OK;
        float *stems = bt->stems + (size_t)b * (size_t)l->S * cn;
        tf_chunk_info *info = bt->info + (size_t)b * (size_t)l->S;
        /* the item's mixture, for the check only: tf_loader_next sums the delivered one */
        TF_TRY(fill_item(l, w, draw, b, stems, w->mix, info));
        TF_TRY(check_finite(l, stems, w->mix, info));
    }
#ifdef __SSE2__
    _mm_sfence(); /* the non-temporal stores of stream_block, before the batch is handed on */
#endif
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
    l->fused = 1;
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

    /* every batch float in one page-aligned block: the slots' stems (slots, B, S, 2, N),
     * the delivered mixture (B, 2, N), the workers' item mixtures (max(nw, 1), 2, N) */
    const size_t page = 4096, cn = 2 * (size_t)l->N;
    const size_t per_slot = (size_t)l->B * (size_t)l->S * cn;
    const int n_ctx = l->nw > 0 ? l->nw : 1;
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
        b->mixture = l->block + (size_t)l->n_slots * per_slot; /* one, for the held batch */
        b->info = l->infos + (size_t)i * (size_t)l->B * (size_t)l->S;
    }
    for (int i = 0; i < n_ctx; i++) {
        l->wc[i].l = l;
        l->wc[i].partner = tf_malloc(sizeof(float) * 2 * (size_t)l->N, "loader scratch");
        l->wc[i].mix = l->block + (size_t)l->n_slots * per_slot + ((size_t)l->B + (size_t)i) * cn;
        l->wc[i].blk = tf_malloc(sizeof(float) * 8 * BLK, "loader scratch");
        if (!l->wc[i].partner || !l->wc[i].blk) {
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

/* The mixture of the batch handed to the caller, b->mixture (one buffer for every slot):
 * the sum of its stems in stem order, the same float operations (and bits) as the item's
 * mixture its worker made and checked. */
static void deliver_mixture(const tf_loader *l, tf_batch *b) {
    const size_t cn = 2 * (size_t)l->N;
    for (int i = 0; i < l->B; i++)
        sum_stems(b->mixture + (size_t)i * cn, b->stems + (size_t)i * (size_t)l->S * cn, l->S,
                  l->N);
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
        }
        pthread_mutex_unlock(&l->mu);
        if (st) return st;
        deliver_mixture(l, &sl->b);
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
    }
    pthread_mutex_unlock(&l->mu);
    if (st) return tf_err(st, "%s", sl->err);
    deliver_mixture(l, &sl->b);
    *out = &sl->b;
    return TF_OK;
}

size_t tf_loader_plan_bytes(const tf_config *cfg, int n_stems, int64_t frames) {
    const size_t page = 4096;
    const size_t slots =
        cfg->num_workers > 0 ? (size_t)cfg->num_workers * (size_t)cfg->prefetch_factor + 1 : 1;
    const size_t cn = 2 * (size_t)frames, bs = (size_t)cfg->batch_size;
    const size_t ctx = cfg->num_workers > 0 ? (size_t)cfg->num_workers : 1;
    const size_t floats = slots * bs * (size_t)n_stems * cn + bs * cn + ctx * cn;
    return ((sizeof(float) * floats + page - 1) / page) * page;
}

void tf_loader_set_shard(tf_loader *l, int64_t stride, int64_t offset) {
    l->shard_stride = stride < 1 ? 1 : stride;
    l->shard_offset = offset;
}

void tf_loader_set_fused(tf_loader *l, int on) {
    l->fused = on != 0;
}

void *tf_loader_block(const tf_loader *l, size_t *bytes) {
    *bytes = l->block_bytes;
    return l->block;
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
            free(l->wc[i].blk);
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
